//! The `upsoak-chaos` binary: validate and plan (exit codes, determinism), and `run` against a
//! real simulator, killed with SIGKILL mid-transition and restarted, and stopped (SIGTERM, then
//! SIGKILL) halfway through a period and restarted: the transition keeps its due time.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use upsoak_testkit::{POLL, Proc, TempDir, eventually, eventually_blocking, promtool_check};

mod common;

use upsoak_chaos::wanderer::journal::{Entry, Journal, Outcome, now_unix_ms, parse_rfc3339};

const BIN: &str = env!("CARGO_BIN_EXE_upsoak-chaos");

fn space() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("spaces/agones.yaml")
}

#[test]
fn validate_and_plan_exit_codes_and_determinism() {
    let ok = Command::new(BIN)
        .args(["validate"])
        .arg(space())
        .output()
        .unwrap();
    assert_eq!(ok.status.code(), Some(0));
    let summary = String::from_utf8_lossy(&ok.stdout);
    for want in [
        "1.55.0   gates: 2 Stable, 7 Beta, 6 Alpha; Kubernetes 1.32–1.34",
        "1.60.0   gates: 5 Stable, 5 Beta, 5 Alpha; Kubernetes 1.34–1.36",
        "tunable logLevel: info | debug (2 values) → agones.controller.logLevel",
        "tunable allocationBatchWaitTime: 100..=1000 step 100 (10 values) → agones.allocator.allocationBatchWaitTime",
        "tunable allocatorReplicas: 1..=5 (5 values) → agones.allocator.replicas (int)",
        "constraint: IF gate:PlayerAllocationFilter THEN gate:PlayerTracking",
        "valid states: 672000",
        "reachable version_pairs: 18",
        "reachable gate_pairs: 264",
    ] {
        assert!(summary.contains(want), "missing {want:?} in:\n{summary}");
    }
    let dir = TempDir::new("chaos-validate");
    let bad = dir.join("bad.yaml");
    std::fs::write(&bad, "versions: [ { version: 1.0.0, gates: { A: Omega } } ]\nhops: { max_up: 1, max_down: 1, allow_downgrade: true }\nconstraints: [ \"IF gate:A THEN gate:B\" ]\n").unwrap();
    let err = invalid(&bad);
    assert!(
        err.contains("versions[0].gates.A: unknown stage `Omega`"),
        "{err}"
    );
    assert!(
        err.contains("constraints[0]: col 16: unknown gate `B`"),
        "{err}"
    );
    std::fs::write(&bad, "versions: [ { version: 1.0.0, gates: { A: Beta } } ]\nhops: { max_up: 1, max_down: 1, allow_downgrade: true }\ntunables: { wait: { min: 100, max: 1050, step: 100 } }\n").unwrap();
    let err = invalid(&bad);
    assert!(
        err.contains("tunables.wait.step: max 1050 is not min 100 plus a multiple of step 100, so the walk would never reach it: the nearest valid max is 1000 (or 1100)"),
        "{err}"
    );
    let missing = Command::new(BIN)
        .args(["validate", "/nonexistent/space.yaml"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));

    let plan = |seed: &str| {
        let o = Command::new(BIN)
            .args(["plan", "--space"])
            .arg(space())
            .args(["--seed", seed, "--steps", "25", "--format", "json"])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0));
        String::from_utf8(o.stdout).unwrap()
    };
    assert_eq!(plan("11"), plan("11"));
    assert_ne!(plan("11"), plan("12"));
    let v: serde_json::Value = serde_json::from_str(&plan("11")).unwrap();
    assert_eq!(v["steps"].as_array().unwrap().len(), 26);
    assert_eq!(v["steps"][0]["version"], "1.55.0");
    assert!(!v["steps"][1]["changes"].as_array().unwrap().is_empty());
    assert!(v["coverage"]["gate_pairs"].as_f64().unwrap() <= 1.0);
    // The environment stands in for flags, as documented.
    let by_env = Command::new(BIN)
        .args(["plan", "--steps", "25", "--format", "json"])
        .env("UPSOAK_SPACE", space())
        .env("UPSOAK_SEED", "11")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(by_env.stdout).unwrap(), plan("11"));
    let text = Command::new(BIN)
        .args(["plan", "--space"])
        .arg(space())
        .args(["--seed", "11", "--steps", "3", "--strategy", "random"])
        .output()
        .unwrap();
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.starts_with("# seed 11, strategy random"), "{text}");
    assert!(text.contains("   0  1.55.0   start\n"), "{text}");
    assert!(text.contains("coverage gate_pairs: "), "{text}");
    let from = Command::new(BIN)
        .args(["plan", "--space"])
        .arg(space())
        .args(["--seed", "11", "--steps", "2", "--from", "1.58.0"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8(from.stdout)
            .unwrap()
            .contains("   0  1.58.0   start\n")
    );
    let unknown = Command::new(BIN)
        .args(["plan", "--space"])
        .arg(space())
        .args(["--seed", "11", "--from", "1.61.0"])
        .output()
        .unwrap();
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains(
        "--from: `1.61.0` is not a version of the space (1.55.0, 1.56.0, 1.57.0, 1.58.0, 1.59.0, 1.60.0)"
    ));
    let bad_strategy = Command::new(BIN)
        .args(["plan", "--space"])
        .arg(space())
        .args(["--seed", "1", "--strategy", "greedy"])
        .output()
        .unwrap();
    assert_eq!(bad_strategy.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&bad_strategy.stderr)
            .contains("[possible values: random, coverage]")
    );
    let o = Command::new(BIN)
        .args(["plan", "--space"])
        .arg(space())
        .args(["--seed", "x"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn help_documents_exit_codes_and_the_constraint_syntax() {
    let help = |args: &[&str]| {
        let o = Command::new(BIN).args(args).output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{args:?}");
        String::from_utf8(o.stdout).unwrap()
    };
    let top = help(&["--help"]);
    assert!(
        top.contains("Exit codes: 0 success, 2 bad input (file, flag or configuration), 4 runtime"),
        "{top}"
    );
    let validate = help(&["validate", "--help"]);
    for want in [
        "IF expr THEN expr",
        "NOT binds tighter than AND",
        "tunable:NAME OP VALUE",
        "Exit codes: 0 valid, 2 invalid",
    ] {
        assert!(validate.contains(want), "missing {want:?} in:\n{validate}");
    }
    assert_eq!(upsoak_chaos::cli::EXIT_OK, 0);
    assert_eq!(upsoak_chaos::cli::EXIT_BAD_INPUT, 2);
    assert_eq!(upsoak_chaos::cli::EXIT_FAILURE, 4);
    assert!(help(&["plan", "--help"]).contains("[env: UPSOAK_SEED=]"));
}

/// `upsoak-chaos run --config CONFIG`, started and announced (killed when dropped).
fn sidecar(name: &str, config: &Path, dir: &Path) -> Proc {
    let mut cmd = Command::new(BIN);
    cmd.args(["run", "--config"]).arg(config);
    Proc::start_blocking(name, &mut cmd, dir)
}

/// SIGTERM, then its exit status within 15 s.
fn terminate(p: &mut Proc) -> std::process::ExitStatus {
    p.terminate(Duration::from_secs(15))
        .expect("the sidecar stops within 15 s of SIGTERM")
}

/// A sidecar configuration on `sim` (Wanderer only, 200 ms period, no jitter).
fn write_config(dir: &Path, sim: &str, seed: u64) -> PathBuf {
    let config = dir.join("sidecar.yaml");
    std::fs::write(
        &config,
        format!(
            "listen: 127.0.0.1:0\nstate_dir: {}\nkube_server: {sim}\nwanderer:\n  space: {}\n  seed: {seed}\n  schedule: {{ period: 200ms, jitter: 0 }}\n  applier: {{ kind: sim, url: \"{sim}\" }}\nproducer:\n  fleets: []\n  allocation_rate: 0\n",
            dir.display(),
            space().display(),
        ),
    )
    .unwrap();
    config
}

fn entries(path: &Path) -> Vec<Entry> {
    // Read without opening for append: a copy, so the running sidecar's file is untouched.
    let copy = path.with_extension("copy");
    std::fs::copy(path, &copy).unwrap();
    let (_, r) = Journal::open(&copy).unwrap();
    r.entries
}

fn wait_until(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    eventually_blocking(Duration::from_secs(secs), POLL, || f().then_some(()))
        .unwrap_or_else(|e| panic!("waiting for {what}: {e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_transition_then_restart_keeps_the_journal_and_the_walk() {
    // The simulator's upgrade window (600 ms) is the transition in flight.
    let (sim, stop) = common::start_sim(
        "upgrade_window: 600ms\nfleets: [ { name: soak, replicas: 4 } ]",
        1,
    )
    .await;
    let dir = TempDir::new("chaos-kill9");
    let config = dir.write(
        "sidecar.yaml",
        &format!(
        "listen: 127.0.0.1:0\nstate_dir: {}\nkube_server: {sim}\nwanderer:\n  space: {}\n  seed: 5\n  schedule: {{ period: 200ms, jitter: 0.2 }}\n  applier: {{ kind: sim, url: \"{sim}\" }}\nproducer:\n  fleets: [ {{ name: soak, min_replicas: 3, max_replicas: 6, scale_every_min: 1s, scale_every_max: 2s }} ]\n  allocation_rate: 5\n  # A small Fleet kept busy on purpose: the walk is under test, not the load.\n  capacity: {{ on_short: warn }}\n",
        dir.display(),
        space().display(),
    ),
    );
    let journal = dir.join("journal.jsonl");

    let mut first = sidecar("sidecar-1", &config, &dir);
    // /metrics passes promtool while it runs.
    wait_until(20, "two applied steps", || {
        journal.exists()
            && entries(&journal)
                .iter()
                .filter(|e| {
                    matches!(
                        e,
                        Entry::Outcome {
                            result: Outcome::Applied,
                            ..
                        }
                    )
                })
                .count()
                >= 2
    });
    let metrics = reqwest::get(format!("{}/metrics", first.url().unwrap()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    if let Err(findings) = promtool_check(&metrics) {
        panic!("promtool: {findings:?}\n{metrics}");
    }
    assert!(metrics.contains("upsoak_wanderer_generation"), "{metrics}");
    assert!(
        metrics.contains("upsoak_producer_allocations_total"),
        "{metrics}"
    );

    // Kill -9 while a transition is in flight: an intent with no outcome yet, whose install the
    // simulator has accepted. The intent is synced before the request leaves, so the journal
    // alone cannot tell; killing on the intent alone lost that race about once in ten runs on
    // a loaded machine, and the install then (rightly) never happened.
    let installed = format!("{sim}{}", upsoak_sim::server::INSTALLED_PATH);
    let in_flight = || matches!(entries(&journal).last(), Some(Entry::Intent { .. }));
    // Polled every 10 ms: the window is 600 ms and the kill must land inside it.
    eventually(
        Duration::from_secs(20),
        Duration::from_millis(10),
        || async {
            if !in_flight() {
                return None;
            }
            let doc: serde_json::Value = reqwest::get(&installed)
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            (!doc["upgrading"].is_null() && in_flight()).then_some(())
        },
    )
    .await
    .expect("a transition in flight");
    first.kill();
    let before = entries(&journal);
    let Some(Entry::Intent {
        step: crashed,
        to: intended,
        ..
    }) = before.last().cloned()
    else {
        panic!("expected an intent last: {before:?}");
    };

    let second = sidecar("sidecar-2", &config, &dir);
    wait_until(20, "two more steps after the restart", || {
        entries(&journal).iter().any(|e| matches!(e, Entry::Outcome { step, result: Outcome::Applied, .. } if *step == crashed + 2))
    });
    drop(second);
    let after = entries(&journal);
    // Nothing before the crash changed.
    assert_eq!(&after[..before.len()], &before[..]);
    // The interrupted step is indeterminate, then observed; the walk goes on at the next step.
    let crashed_outcomes: Vec<Outcome> = after
        .iter()
        .filter_map(|e| match e {
            Entry::Outcome { step, result, .. } if *step == crashed => Some(*result),
            _ => None,
        })
        .collect();
    assert_eq!(
        crashed_outcomes,
        vec![Outcome::Indeterminate, Outcome::Observed]
    );
    // Observed after the install the crash interrupted had settled: it did happen.
    let observed = after.iter().find_map(|e| match e {
        Entry::Outcome {
            step,
            result: Outcome::Observed,
            observed,
            ..
        } if *step == crashed => observed.clone(),
        _ => None,
    });
    assert_eq!(observed.map(|o| o.version), Some(intended.version));
    let intents: Vec<u64> = after
        .iter()
        .filter_map(|e| match e {
            Entry::Intent { step, .. } => Some(*step),
            _ => None,
        })
        .collect();
    let expected: Vec<u64> = (1..=intents.len() as u64).collect();
    assert_eq!(intents, expected, "every step once, in order");
    assert_eq!(
        after
            .iter()
            .filter(|e| matches!(e, Entry::Start { .. }))
            .count(),
        1
    );
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_transition_finishes_and_journals_it() {
    let (sim, stop) = common::start_sim("upgrade_window: 1500ms", 1).await;
    let dir = TempDir::new("chaos-sigterm");
    let config = write_config(&dir, &sim, 9);
    let journal = dir.join("journal.jsonl");
    let mut proc = sidecar("sidecar", &config, &dir);
    wait_until(20, "a transition in flight", || {
        journal.exists() && matches!(entries(&journal).last(), Some(Entry::Intent { .. }))
    });
    let Some(Entry::Intent { step, .. }) = entries(&journal).last().cloned() else {
        unreachable!()
    };
    let status = terminate(&mut proc);
    assert_eq!(status.code(), Some(0));
    // The action in flight was finished and its outcome journalled, not left indeterminate.
    let after = entries(&journal);
    assert!(
        matches!(after.last(), Some(Entry::Outcome { step: s, result: Outcome::Applied, .. }) if *s == step),
        "{:?}",
        after.last()
    );
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_only_after_observing_a_settled_install() {
    // An install is in progress when the sidecar starts: it must settle and observe first.
    let (sim, stop) = common::start_sim("upgrade_window: 3s", 1).await;
    let installed = format!("{sim}{}", upsoak_sim::server::INSTALLED_PATH);
    let upgrading = || async {
        let doc: serde_json::Value = reqwest::get(&installed)
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        !doc["upgrading"].is_null()
    };
    let r = reqwest::Client::new()
        .post(format!("{sim}/upsoak/v1/install"))
        .json(&serde_json::json!({"version": "1.56.0"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let dir = TempDir::new("chaos-ready");
    let mut proc = sidecar("sidecar", &write_config(&dir, &sim, 3), &dir);
    let readyz = format!("{}/readyz", proc.url().unwrap());
    let status = reqwest::get(&readyz).await.unwrap().status().as_u16();
    assert!(
        upgrading().await,
        "the upgrade window closed before the test could look"
    );
    assert_eq!(status, 503, "ready while the install was still in progress");
    eventually(
        Duration::from_secs(20),
        Duration::from_millis(20),
        || async { (reqwest::get(&readyz).await.unwrap().status().as_u16() == 200).then_some(()) },
    )
    .await
    .expect("ready once the install settled");
    assert!(!upgrading().await, "ready before the install settled");
    assert_eq!(terminate(&mut proc).code(), Some(0));
    stop.cancel();
}

#[test]
fn a_runtime_failure_exits_4_with_its_causes_and_a_hint() {
    // Nothing listens on the applier's port: the first observation fails.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = TempDir::new("chaos-unreachable");
    let config = write_config(&dir, &format!("http://127.0.0.1:{port}"), 1);
    let out = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(err.contains("error: the Wanderer stopped\n"), "{err}");
    assert!(
        err.contains("caused by: cannot observe what is installed at start"),
        "{err}"
    );
    assert!(
        err.contains("caused by: cannot reach `http://127.0.0.1:"),
        "{err}"
    );
    assert!(err.contains("hint: check `wanderer.applier`"), "{err}");

    // `listen` taken: a runtime failure too, named with its address and cause.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let config = dir.write(
        "taken.yaml",
        &std::fs::read_to_string(&config)
            .unwrap()
            .replace("listen: 127.0.0.1:0", &format!("listen: {addr}")),
    );
    let out = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(
        err.contains(&format!("error: cannot listen on `{addr}`\n  caused by: ")),
        "{err}"
    );
}

/// Step `step`'s journalled schedule, (scheduled at, due), and how many times it was scheduled.
fn scheduled(journal: &Path, step: u64) -> Option<((u64, u64), usize)> {
    let all: Vec<(u64, u64)> = entries(journal)
        .iter()
        .filter_map(|e| match e {
            Entry::Scheduled {
                step: s,
                due_unix_ms,
                at,
            } if *s == step => Some((parse_rfc3339(at).unwrap(), *due_unix_ms)),
            _ => None,
        })
        .collect();
    Some((*all.last()?, all.len()))
}

/// When step `step`'s intent was journalled (unix ms).
fn intent_at(journal: &Path, step: u64) -> Option<u64> {
    entries(journal).iter().find_map(|e| match e {
        Entry::Intent { step: s, at, .. } if *s == step => parse_rfc3339(at),
        _ => None,
    })
}

/// Waits (polling the clock and the journal) until halfway between when step `step` was
/// scheduled and when it is due; returns its due time.
fn halfway_through(journal: &Path, step: u64) -> u64 {
    let mut sched = None;
    wait_until(20, &format!("step {step} scheduled"), || {
        sched = journal.exists().then(|| scheduled(journal, step)).flatten();
        sched.is_some()
    });
    let ((at, due), _) = sched.unwrap();
    wait_until(20, "halfway through the period", || {
        now_unix_ms() >= at + (due - at) / 2
    });
    assert_eq!(intent_at(journal, step), None, "step {step} taken early");
    due
}

/// The restarted sidecar takes step `step` at its journalled `due` (not a new period later),
/// scheduled once, and shows that due time in its metric.
async fn taken_at_the_original_due_time(proc: &Proc, journal: &Path, step: u64, due: u64) {
    let url = format!("{}/metrics", proc.url().unwrap());
    let next = eventually(Duration::from_secs(10), POLL, || async {
        let text = reqwest::get(&url).await.ok()?.text().await.ok()?;
        upsoak_testkit::sample(&text, "upsoak_wanderer_next_transition_timestamp_seconds ")
            .filter(|v| *v > 0.0)
    })
    .await
    .expect("the restarted sidecar shows its next transition");
    assert!(
        (next - due as f64 / 1000.0).abs() < 1e-3,
        "metric {next}, journalled {due}"
    );
    let mut at = None;
    wait_until(20, &format!("step {step} taken"), || {
        at = intent_at(journal, step);
        at.is_some()
    });
    let at = at.unwrap();
    // Without the journalled due time the restart would wait a whole new period (≥ 3.6 s,
    // i.e. ≥ 1.6 s past `due`): one second late is well inside that step's jitter (±0.4 s
    // around `due` by construction) plus a timer's and a journal sync's delay.
    assert!(
        (due..due + 1000).contains(&at),
        "step {step} taken at {at}, due {due} ({} ms late)",
        at as i64 - due as i64
    );
    assert_eq!(scheduled(journal, step).unwrap().1, 1, "scheduled once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_halfway_through_a_period_the_restart_keeps_the_due_time() {
    let (sim, stop) = common::start_sim("upgrade_window: 100ms", 1).await;
    let dir = TempDir::new("chaos-schedule");
    let config = dir.write(
        "sidecar.yaml",
        &format!(
            "listen: 127.0.0.1:0\nstate_dir: {}\nkube_server: {sim}\nwanderer:\n  space: {}\n  seed: 11\n  schedule: {{ period: 4s, jitter: 0.1 }}\n  applier: {{ kind: sim, url: \"{sim}\" }}\nproducer:\n  fleets: []\n  allocation_rate: 0\n",
            dir.display(),
            space().display(),
        ),
    );
    let journal = dir.join("journal.jsonl");

    // SIGTERM halfway through step 1's period.
    let mut first = sidecar("sidecar-1", &config, &dir);
    let due = halfway_through(&journal, 1);
    assert_eq!(terminate(&mut first).code(), Some(0));
    let mut second = sidecar("sidecar-2", &config, &dir);
    taken_at_the_original_due_time(&second, &journal, 1, due).await;

    // kill -9 halfway through step 2's period.
    let due = halfway_through(&journal, 2);
    second.kill();
    let mut third = sidecar("sidecar-3", &config, &dir);
    taken_at_the_original_due_time(&third, &journal, 2, due).await;
    assert_eq!(terminate(&mut third).code(), Some(0));
    stop.cancel();
}

/// `upsoak-chaos validate FILE` on an invalid space: asserts exit 2, returns stderr.
fn invalid(file: &std::path::Path) -> String {
    let out = Command::new(BIN)
        .arg("validate")
        .arg(file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "validate {}", file.display());
    String::from_utf8_lossy(&out.stderr).into_owned()
}
