//! The `upsoak-agent` binary: exit codes of `check-config` and `run`, its help, how `run` reads
//! its environment, and its `/readyz`.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_upsoak-agent");

const DEFAULT_SPECS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../rules/slos.yaml");

/// What a finished run of the binary printed, and its exit code.
struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs the binary with `args` to its end.
fn run_agent<S: AsRef<OsStr>>(args: impl IntoIterator<Item = S>) -> Ran {
    let out = Command::new(BIN).args(args).output().unwrap();
    Ran {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn exit_code(c: u8) -> Option<i32> {
    Some(i32::from(c))
}

#[test]
fn check_config_exits_0_on_the_default_specs_and_2_on_bad_ones() {
    let ok = run_agent(["check-config", DEFAULT_SPECS]);
    assert_eq!(
        ok.code,
        exit_code(upsoak_agent::exit::PASS),
        "{}",
        ok.stderr
    );
    assert!(ok.stdout.contains("allocation-latency-p99"));
    assert!(
        ok.stdout.contains(
            "vars: agent_job=upsoak-agent, allocator_job=agones-allocator-metrics-service"
        ),
        "{}",
        ok.stdout
    );
    let dir = TempDir::new("cli");
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "groups:\n  - name: g\n    interval: 15s\n    slos:\n      - { name: s, expr: \"rate(x[\", objective: \">= 1\" }\n").unwrap();
    let out = run_agent([OsStr::new("check-config"), bad.as_os_str()]);
    assert_eq!(out.code, exit_code(upsoak_agent::exit::BAD_INPUT));
    assert!(
        out.stderr.contains("groups[0].slos[0].expr:"),
        "{}",
        out.stderr
    );
    let missing = run_agent(["check-config", "/nonexistent.yaml"]);
    assert_eq!(missing.code, exit_code(upsoak_agent::exit::BAD_INPUT));
    // An unknown `baseline_by` key: bad input at its path; the shipped one is listed.
    std::fs::write(&bad, "groups:\n  - name: g\n    interval: 15s\n    slos:\n      - { name: s, expr: up, baseline: \"<= +5%\", baseline_by: [tunable:x, replicas] }\n").unwrap();
    let out = run_agent([OsStr::new("check-config"), bad.as_os_str()]);
    assert_eq!(out.code, exit_code(upsoak_agent::exit::BAD_INPUT));
    assert!(
        out.stderr
            .contains("groups[0].slos[0].baseline_by[1]: unknown configuration key `replicas`"),
        "{}",
        out.stderr
    );
    assert!(
        ok.stdout.contains(
            "allocation/allocation-latency-p99: baseline by tunable:allocationBatchWaitTime"
        ),
        "{}",
        ok.stdout
    );
}

#[test]
fn rules_export_refuses_the_example_baseline_and_exports_without_one() {
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../rules/baseline.example.json"
    );
    let out = run_agent([
        "rules",
        "export",
        "--specs",
        DEFAULT_SPECS,
        "--baseline",
        example,
    ]);
    assert_eq!(out.code, exit_code(upsoak_agent::exit::BAD_INPUT));
    assert!(
        out.stderr.contains("is an example") && out.stderr.contains("baseline record"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    let out = run_agent(["rules", "export", "--specs", DEFAULT_SPECS]);
    assert_eq!(
        out.code,
        exit_code(upsoak_agent::exit::PASS),
        "{}",
        out.stderr
    );
    assert!(out.stdout.contains("criterion: burn-rate"));
}

#[test]
fn help_documents_the_exit_codes_of_the_library() {
    use upsoak_agent::exit;
    let out = run_agent(["--help"]);
    assert_eq!(out.code, Some(0));
    let help = out.stdout;
    for (code, what) in [
        (exit::PASS, "pass"),
        (exit::FAIL, "fail"),
        (exit::BAD_INPUT, "bad input"),
        (exit::INCONCLUSIVE, "inconclusive"),
        (exit::RUNTIME_FAILURE, "runtime failure"),
    ] {
        assert!(
            help.contains(&format!("{code} {what}")),
            "{code} {what} not in:\n{help}"
        );
    }
    assert_eq!(
        (
            exit::PASS,
            exit::FAIL,
            exit::BAD_INPUT,
            exit::INCONCLUSIVE,
            exit::RUNTIME_FAILURE
        ),
        (0, 1, 2, 3, 4)
    );
    assert!(help.contains("check-config"), "{help}");
}

#[test]
fn check_config_prints_a_line_per_group_and_every_problem() {
    let ok = run_agent(["check-config", DEFAULT_SPECS]);
    let text = &ok.stdout;
    for group in [
        "control-plane",
        "fleets",
        "allocation",
        "sessions",
        "transitions",
    ] {
        assert_eq!(
            text.lines()
                .filter(|l| l.trim_start().starts_with(&format!("{group} every ")))
                .count(),
            1,
            "{group} in:\n{text}"
        );
    }
    assert!(ok.stderr.is_empty(), "{}", ok.stderr);

    let dir = TempDir::new("cli-all");
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "groups:\n  - name: g\n    interval: 1x\n    slos:\n      - { name: s, expr: \"up[5m]\", objective: \"0.9\", on_no_data: pass }\n",
    )
    .unwrap();
    let out = run_agent([OsStr::new("check-config"), bad.as_os_str()]);
    assert_eq!(out.code, exit_code(upsoak_agent::exit::BAD_INPUT));
    assert!(out.stdout.is_empty());
    let err = out.stderr;
    for want in [
        "4 problems",
        "groups[0].interval: invalid duration \"1x\"",
        "groups[0].slos[0].expr: evaluates to a range vector",
        "groups[0].slos[0].objective: `0.9` at column 1",
        "groups[0].slos[0].on_no_data: cannot be `pass`",
    ] {
        assert!(err.contains(want), "{want:?} not in:\n{err}");
    }
}

#[test]
fn usage_errors_exit_2() {
    let out = run_agent(["check-config"]);
    assert_eq!(out.code, exit_code(upsoak_agent::exit::BAD_INPUT));
}

/// `run` of the default specs on `listen` with `env` set (and `--no-probes`, no baseline,
/// Prometheus unreachable). If it prints `listening on URL`, `while_running` is called
/// with the URL and the agent is then killed (`None`); else the run's exit code. With what it
/// printed.
fn run_with_env(
    env: &[(&str, &str)],
    listen: &str,
    while_running: impl FnOnce(&str),
) -> (Option<i32>, String) {
    let dir = TempDir::new(&format!("cli-env-{}", env.len()));
    let mut cmd = Command::new(BIN);
    cmd.args(["run", "--no-probes", "--listen", listen, "--specs"])
        .arg(DEFAULT_SPECS)
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .env("UPSOAK_PROMETHEUS", "http://127.0.0.1:1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let code = match first.trim().strip_prefix("listening on ") {
        Some(url) => {
            // Bad input is refused before the agent listens; a listening agent is running.
            while_running(url);
            child.kill().unwrap();
            child.wait().unwrap();
            None
        }
        None => child.wait().unwrap().code(),
    };
    let out = child.wait_with_output().unwrap();
    (
        code,
        format!("{first}{}", String::from_utf8_lossy(&out.stderr)),
    )
}

/// How the Kubernetes manifests configure the agent (deploy/base): URLs and credential files
/// from the environment, where an empty value is unset.
#[test]
fn run_takes_urls_and_credential_files_from_the_environment_empty_meaning_unset() {
    let running = &[
        ("UPSOAK_ALERTMANAGER", ""),
        ("UPSOAK_GRAFANA", ""),
        ("UPSOAK_GRAFANA_TOKEN_FILE", "/nonexistent/grafana/token"),
        ("UPSOAK_PROMETHEUS_TOKEN_FILE", ""),
    ];
    let (code, out) = run_with_env(running, "127.0.0.1:0", |url| {
        // Running, but Prometheus has never answered: live, not ready. (The listener is bound
        // before the line is printed, so the requests wait for the server, never fail.)
        let rt = tokio::runtime::Runtime::new().unwrap();
        let status = |path: &str| {
            rt.block_on(reqwest::get(format!("{url}{path}")))
                .unwrap()
                .status()
                .as_u16()
        };
        assert_eq!(status("/healthz"), 200);
        assert_eq!(status("/readyz"), 503);
    });
    assert_eq!(code, None, "run stopped instead of running:\n{out}");

    let bad = exit_code(upsoak_agent::exit::BAD_INPUT);
    let (code, out) = run_with_env(
        &[("UPSOAK_PROMETHEUS_TOKEN_FILE", "/nonexistent/token")],
        "127.0.0.1:0",
        |_| {},
    );
    assert_eq!(code, bad, "{out}");
    assert!(
        out.contains("--prometheus-token-file `/nonexistent/token`"),
        "{out}"
    );

    let (code, out) = run_with_env(
        &[
            ("UPSOAK_GRAFANA", "http://127.0.0.1:1"),
            ("UPSOAK_GRAFANA_TOKEN_FILE", "/nonexistent/grafana/token"),
        ],
        "127.0.0.1:0",
        |_| {},
    );
    assert_eq!(code, bad, "{out}");
    assert!(out.contains("--grafana-token-file"), "{out}");
}

/// A crash is not a regression: an agent that cannot listen exits 4, never 1.
#[test]
fn run_that_cannot_listen_is_a_runtime_failure() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (code, out) = run_with_env(&[], &addr, |_| {});
    assert_eq!(
        code,
        exit_code(upsoak_agent::exit::RUNTIME_FAILURE),
        "{out}"
    );
    assert!(
        out.contains(&format!("error: cannot listen on `{addr}`")),
        "{out}"
    );
    assert!(out.contains("caused by:"), "{out}");
}

#[test]
fn run_refuses_a_judge_window_too_short_for_a_groups_interval_and_names_the_slos() {
    let dir = TempDir::new("cli-window");
    let specs = dir.path().join("slos.yaml");
    std::fs::write(
        &specs,
        "groups:\n  - { name: slow, interval: 1m, slos: [ { name: a, expr: up, objective: \">= 1\", min_samples: 5 } ] }\n  - { name: fast, interval: 5s, slos: [ { name: b, expr: up, objective: \">= 1\" } ] }\n",
    )
    .unwrap();
    let state = dir.path().join("state");
    let out = run_agent([
        OsStr::new("run"),
        OsStr::new("--prometheus"),
        OsStr::new("http://127.0.0.1:9"),
        OsStr::new("--no-probes"),
        OsStr::new("--listen"),
        OsStr::new("127.0.0.1:0"),
        OsStr::new("--judge-window"),
        OsStr::new("2m"),
        OsStr::new("--specs"),
        specs.as_os_str(),
        OsStr::new("--state-dir"),
        state.as_os_str(),
    ]);
    let err = out.stderr;
    assert_eq!(out.code, exit_code(upsoak_agent::exit::BAD_INPUT), "{err}");
    assert!(
        err.contains(
            "slow/a: a 120s judge window at a 60s step holds 3 samples, fewer than min_samples 5"
        ),
        "{err}"
    );
    assert!(!err.contains("fast/b"), "the 5 s group fits: {err}");

    // The same window from the environment (how a rehearsal shortens durations).
    let out = Command::new(BIN)
        .args(["run", "--no-probes", "--listen", "127.0.0.1:0", "--specs"])
        .arg(&specs)
        .arg("--state-dir")
        .arg(&state)
        .env("UPSOAK_PROMETHEUS", "http://127.0.0.1:9")
        .env("UPSOAK_JUDGE_WINDOW", "2m")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        exit_code(upsoak_agent::exit::BAD_INPUT),
        "{err}"
    );
    assert!(err.contains("--judge-window 120s is too short"), "{err}");
}

/// Every duration a rehearsal may override, the baseline and the namespaces are documented
/// with their environment variables.
#[test]
fn run_help_names_every_environment_override() {
    let out = run_agent(["run", "--help"]);
    assert_eq!(
        out.code,
        exit_code(upsoak_agent::exit::PASS),
        "{}",
        out.stderr
    );
    for var in [
        "UPSOAK_SETTLE",
        "UPSOAK_JUDGE_WINDOW",
        "UPSOAK_STEADY_EVERY",
        "UPSOAK_STEP",
        "UPSOAK_PROBE_INTERVAL",
        "UPSOAK_BASELINE",
        "UPSOAK_AGONES_NAMESPACE",
        "UPSOAK_NAMESPACE",
    ] {
        assert!(
            out.stdout.contains(&format!("[env: {var}=")),
            "{var} not in:\n{}",
            out.stdout
        );
    }
    assert!(
        out.stdout.contains("[default: agones-system]"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("`auto`"), "{}", out.stdout);
}
