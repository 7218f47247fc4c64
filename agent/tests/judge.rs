//! The agent end to end against a real Prometheus and a real Alertmanager: a crafted
//! regression is judged fail on the transition that brought it, a clean one passes, the
//! alert is held by Alertmanager with its labels; with Prometheus stopped, inconclusive.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::{FakeGrafana, Sidecar, TempDir, eventually, now};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use upsoak_agent::baseline;
use upsoak_agent::eval::JudgeSettings;
use upsoak_agent::events::AgentMetrics;
use upsoak_agent::history::History;
use upsoak_agent::monitor::{self, MonitorConfig, Outputs};
use upsoak_agent::prom::PromQuerier;
use upsoak_agent::spec::{Specs, Verdict};
use upsoak_agent::time::SystemClock;
use upsoak_common::ops::Health;

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
"#;

fn windows() -> JudgeSettings {
    JudgeSettings {
        settle: Duration::from_secs(1),
        judge: Duration::from_secs(5),
        step: None,
        alpha: 0.05,
    }
}

/// Runs the loop against `prometheus` on the wall clock until it stops; `health` is marked
/// ready at its first answer.
fn spawn_monitor(
    cfg: MonitorConfig,
    prometheus: &str,
    metrics: &AgentMetrics,
    health: &Health,
    stop: &CancellationToken,
) -> JoinHandle<upsoak_agent::Result<History>> {
    let q = PromQuerier::new(prometheus, None).unwrap();
    let (metrics, health, stop) = (metrics.clone(), health.clone(), stop.clone());
    tokio::spawn(async move {
        let out = Outputs {
            metrics: &metrics,
            ready: &health,
        };
        monitor::run(cfg, &q, &SystemClock, out, &stop).await
    })
}

/// Waits until the history in `dir` satisfies `f`, as the agent writes it.
async fn wait_history(dir: &Path, what: &str, f: impl Fn(&History) -> bool) -> History {
    eventually(60, what, || async {
        History::load(dir).ok().filter(|h| f(h))
    })
    .await
}

/// Waits until the agent has seen `generation`: only a change after that is a transition.
async fn wait_generation(dir: &Path, generation: u64) {
    wait_history(dir, &format!("generation {generation} seen"), |h| {
        h.last_generation == Some(generation)
    })
    .await;
}

async fn wait_judged(dir: &Path, n: usize) -> History {
    wait_history(dir, &format!("{n} transitions judged"), |h| {
        h.transitions.iter().filter(|t| t.judged.is_some()).count() >= n
    })
    .await
}

/// The value of `series` on the agent's `/metrics`.
fn shown(metrics: &AgentMetrics, series: &str) -> Option<f64> {
    upsoak_testkit::sample(&common::encoded(|r| metrics.register(r)), series)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_regression_fails_its_transition_a_clean_one_passes_and_alertmanager_holds_the_alert() {
    let stop = CancellationToken::new();
    let sc = Sidecar::default();
    sc.set(1, "1.58.0", 0.1);
    let sidecar = sc.serve().await;
    let tmp = TempDir::new("agent-judge");
    let prom = common::prometheus(tmp.path(), &sidecar.addr()).await;
    let am = common::alertmanager(tmp.path(), None).await;
    let grafana = FakeGrafana::default();
    let grafana_url = grafana.start(stop.clone()).await;
    common::wait_for_samples(&prom, 8).await;
    let specs = Specs::parse(SPECS, "specs").unwrap();
    let q = PromQuerier::new(prom.url(), None).unwrap();
    let to = now();
    let base = baseline::record(&q, &specs, to - 6, to, 1.0)
        .await
        .unwrap()
        .baseline;
    assert!((base.slos["test/latency"].mean - 0.1).abs() < 0.01);

    let state = TempDir::new("agent-judge-state");
    let dir = state.path();
    let cfg = MonitorConfig {
        specs,
        baseline: Some(base),
        state_dir: dir.to_owned(),
        alertmanager: Some(am.url().to_owned()),
        judge: windows(),
        max_judged: Some(2),
        grafana: Some(upsoak_agent::grafana::Grafana::new(
            &grafana_url,
            "secret-token",
        )),
        inbox: Default::default(),
        reload: None,
        alert_timeouts: upsoak_agent::http::Timeouts::SINK,
        unhealthy_after: upsoak_agent::monitor::DEFAULT_UNHEALTHY_AFTER,
        steady_every: None,
        auto_baseline: None,
        alert_labels: Default::default(),
    };
    let metrics = AgentMetrics::default();
    let agent = spawn_monitor(cfg, prom.url(), &metrics, &Health::new(), &stop);
    wait_generation(dir, 1).await;

    // Generation 2 brings a 4x latency regression.
    sc.set(2, "1.59.0", 0.4);
    let h = wait_judged(dir, 1).await;
    let t = &h.transitions[0];
    assert_eq!(
        (
            t.generation,
            t.from["version"].as_str(),
            t.to["version"].as_str()
        ),
        (2, "1.58.0", "1.59.0")
    );
    let j = t.judged.as_ref().unwrap();
    assert_eq!(j.verdict, Verdict::Fail, "{j:?}");
    let e = &j.slos["test/latency"].evidence;
    assert!(
        e.p_value.unwrap() < 0.05 && e.value.unwrap() > e.threshold.unwrap(),
        "{e:?}"
    );

    // Alertmanager holds the alert with its labels.
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
    let labels = &held["labels"];
    assert_eq!(labels["slo"], "latency", "{held}");
    assert_eq!(labels["group"], "test");
    assert_eq!(labels["severity"], "critical");
    assert_eq!(labels["from_version"], "1.58.0");
    assert_eq!(labels["to_version"], "1.59.0");
    assert_eq!(held["status"]["state"], "active");

    // Generation 3 undoes it: pass; the run stops after two judged transitions, overall fail.
    sc.set(3, "1.60.0", 0.1);
    let h = tokio::time::timeout(Duration::from_secs(60), agent)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        h.progress(),
        History::load(dir).unwrap().progress(),
        "the history returned is the one kept"
    );
    assert_eq!(
        h.transitions[1].judged.as_ref().unwrap().verdict,
        Verdict::Pass,
        "{:?}",
        h.transitions[1]
    );
    assert_eq!(h.overall(), Verdict::Fail);
    assert!(shown(&metrics, "upsoak_agent_alerts_sent_total ").unwrap() >= 1.0);
    // Grafana got a region per transition and a point per verdict change, all well-formed.
    assert!(
        grafana.refused.lock().unwrap().is_empty(),
        "{:?}",
        grafana.refused.lock().unwrap()
    );
    let got = grafana.accepted.lock().unwrap().clone();
    let regions: Vec<&serde_json::Value> =
        got.iter().filter(|a| a.get("timeEnd").is_some()).collect();
    assert_eq!(regions.len(), 2, "{got:?}");
    assert!(
        regions[0]["text"]
            .as_str()
            .unwrap()
            .contains("1.58.0 → 1.59.0")
    );
    let points: Vec<String> = got
        .iter()
        .filter(|a| a.get("timeEnd").is_none())
        .map(|a| a["tags"][2].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(points, vec!["fail", "pass"], "{got:?}");
    // The report says the same, and its exit code is 1.
    let text = upsoak_agent::report::text(&h);
    assert!(
        text.contains("generation 2: 1.58.0 → 1.59.0") && text.contains("overall: FAIL"),
        "{text}"
    );
    assert_eq!(
        upsoak_agent::report::exit_code(h.overall()),
        upsoak_agent::exit::FAIL
    );
    stop.cancel();
}

/// One SLO (`min(up) >= 1`, the scrape of the test's sidecar), no baseline, no Alertmanager:
/// the agent stops after judging one transition.
fn up_is_one(dir: &Path, inbox: upsoak_agent::webhook::Inbox) -> MonitorConfig {
    let specs = Specs::parse(
        "groups: [ { name: g, interval: 1s, slos: [ { name: up, expr: min(up), objective: \">= 1\", min_samples: 3 } ] } ]",
        "s",
    )
    .unwrap();
    MonitorConfig {
        specs,
        baseline: None,
        state_dir: dir.to_path_buf(),
        alertmanager: None,
        judge: windows(),
        max_judged: Some(1),
        grafana: None,
        inbox,
        reload: None,
        alert_timeouts: upsoak_agent::http::Timeouts::SINK,
        unhealthy_after: upsoak_agent::monitor::DEFAULT_UNHEALTHY_AFTER,
        steady_every: None,
        auto_baseline: None,
        alert_labels: Default::default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_stopped_means_inconclusive_never_pass() {
    let stop = CancellationToken::new();
    let sc = Sidecar::default();
    sc.set(1, "1.58.0", 0.1);
    let sidecar = sc.serve().await;
    let tmp = TempDir::new("agent-down");
    let mut prom = common::prometheus(tmp.path(), &sidecar.addr()).await;
    common::wait_for_samples(&prom, 3).await;
    let state = TempDir::new("agent-down-state");
    let dir = state.path();
    let metrics = AgentMetrics::default();
    let agent = spawn_monitor(
        up_is_one(dir, Default::default()),
        prom.url(),
        &metrics,
        &Health::new(),
        &stop,
    );
    wait_generation(dir, 1).await;
    sc.set(2, "1.59.0", 0.1);
    // Seen, then Prometheus goes away before the window is judged.
    wait_history(dir, "the transition recorded", |h| {
        !h.transitions.is_empty()
    })
    .await;
    let _ = prom.stop();
    let h = tokio::time::timeout(Duration::from_secs(30), agent)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(h.overall(), Verdict::Inconclusive);
    let e = &h.transitions[0].judged.as_ref().unwrap().slos["g/up"].evidence;
    assert_eq!(e.verdict, Verdict::Inconclusive);
    assert!(e.reason.starts_with("query failed"), "{}", e.reason);
    // The failed queries are counted for the SLO's own group, and its health shows it.
    assert!(
        shown(
            &metrics,
            "upsoak_agent_rule_evaluation_failures_total{group=\"g\"}"
        )
        .unwrap()
            >= 2.0
    );
    assert_eq!(
        shown(&metrics, "upsoak_agent_slo_health{group=\"g\",slo=\"up\"}"),
        Some(0.0)
    );
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passive_mode_folds_the_users_alerts_from_alertmanager_into_the_verdict() {
    let stop = CancellationToken::new();
    let sc = Sidecar::default();
    sc.set(1, "1.58.0", 0.1);
    let sidecar = sc.serve().await;
    let tmp = TempDir::new("agent-passive");
    let prom = common::prometheus(tmp.path(), &sidecar.addr()).await;
    common::wait_for_samples(&prom, 3).await;
    // The agent's own HTTP server receives Alertmanager's webhook, which must send a token.
    let inbox = upsoak_agent::webhook::Inbox::default();
    let token_file = tmp.path().join("webhook-token");
    std::fs::write(&token_file, "s3cret-webhook-token\n").unwrap();
    let auth = upsoak_agent::webhook::WebhookAuth::from_files(Some(&token_file), None)
        .unwrap()
        .map(std::sync::Arc::new);
    let webhook_with_token = upsoak_agent::webhook::Webhook {
        inbox: inbox.clone(),
        auth,
        metrics: AgentMetrics::default(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let agent_url = format!("http://{}", listener.local_addr().unwrap());
    let health = Health::new();
    tokio::spawn(upsoak_agent::server::serve(
        listener,
        prometheus_client::registry::Registry::default(),
        webhook_with_token,
        health.clone(),
        tmp.path().to_owned(),
        upsoak_common::server::Limits::default(),
        stop.clone(),
    ));
    let readyz = || async {
        reqwest::get(format!("{agent_url}/readyz"))
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(
        readyz().await,
        503,
        "not ready before Prometheus has answered"
    );
    let webhook = format!("{agent_url}{}", upsoak_agent::server::WEBHOOK_PATH);
    let am = common::alertmanager_with_http_config(
        tmp.path(),
        Some(&webhook),
        &format!(
            "        http_config:\n          authorization:\n            credentials_file: '{}'\n",
            token_file.display()
        ),
    )
    .await;
    let state = TempDir::new("agent-passive-state");
    let dir = state.path();
    let cfg = up_is_one(dir, inbox);
    let agent = spawn_monitor(cfg, prom.url(), &AgentMetrics::default(), &health, &stop);
    wait_generation(dir, 1).await;
    assert_eq!(readyz().await, 200, "ready once Prometheus has answered");
    sc.set(2, "1.59.0", 0.1);
    // A forged alert posted without the token (as anyone on the network could) is refused with
    // a challenge, and changes no verdict (checked on the judged transition below).
    let forged = serde_json::json!({"version": "4", "status": "firing", "alerts": [{"status": "firing", "labels": {"alertname": "ForgedOutage", "severity": "critical"}, "annotations": {"summary": "forged"}, "startsAt": "2000-01-01T00:00:00Z"}]});
    for auth in [
        None,
        Some("Bearer wrong-token"),
        Some("Basic czNjcmV0LXdlYmhvb2stdG9rZW4="),
    ] {
        let mut req = reqwest::Client::new().post(&webhook).json(&forged);
        if let Some(a) = auth {
            req = req.header("Authorization", a);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status().as_u16(), 401, "{auth:?}");
        assert!(r.headers().contains_key("www-authenticate"), "{auth:?}");
    }
    // The user's own alerting fires during the window; Alertmanager forwards it (payload v4)
    // with the token from its http_config.
    let starts = jiff::Timestamp::now().to_string();
    let r = reqwest::Client::new()
        .post(format!("{}/api/v2/alerts", am.url()))
        .json(&serde_json::json!([{"labels": {"alertname": "AgonesAllocatorDown", "severity": "critical"}, "annotations": {"summary": "allocator has no endpoints"}, "startsAt": starts}]))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let h = tokio::time::timeout(Duration::from_secs(60), agent)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(h.overall(), Verdict::Fail);
    let j = h.transitions[0].judged.as_ref().unwrap();
    assert_eq!(j.slos["g/up"].evidence.verdict, Verdict::Pass);
    assert!(
        !j.slos.keys().any(|k| k.contains("ForgedOutage")),
        "a refused post changed a verdict: {:?}",
        j.slos.keys()
    );
    let folded = &j.slos["alertmanager/AgonesAllocatorDown"];
    assert_eq!(folded.evidence.verdict, Verdict::Fail);
    assert!(
        folded
            .evidence
            .reason
            .contains("allocator has no endpoints"),
        "{}",
        folded.evidence.reason
    );
    // A payload of another version is refused.
    let r = reqwest::Client::new()
        .post(&webhook)
        .bearer_auth("s3cret-webhook-token")
        .json(&serde_json::json!({"version": "3", "alerts": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    stop.cancel();
}

/// The same latency, judged plainly and `baseline_by` the batch wait it moves with.
const BY_WAIT_SPECS: &str = r#"
groups:
  - name: test
    interval: 1s
    slos:
      - name: plain
        expr: sum(upsoak_test_latency_seconds)
        baseline: "<= +20%"
        objective: "<= 2"
        min_samples: 3
      - name: by-wait
        expr: sum(upsoak_test_latency_seconds)
        baseline: "<= +20%"
        objective: "<= 2"
        min_samples: 3
        baseline_by: [tunable:allocationBatchWaitTime]
"#;

/// A tunable that moves an SLO by design (the batch wait, by which Agones' allocator sleeps
/// when its queue is empty): through the agent's real loop against a real Prometheus, the
/// `baseline_by` SLO is judged without a baseline at a new batch wait (row 5, the values in the
/// reason), against an earlier window at it next time only if that window's transition passed
/// as a whole (the raise to 800 failed `plain`, so it lends nothing; the cut to 300 passed and
/// does, and a real regression there fails), and against the recorded baseline back at its
/// batch wait; the plain SLO fails the clean raise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_baseline_by_slo_is_judged_against_a_baseline_at_the_same_batch_wait() {
    let stop = CancellationToken::new();
    let sc = Sidecar::default();
    let wait = |ms: u32| format!("allocationBatchWaitTime={ms}&logLevel=info");
    sc.set_with_tunables(1, "1.58.0", &wait(500), 0.1);
    let sidecar = sc.serve().await;
    let tmp = TempDir::new("agent-by-wait");
    let prom = common::prometheus(tmp.path(), &sidecar.addr()).await;
    common::wait_for_samples(&prom, 8).await;
    let specs = Specs::parse(BY_WAIT_SPECS, "specs").unwrap();
    let q = PromQuerier::new(prom.url(), None).unwrap();
    let to = now();
    let base = baseline::record(&q, &specs, to - 6, to, 1.0)
        .await
        .unwrap()
        .baseline;
    assert_eq!(base.configuration["tunables"], wait(500));

    let state = TempDir::new("agent-by-wait-state");
    let dir = state.path();
    let mut cfg = up_is_one(dir, Default::default());
    cfg.specs = specs;
    cfg.baseline = Some(base);
    cfg.max_judged = Some(5);
    let metrics = AgentMetrics::default();
    let agent = spawn_monitor(cfg, prom.url(), &metrics, &Health::new(), &stop);
    wait_generation(dir, 1).await;
    let evidence = |h: &History, i: usize, slo: &str| {
        h.transitions[i].judged.as_ref().unwrap().slos[&format!("test/{slo}")]
            .evidence
            .clone()
    };

    // Generation 2 raises the batch wait and, by design, the latency four times.
    sc.set_with_tunables(2, "1.59.0", &wait(800), 0.4);
    let h = wait_judged(dir, 1).await;
    let plain = evidence(&h, 0, "plain");
    assert_eq!(plain.verdict, Verdict::Fail, "{}", plain.reason);
    let by = evidence(&h, 0, "by-wait");
    assert_eq!(by.verdict, Verdict::Pass, "{}", by.reason);
    assert!(
        by.reason.contains("no baseline at tunable:allocationBatchWaitTime=800 (the recorded one is at tunable:allocationBatchWaitTime=500"),
        "{}",
        by.reason
    );

    // Generation 3 keeps it: generation 2 failed as a whole (on `plain`), so its passing
    // `by-wait` window is no baseline (issue 24 item 5); the objective decides again.
    sc.set_with_tunables(3, "1.60.0", &wait(800), 0.4);
    let h = wait_judged(dir, 2).await;
    let by = evidence(&h, 1, "by-wait");
    assert_eq!(by.verdict, Verdict::Pass, "{}", by.reason);
    assert!(
        by.reason
            .contains("no baseline at tunable:allocationBatchWaitTime=800 (the recorded one is at tunable:allocationBatchWaitTime=500, and no earlier passing window at it)"),
        "{}",
        by.reason
    );

    // Generation 4 cuts it to 300 at the recorded latency: `plain` passes, `by-wait` has no
    // baseline at 300 and passes on its objective, so generation 4 passed as a whole.
    sc.set_with_tunables(4, "1.60.1", &wait(300), 0.1);
    let h = wait_judged(dir, 3).await;
    assert_eq!(
        h.transitions[2].judged.as_ref().unwrap().verdict,
        Verdict::Pass
    );

    // Generation 5 keeps 300 and regresses: judged against generation 4's passing window.
    sc.set_with_tunables(5, "1.61.0", &wait(300), 0.9);
    let h = wait_judged(dir, 4).await;
    let by = evidence(&h, 3, "by-wait");
    assert_eq!(by.verdict, Verdict::Fail, "{}", by.reason);
    assert!(
        by.reason
            .ends_with("baseline learned from generation 4 at tunable:allocationBatchWaitTime=300"),
        "{}",
        by.reason
    );
    assert!((by.baseline.unwrap() - 0.1).abs() < 0.02, "{by:?}");

    // Generation 6 goes back to 500: the recorded baseline again.
    sc.set_with_tunables(6, "1.62.0", &wait(500), 0.1);
    let h = tokio::time::timeout(Duration::from_secs(60), agent)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let by = evidence(&h, 4, "by-wait");
    assert_eq!(by.verdict, Verdict::Pass, "{}", by.reason);
    assert!(
        by.reason
            .ends_with("baseline recorded at tunable:allocationBatchWaitTime=500"),
        "{}",
        by.reason
    );
    // The report shows where each baseline came from.
    let text = upsoak_agent::report::text(&h);
    assert!(
        text.contains("baseline learned from generation 4"),
        "{text}"
    );
    stop.cancel();
}
