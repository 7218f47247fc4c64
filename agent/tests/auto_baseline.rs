//! `upsoak-agent run --baseline auto` against a real Prometheus scraping a fake sidecar that
//! exports the Wanderer's real apply metrics, and a real Alertmanager: with no baseline file,
//! the agent records one from the steady period before the first transition's apply (bounded by
//! the sidecar's start + settle, leaving out the SLO without data), judges that transition
//! against it, and posts its alert with the agent's `namespace`. Everything is configured the
//! way the deploy does it: from the environment (`UPSOAK_…`). A restart loads the file.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{TempDir, eventually, now};
use upsoak_agent::baseline::Baseline;
use upsoak_agent::history::History;
use upsoak_agent::spec::Verdict;
use upsoak_common::names::wanderer as names;

const BIN: &str = env!("CARGO_BIN_EXE_upsoak-agent");

const SPECS: &str = r#"
groups:
  - name: test
    interval: 1s
    slos:
      - name: latency
        expr: sum(upsoak_test_latency_seconds)
        baseline: "<= +20%"
        min_samples: 3
        severity: critical
      - name: missing
        expr: sum(upsoak_test_not_exported)
        baseline: "<= +20%"
        min_samples: 3
"#;

/// What the fake sidecar exports: the Wanderer's generation, configuration and apply phases
/// under their real names, its process start, and a latency gauge that wobbles.
struct Sidecar {
    generation: u64,
    version: &'static str,
    latency: f64,
    process_start: i64,
    apply_generation: u64,
    apply_started: f64,
    apply_finished: f64,
    last_transition: f64,
    scrapes: u64,
}

impl Sidecar {
    fn render(&mut self) -> String {
        self.scrapes += 1;
        let wobble = 1.0 + 0.05 * ((self.scrapes * 7919 % 13) as f64 / 6.0 - 1.0);
        let gauge = |name: &str, v: f64| format!("# TYPE {name} gauge\n{name} {v}\n");
        [
            gauge(names::GENERATION, self.generation as f64),
            format!(
                "# TYPE {info} gauge\n{info}{{{v}=\"{}\"}} 1\n",
                self.version,
                info = names::CONFIG_INFO,
                v = names::VERSION_LABEL
            ),
            gauge("upsoak_test_latency_seconds", self.latency * wobble),
            gauge("process_start_time_seconds", self.process_start as f64),
            gauge(names::APPLY_GENERATION, self.apply_generation as f64),
            gauge(names::APPLY_STARTED_TIMESTAMP_SECONDS, self.apply_started),
            gauge(names::APPLY_FINISHED_TIMESTAMP_SECONDS, self.apply_finished),
            gauge(
                names::LAST_TRANSITION_TIMESTAMP_SECONDS,
                self.last_transition,
            ),
        ]
        .concat()
    }
}

fn unix_f64() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// The agent, configured from the environment as the deploy does.
fn agent(
    prometheus: &str,
    alertmanager: &str,
    specs: &std::path::Path,
    state: &std::path::Path,
) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args([
        "run",
        "--no-probes",
        "--listen",
        "127.0.0.1:0",
        "--max-transitions",
        "1",
    ])
    .arg("--specs")
    .arg(specs)
    .arg("--state-dir")
    .arg(state)
    .env("UPSOAK_PROMETHEUS", prometheus)
    .env("UPSOAK_ALERTMANAGER", alertmanager)
    .env("UPSOAK_BASELINE", "auto")
    .env("UPSOAK_SETTLE", "1s")
    .env("UPSOAK_JUDGE_WINDOW", "20s")
    .env("UPSOAK_NAMESPACE", "upsoak-test")
    .env("RUST_LOG", "info")
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_records_the_steady_baseline_before_the_first_apply_and_judges_against_it() {
    let start = now();
    // A previous transition finished at start+1 and went live at start+2; the sidecar started
    // (again) at start+3: the steady period opens at start+3 + settle.
    let sidecar = Arc::new(Mutex::new(Sidecar {
        generation: 1,
        version: "1.58.0",
        latency: 0.1,
        process_start: start + 3,
        apply_generation: 1,
        apply_started: start as f64,
        apply_finished: (start + 1) as f64,
        last_transition: (start + 2) as f64,
        scrapes: 0,
    }));
    let served = sidecar.clone();
    let target = common::serve_metrics(move || served.lock().unwrap().render()).await;
    let tmp = TempDir::new("agent-auto");
    let prom = common::prometheus(tmp.path(), &target.addr()).await;
    let am = common::alertmanager(tmp.path(), None).await;
    let specs = tmp.write("slos.yaml", SPECS);
    let state = tmp.path().join("state");

    let mut child = agent(prom.url(), am.url(), &specs, &state).spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let log = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines() {
            all.push_str(&line.unwrap());
            all.push('\n');
        }
        all
    });
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert!(first.starts_with("listening on"), "{first}");
    let mut second = String::new();
    stdout.read_line(&mut second).unwrap();
    assert!(
        second.starts_with("--baseline auto: no ") && second.contains("baseline.json yet"),
        "{second}"
    );
    eventually(60, "the agent has seen generation 1", || async {
        History::load(&state)
            .ok()
            .filter(|h| h.last_generation == Some(1))
    })
    .await;
    // Steady data from start+4 on, then the apply starts.
    while now() < start + 12 {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let apply = unix_f64();
    {
        let mut s = sidecar.lock().unwrap();
        s.apply_generation = 2;
        s.apply_started = apply;
        // The upgrade disrupts: no part of it may enter the baseline.
        s.latency = 0.5;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    {
        let mut s = sidecar.lock().unwrap();
        let live = unix_f64();
        s.apply_finished = live;
        s.last_transition = live;
        s.generation = 2;
        s.version = "1.59.0";
        // Generation 2 brings a 4x regression: only a baseline can tell.
        s.latency = 0.4;
    }
    let code = eventually(90, "the agent stops after one judged transition", || {
        let done = child.try_wait().unwrap();
        async move { done }
    })
    .await
    .code();
    let log = log.join().unwrap();
    assert_eq!(code, Some(i32::from(upsoak_agent::exit::FAIL)), "{log}");

    // The baseline file: the steady window before the apply, no earlier than the sidecar's
    // start + settle, without the SLO that has no data.
    let b = Baseline::load(&state.join("baseline.json")).unwrap();
    assert_eq!(b.to, apply.floor() as i64, "{log}");
    assert_eq!(b.from, start + 3 + 1, "{log}");
    assert_eq!(b.slos.keys().collect::<Vec<_>>(), vec!["test/latency"]);
    let lat = &b.slos["test/latency"];
    assert!(
        (lat.mean - 0.1).abs() < 0.01 && lat.count >= 3,
        "the apply's 0.5 must stay out: {lat:?}"
    );
    assert_eq!(b.configuration["version"], "1.58.0");
    assert!(
        log.contains("left out of the automatic baseline") && log.contains("test/missing"),
        "{log}"
    );

    // The first transition was judged against it: a fail, with the baseline's mean as evidence.
    let h = History::load(&state).unwrap();
    let j = h.transitions[0].judged.as_ref().unwrap();
    assert_eq!(j.verdict, Verdict::Fail, "{j:?}");
    let e = &j.slos["test/latency"].evidence;
    assert!((e.baseline.unwrap() - lat.mean).abs() < 1e-9, "{e:?}");

    // Alertmanager holds the alert with the agent's namespace.
    let http = reqwest::Client::new();
    let filter = format!("alertname=\"{}\"", upsoak_agent::sinks::ALERT_NAME);
    let held = eventually(10, "Alertmanager holds the alert", || async {
        let alerts: serde_json::Value = http
            .get(format!("{}/api/v2/alerts", am.url()))
            .query(&[("filter", filter.as_str())])
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        alerts.as_array()?.first().cloned()
    })
    .await;
    assert_eq!(held["labels"]["namespace"], "upsoak-test", "{held}");
    assert_eq!(held["labels"]["slo"], "latency", "{held}");

    // A restart finds the file and judges against it from the start.
    let mut again = agent(prom.url(), am.url(), &specs, &state).spawn().unwrap();
    let mut out = BufReader::new(again.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(line.starts_with("listening on"), "{line}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    again.kill().unwrap();
    let rest = again.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&rest.stderr);
    assert!(err.contains("baseline loaded"), "{err}");
}
