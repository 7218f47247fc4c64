//! The agent end to end against a real Prometheus and a real Alertmanager: a crafted
//! regression is judged fail on the transition that brought it, a clean one passes, the
//! alert is held by Alertmanager with its labels; with Prometheus stopped, inconclusive.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Alertmanager, FakeGrafana, Prometheus, Sidecar, now, sidecar_server};
use tokio_util::sync::CancellationToken;
use upsoak_agent::baseline;
use upsoak_agent::eval::{History, Windows};
use upsoak_agent::prom::PromQuerier;
use upsoak_agent::run::{self, RunConfig};
use upsoak_agent::sinks::AgentMetrics;
use upsoak_agent::spec::{Specs, Verdict};

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

fn windows() -> Windows {
    Windows {
        settle: Duration::from_secs(1),
        judge: Duration::from_secs(5),
        step: None,
        alpha: 0.05,
    }
}

async fn wait_judged(dir: &std::path::Path, n: usize) -> History {
    for _ in 0..600 {
        if let Ok(h) = History::load(dir)
            && h.transitions.iter().filter(|t| t.judged.is_some()).count() >= n
        {
            return h;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("fewer than {n} transitions judged in 60 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_regression_fails_its_transition_a_clean_one_passes_and_alertmanager_holds_the_alert() {
    let stop = CancellationToken::new();
    let sc = Sidecar::default();
    sc.set(1, "1.58.0", 0.1);
    let target = sidecar_server(sc.clone(), stop.clone()).await;
    let prom = Prometheus::start(&target, "judge").await;
    let am = Alertmanager::start("judge").await;
    let grafana = FakeGrafana::default();
    let grafana_url = grafana.start(stop.clone()).await;
    prom.wait_for_samples(8).await;
    let specs = Specs::parse(SPECS, "specs").unwrap();
    let q = PromQuerier::new(&prom.url).unwrap();
    let to = now();
    let base = baseline::record(&q, &specs, to - 6, to, 1.0).await.unwrap();
    assert!((base.slos["test/latency"].mean - 0.1).abs() < 0.01);

    let dir = std::env::temp_dir().join(format!("upsoak-agent-judge-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cfg = RunConfig {
        prometheus: prom.url.clone(),
        specs,
        baseline: Some(base),
        state_dir: dir.clone(),
        alertmanager: Some(am.url.clone()),
        windows: windows(),
        max_judged: Some(2),
        grafana: Some(upsoak_agent::grafana::Grafana::new(
            &grafana_url,
            "secret-token",
        )),
        inbox: Default::default(),
        reload: None,
    };
    let metrics = AgentMetrics::default();
    let agent = tokio::spawn(run::run(cfg, metrics.clone(), stop.clone()));
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Generation 2 brings a 4x latency regression.
    sc.set(2, "1.59.0", 0.4);
    let h = wait_judged(&dir, 1).await;
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
    let mut held = serde_json::Value::Null;
    for _ in 0..100 {
        let alerts: serde_json::Value = http
            .get(format!("{}/api/v2/alerts", am.url))
            .query(&[("filter", "alertname=\"UpsoakSloViolation\"")])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if alerts.as_array().is_some_and(|a| !a.is_empty()) {
            held = alerts[0].clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let labels = &held["labels"];
    assert_eq!(labels["slo"], "latency", "{held}");
    assert_eq!(labels["group"], "test");
    assert_eq!(labels["severity"], "critical");
    assert_eq!(labels["from_version"], "1.58.0");
    assert_eq!(labels["to_version"], "1.59.0");
    assert_eq!(held["status"]["state"], "active");

    // Generation 3 undoes it: pass; the run stops after two judged transitions, overall fail.
    sc.set(3, "1.60.0", 0.1);
    let overall = tokio::time::timeout(Duration::from_secs(60), agent)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let h = History::load(&dir).unwrap();
    assert_eq!(
        h.transitions[1].judged.as_ref().unwrap().verdict,
        Verdict::Pass,
        "{:?}",
        h.transitions[1]
    );
    assert_eq!(overall, Verdict::Fail);
    assert!(metrics.alerts_sent.get() >= 1);
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
    let _ = std::fs::remove_dir_all(&dir);
    stop.cancel();
}

/// One SLO (`min(up) >= 1`, the scrape of the test's sidecar), no baseline, no Alertmanager:
/// the agent stops after judging one transition.
fn up_is_one(
    prometheus: &str,
    dir: &std::path::Path,
    inbox: upsoak_agent::webhook::Inbox,
) -> RunConfig {
    let specs = Specs::parse(
        "groups: [ { name: g, interval: 1s, slos: [ { name: up, expr: min(up), objective: \">= 1\", min_samples: 3 } ] } ]",
        "s",
    )
    .unwrap();
    RunConfig {
        prometheus: prometheus.to_owned(),
        specs,
        baseline: None,
        state_dir: dir.to_path_buf(),
        alertmanager: None,
        windows: windows(),
        max_judged: Some(1),
        grafana: None,
        inbox,
        reload: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_stopped_means_inconclusive_never_pass() {
    let stop = CancellationToken::new();
    let sc = Sidecar::default();
    sc.set(1, "1.58.0", 0.1);
    let target = sidecar_server(sc.clone(), stop.clone()).await;
    let mut prom = Prometheus::start(&target, "down").await;
    prom.wait_for_samples(3).await;
    let dir = std::env::temp_dir().join(format!("upsoak-agent-down-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cfg = up_is_one(&prom.url, &dir, Default::default());
    let agent = tokio::spawn(run::run(cfg, AgentMetrics::default(), stop.clone()));
    tokio::time::sleep(Duration::from_secs(2)).await;
    sc.set(2, "1.59.0", 0.1);
    // Seen, then Prometheus goes away before the window is judged.
    for _ in 0..100 {
        if History::load(&dir).is_ok_and(|h| !h.transitions.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    prom.stop();
    let overall = tokio::time::timeout(Duration::from_secs(30), agent)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(overall, Verdict::Inconclusive);
    let h = History::load(&dir).unwrap();
    let e = &h.transitions[0].judged.as_ref().unwrap().slos["g/up"].evidence;
    assert_eq!(e.verdict, Verdict::Inconclusive);
    assert!(e.reason.starts_with("query failed"), "{}", e.reason);
    let _ = std::fs::remove_dir_all(&dir);
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passive_mode_folds_the_users_alerts_from_alertmanager_into_the_verdict() {
    let stop = CancellationToken::new();
    let sc = Sidecar::default();
    sc.set(1, "1.58.0", 0.1);
    let target = sidecar_server(sc.clone(), stop.clone()).await;
    let prom = Prometheus::start(&target, "passive").await;
    prom.wait_for_samples(3).await;
    // The agent's own HTTP server receives Alertmanager's webhook.
    let inbox = upsoak_agent::webhook::Inbox::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let agent_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(run::serve(
        listener,
        prometheus_client::registry::Registry::default(),
        inbox.clone(),
        stop.clone(),
    ));
    let am =
        Alertmanager::start_with_webhook("passive", &format!("{agent_url}/api/v1/alertmanager"))
            .await;
    let dir = std::env::temp_dir().join(format!("upsoak-agent-passive-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cfg = up_is_one(&prom.url, &dir, inbox);
    let agent = tokio::spawn(run::run(cfg, AgentMetrics::default(), stop.clone()));
    tokio::time::sleep(Duration::from_secs(2)).await;
    sc.set(2, "1.59.0", 0.1);
    // The user's own alerting fires during the window; Alertmanager forwards it (payload v4).
    let starts = jiff::Timestamp::now().to_string();
    let r = reqwest::Client::new()
        .post(format!("{}/api/v2/alerts", am.url))
        .json(&serde_json::json!([{"labels": {"alertname": "AgonesAllocatorDown", "severity": "critical"}, "annotations": {"summary": "allocator has no endpoints"}, "startsAt": starts}]))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let overall = tokio::time::timeout(Duration::from_secs(60), agent)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(overall, Verdict::Fail);
    let h = History::load(&dir).unwrap();
    let j = h.transitions[0].judged.as_ref().unwrap();
    assert_eq!(j.slos["g/up"].evidence.verdict, Verdict::Pass);
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
        .post(format!("{agent_url}/api/v1/alertmanager"))
        .json(&serde_json::json!({"version": "3", "alerts": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let _ = std::fs::remove_dir_all(&dir);
    stop.cancel();
}
