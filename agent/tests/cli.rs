//! The `upsoak-agent` binary's exit codes for `check-config`, and how `run` reads its environment.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_upsoak-agent");

#[test]
fn check_config_exits_0_on_the_default_specs_and_2_on_bad_ones() {
    let ok = Command::new(BIN)
        .arg("check-config")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../rules/slos.yaml"))
        .output()
        .unwrap();
    assert_eq!(
        ok.status.code(),
        Some(i32::from(upsoak_agent::exit::PASS)),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("allocation-latency-p99"));
    let dir = std::env::temp_dir().join(format!("upsoak-agent-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.yaml");
    std::fs::write(&bad, "groups:\n  - name: g\n    interval: 15s\n    slos:\n      - { name: s, expr: \"rate(x[\", objective: \">= 1\" }\n").unwrap();
    let out = Command::new(BIN)
        .arg("check-config")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(i32::from(upsoak_agent::exit::BAD_INPUT))
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("groups[0].slos[0].expr:"));
    let missing = Command::new(BIN)
        .args(["check-config", "/nonexistent.yaml"])
        .output()
        .unwrap();
    assert_eq!(
        missing.status.code(),
        Some(i32::from(upsoak_agent::exit::BAD_INPUT))
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn help_documents_the_exit_codes_of_the_library() {
    use upsoak_agent::exit;
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    for (code, what) in [
        (exit::PASS, "pass"),
        (exit::FAIL, "fail"),
        (exit::BAD_INPUT, "bad input"),
        (exit::INCONCLUSIVE, "inconclusive"),
    ] {
        assert!(
            help.contains(&format!("{code} {what}")),
            "{code} {what} not in:\n{help}"
        );
    }
    assert_eq!(
        (exit::PASS, exit::FAIL, exit::BAD_INPUT, exit::INCONCLUSIVE),
        (0, 1, 2, 3)
    );
    assert!(help.contains("check-config"), "{help}");
}

#[test]
fn check_config_prints_a_line_per_group_and_every_problem() {
    let ok = Command::new(BIN)
        .arg("check-config")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../rules/slos.yaml"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&ok.stdout);
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
    assert!(
        ok.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );

    let dir = std::env::temp_dir().join(format!("upsoak-agent-cli-all-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.yaml");
    std::fs::write(
        &bad,
        "groups:\n  - name: g\n    interval: 1x\n    slos:\n      - { name: s, expr: \"up[5m]\", objective: \"0.9\", on_no_data: pass }\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .arg("check-config")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(i32::from(upsoak_agent::exit::BAD_INPUT))
    );
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    for want in [
        "4 problems",
        "groups[0].interval: invalid duration \"1x\"",
        "groups[0].slos[0].expr: evaluates to a range vector",
        "groups[0].slos[0].objective: `0.9` at column 1",
        "groups[0].slos[0].on_no_data: cannot be `pass`",
    ] {
        assert!(err.contains(want), "{want:?} not in:\n{err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn usage_errors_exit_2() {
    let out = Command::new(BIN).arg("check-config").output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(i32::from(upsoak_agent::exit::BAD_INPUT))
    );
}

/// `run` with `env` set (and `--no-probes`, no baseline): its exit code if it stops within
/// `wait`, else `None` (it kept running: killed), with what it printed.
fn run_with_env(env: &[(&str, &str)], wait: Duration) -> (Option<i32>, String) {
    let dir = std::env::temp_dir().join(format!("upsoak-cli-env-{}", std::process::id()));
    let state = dir.join(env.len().to_string());
    let mut cmd = Command::new(BIN);
    cmd.args(["run", "--no-probes", "--listen", "127.0.0.1:0", "--specs"])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../rules/slos.yaml"))
        .arg("--state-dir")
        .arg(&state)
        .env("UPSOAK_PROMETHEUS", "http://127.0.0.1:1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + wait;
    let code = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st.code();
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = child.wait_with_output().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    (
        code,
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
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
    // Bad input is refused within milliseconds of starting; two seconds is a run.
    let (code, out) = run_with_env(running, Duration::from_secs(2));
    assert_eq!(code, None, "run stopped instead of running:\n{out}");
    assert!(out.contains("listening on http://"), "{out}");

    let bad = Some(i32::from(upsoak_agent::exit::BAD_INPUT));
    let (code, out) = run_with_env(
        &[("UPSOAK_PROMETHEUS_TOKEN_FILE", "/nonexistent/token")],
        Duration::from_secs(30),
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
        Duration::from_secs(30),
    );
    assert_eq!(code, bad, "{out}");
    assert!(out.contains("--grafana-token-file"), "{out}");
}

#[test]
fn run_refuses_a_judge_window_too_short_for_a_groups_interval_and_names_the_slos() {
    let dir = std::env::temp_dir().join(format!("upsoak-cli-window-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let specs = dir.join("slos.yaml");
    std::fs::write(
        &specs,
        "groups:\n  - { name: slow, interval: 1m, slos: [ { name: a, expr: up, objective: \">= 1\", min_samples: 5 } ] }\n  - { name: fast, interval: 5s, slos: [ { name: b, expr: up, objective: \">= 1\" } ] }\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["run", "--prometheus", "http://127.0.0.1:9", "--no-probes"])
        .args(["--listen", "127.0.0.1:0", "--judge-window", "2m"])
        .arg("--specs")
        .arg(&specs)
        .arg("--state-dir")
        .arg(dir.join("state"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(i32::from(upsoak_agent::exit::BAD_INPUT)),
        "{err}"
    );
    assert!(
        err.contains(
            "slow/a: a 120s judge window at a 60s step holds 3 samples, fewer than min_samples 5"
        ),
        "{err}"
    );
    assert!(!err.contains("fast/b"), "the 5 s group fits: {err}");
    let _ = std::fs::remove_dir_all(&dir);
}
