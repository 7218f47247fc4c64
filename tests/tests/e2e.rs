//! End-to-end soaks: the simulator, the sidecar, Prometheus, Alertmanager and the agent as real
//! processes on loopback (see `upsoak_tests::Stack`). Each soak is bounded (a minute or two)
//! and stops by itself. The walk alternates 1.58.0 and 1.59.0; faults are tied to 1.59.0, so
//! the transition that introduces a fault is always generation 1 (and every odd one).
//!
//! These run one at a time (`make test` runs this crate with one test thread after the rest):
//! soaks on a loaded 2-core machine would judge each other's noise.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use serde_json::Value;
use upsoak_testkit::eventually;
use upsoak_tests::{
    Soak, Stack, detection_latency, fault_on_1_59, slos_with, soak, summary, verdict, version,
};

/// How often these tests poll the stack's state.
const POLL: Duration = Duration::from_millis(200);

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_clean_soak_passes_every_transition_without_an_alert() {
    let mut s = soak("clean", Soak::default(), Some(3)).await;
    let agent = s.agent.as_mut().unwrap();
    let status = agent.wait_exit(secs(150)).await;
    let judged = s.judged();
    let all: Vec<String> = judged.iter().map(summary).collect();
    assert_eq!(judged.len(), 3, "{}\n{}", all.join("\n"), s.logs());
    for t in &judged {
        assert!(
            slos_with(t, "fail").is_empty() && slos_with(t, "inconclusive").is_empty(),
            "a clean transition was not passed:\n{}",
            summary(t)
        );
        assert!(
            matches!(verdict(t).as_str(), "pass" | "warn"),
            "{}",
            summary(t)
        );
    }
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "the agent exits 0 on a pass\n{}",
        all.join("\n")
    );
    assert!(
        s.alerts().await.is_empty(),
        "Alertmanager holds no alert after a clean soak"
    );
    let (code, text) = s.report("text");
    assert_eq!(code, 0, "{text}");
}

/// Each fault kind of the simulator, tied to 1.59.0: the transition to 1.59.0 fails on the
/// SLO that watches that kind, within the judge window plus two evaluation intervals.
async fn fault_is_caught(kind: &str, fault: &str, expected: &[&str]) {
    let soak_cfg = Soak {
        faults: fault_on_1_59(kind, fault),
        ..Soak::default()
    };
    let (judge, interval) = (soak_cfg.judge_s, soak_cfg.interval_s);
    let mut s = soak(kind, soak_cfg, Some(1)).await;
    let status = s.agent.as_mut().unwrap().wait_exit(secs(90)).await;
    let judged = s.judged();
    assert_eq!(judged.len(), 1, "{}", s.logs());
    let t = &judged[0];
    assert_eq!(
        (
            t["generation"].as_u64(),
            version(t, "from"),
            version(t, "to")
        ),
        (Some(1), "1.58.0".into(), "1.59.0".into()),
        "attributed to the transition that introduced the fault"
    );
    assert_eq!(verdict(t), "fail", "{}", summary(t));
    let failed = slos_with(t, "fail");
    assert!(
        expected.iter().any(|e| failed.iter().any(|f| f == e)),
        "{kind}: expected one of {expected:?} to fail, failed: {failed:?}\n{}",
        summary(t)
    );
    let latency = detection_latency(t);
    println!(
        "{kind}: caught by {failed:?}; verdict {latency:.0}s after the judged window opened (bound {}s)",
        judge + 2 * interval
    );
    assert!(
        latency <= (judge + 2 * interval) as f64,
        "{kind}: verdict {latency}s after the window opened"
    );
    assert_eq!(status.and_then(|s| s.code()), Some(1), "fail exits 1");
    // Alertmanager holds the alert with the transition's versions.
    let alerts = eventually(secs(20), POLL, || async {
        let a = s.alerts().await;
        (!a.is_empty()).then_some(a)
    })
    .await
    .expect("the alert in Alertmanager");
    assert!(
        alerts
            .iter()
            .any(|a| a["labels"]["alertname"] == "UpsoakSloViolation"
                && a["labels"]["to_version"] == "1.59.0"
                && a["labels"]["from_version"] == "1.58.0")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn allocation_latency_is_caught_on_its_transition() {
    fault_is_caught(
        "allocation_latency",
        "multiplier: 6, added: 40ms",
        &["allocation/allocation-latency-p99"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn allocation_failures_are_caught_on_their_transition() {
    fault_is_caught(
        "allocation_failures",
        "rate: 0.5",
        &["allocation/allocation-success"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn game_server_failures_are_caught_on_their_transition() {
    fault_is_caught(
        "game_server_failures",
        "per_second: 0.05, state: Error",
        &["fleets/gameservers-failed"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reconcile_stall_is_caught_on_its_transition() {
    fault_is_caught(
        "reconcile_stall",
        "",
        &["fleets/fleet-converged", "allocation/allocation-success"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn controller_memory_growth_is_caught_on_its_transition() {
    fault_is_caught(
        "memory_growth",
        "bytes_per_second: 5000000",
        &["control-plane/controller-memory-growth"],
    )
    .await;
}

/// Steps of the journal's intents, and of its outcomes by result.
fn journal_steps(j: &[Value]) -> (Vec<u64>, Vec<(u64, String)>) {
    let intents = j
        .iter()
        .filter(|e| e["type"] == "intent")
        .filter_map(|e| e["step"].as_u64())
        .collect();
    let outcomes = j
        .iter()
        .filter(|e| e["type"] == "outcome")
        .filter_map(|e| Some((e["step"].as_u64()?, e["result"].as_str()?.to_owned())))
        .collect();
    (intents, outcomes)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sidecar_killed_mid_transition_resumes_its_walk_without_losing_or_repeating_one() {
    let soak_cfg = Soak {
        period_s: 5,
        ..Soak::default()
    };
    let mut s = Stack::start("kill9", soak_cfg).await;
    s.wait_generation(2, 40).await;
    // Kill it inside the next transition: the install is posted, the outcome not yet written.
    eventually(secs(30), POLL, || async {
        s.scrape(&s.sim_url, "upsoak_sim_upgrade_in_progress")
            .await
            .filter(|v| *v == 1.0)
    })
    .await
    .expect("an upgrade window");
    s.chaos.as_mut().unwrap().kill();
    let before = s.journal();
    let (intents_before, _) = journal_steps(&before);
    let last_before = *intents_before.last().unwrap();
    s.start_sidecar().await;
    s.wait_generation(last_before + 2, 60).await;
    s.chaos.as_mut().unwrap().terminate(secs(20));
    let j = s.journal();
    // Journal intact: everything written before the kill is still there, in order.
    assert_eq!(&j[..before.len()], &before[..], "the journal lost lines");
    let (intents, outcomes) = journal_steps(&j);
    // The walk resumed where it was: the steps continue without a gap or a repeat, and each
    // transition starts from the configuration the previous one reached.
    let expected: Vec<u64> = (1..=*intents.last().unwrap()).collect();
    assert_eq!(intents, expected, "no step lost or taken twice");
    let pairs: Vec<(String, String)> = j
        .iter()
        .filter(|e| e["type"] == "intent")
        .map(|e| {
            (
                e["from"]["version"].as_str().unwrap().to_owned(),
                e["to"]["version"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for w in pairs.windows(2) {
        assert_eq!(
            w[0].1, w[1].0,
            "the walk continued from where it was: {pairs:?}"
        );
    }
    // The interrupted step was recorded as indeterminate, then observed, not re-applied.
    assert!(
        outcomes.contains(&(last_before, "indeterminate".into())),
        "{outcomes:?}"
    );
    assert!(
        outcomes.contains(&(last_before, "observed".into())),
        "{outcomes:?}"
    );
    // The simulator received exactly one install per step (none applied twice).
    let installs = s
        .scrape(&s.sim_url, "upsoak_sim_installs_total")
        .await
        .unwrap();
    assert_eq!(
        installs as u64,
        *intents.last().unwrap(),
        "installs the simulator received"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn prometheus_down_makes_the_verdict_inconclusive_never_pass_and_the_agent_recovers() {
    let mut s = soak("promdown", Soak::default(), None).await;
    // The first transition is seen; Prometheus goes away for 30 s across its judged window.
    eventually(secs(40), POLL, || async {
        s.history()["transitions"]
            .as_array()
            .filter(|a| !a.is_empty())
            .map(|_| ())
    })
    .await
    .expect("the first transition detected");
    s.stop_prometheus();
    // The outage's length is what is under test, not a wait for some state.
    tokio::time::sleep(secs(30)).await;
    s.start_prometheus().await;
    let judged = s.wait_judged(3, 90).await;
    let all: Vec<String> = judged.iter().map(summary).collect();
    let t1 = &judged[0];
    assert_eq!(verdict(t1), "inconclusive", "{}", all.join("\n"));
    let reasons: Vec<String> = t1["judged"]["slos"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v["evidence"]["reason"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        reasons.iter().all(|r| r.starts_with("query failed")),
        "every SLO says why: {reasons:?}"
    );
    // A window that overlapped the outage is never passed; the one after it is judged normally.
    for t in &judged {
        let start = t["judged"]["window_start"].as_i64().unwrap();
        let down_until = t1["judged"]["window_start"].as_i64().unwrap() + 30;
        if start < down_until {
            assert_ne!(verdict(t), "pass", "{}", summary(t));
        }
    }
    let last = judged.last().unwrap();
    assert!(
        matches!(verdict(last).as_str(), "pass" | "warn"),
        "recovered: {}",
        all.join("\n")
    );
    let failures = s
        .scrape(
            &s.agent_url(),
            "upsoak_agent_rule_evaluation_failures_total",
        )
        .await
        .unwrap_or(0.0);
    assert!(failures > 0.0, "the failed queries are counted");
    let (code, _) = s.report("text");
    assert_eq!(
        code, 3,
        "an inconclusive transition makes the run inconclusive"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_agent_killed_and_restarted_keeps_its_history_and_report() {
    let mut s = soak("agent-restart", Soak::default(), None).await;
    s.wait_judged(1, 60).await;
    let (_, before) = s.report("json");
    let before: Value = serde_json::from_str(&before).unwrap();
    s.agent.as_mut().unwrap().kill();
    s.start_agent(None).await;
    let judged = s.wait_judged(2, 60).await;
    let generations: Vec<u64> = s.history()["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["generation"].as_u64().unwrap())
        .collect();
    let mut unique = generations.clone();
    unique.dedup();
    assert_eq!(generations, unique, "no transition recorded twice");
    let (_, after) = s.report("json");
    let after: Value = serde_json::from_str(&after).unwrap();
    // What the restarted agent adds by right: the steady period closed once the next
    // transition came (`steady_closed`). Everything judged before the kill stays as it was.
    let mut first = after["transitions"][0].clone();
    if let Some(t) = first.as_object_mut()
        && before["transitions"][0].get("steady_closed").is_none()
    {
        t.remove("steady_closed");
    }
    assert_eq!(
        first, before["transitions"][0],
        "the report of the first transition is unchanged"
    );
    assert!(judged.len() >= 2);
    // The restarted agent re-exports what it had judged before.
    let exported = s
        .scrape(&s.agent_url(), "upsoak_agent_slo_verdict")
        .await
        .unwrap_or(0.0);
    assert!(
        exported > 0.0,
        "verdicts are exported again after the restart"
    );
    // Every slot exports each SLO's live value: the controller probe reads 1.
    let ready = s
        .scrape(
            &s.agent_url(),
            "upsoak_agent_slo_current{group=\"control-plane\",slo=\"controller-ready\"}",
        )
        .await;
    assert_eq!(ready, Some(1.0), "the live value of controller-ready");
    let evaluations = s
        .scrape(&s.agent_url(), "upsoak_agent_evaluations_total")
        .await
        .unwrap_or(0.0);
    assert!(
        evaluations >= 3.0,
        "a group evaluation per slot: {evaluations}"
    );
}
