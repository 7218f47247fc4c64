//! End-to-end soaks of the upgrade itself: the sidecar's canaries held across transitions, the
//! simulator's upgrade-time faults, and the agent's disruption window (apply start → settle
//! end), with every part a real process on loopback (see `upsoak_tests::Stack`). The walk
//! alternates 1.58.0 and 1.59.0 and each fault is tied to 1.59.0, so it is active only inside
//! the install windows of the odd generations: each must fail exactly the transition that
//! brings it, on the disruption SLO that watches it, within the window plus two evaluation
//! intervals, and the transition back must pass. A clean soak of 10 transitions passes both
//! windows of every one without an alert.
//!
//! Run one at a time: `cargo nextest run -p upsoak-tests --test upgrade --test-threads 1`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use serde_json::Value;
use upsoak_testkit::eventually;
use upsoak_tests::{
    Soak, Stack, disrupted_with, disruption_summary, disruption_verdict, fault_on_1_59, slos_with,
    soak, summary, verdict, version,
};

/// How often these tests poll the stack's state.
const POLL: Duration = Duration::from_millis(200);

/// Seconds the agent waits after a settle end before judging it (`disruption::INGEST_LAG_S`).
const INGEST_LAG_S: i64 = 2;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn upgrade_soak(faults: String) -> Soak {
    Soak {
        faults,
        disruption: true,
        ..Soak::default()
    }
}

/// Every line of every judged transition, both windows, for failure messages.
fn all(judged: &[Value]) -> String {
    judged
        .iter()
        .map(|t| format!("{}\n{}", disruption_summary(t), summary(t)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The judged transitions, once `n` are judged in both windows (the agent stops at `n`), and
/// every alert Alertmanager held meanwhile (a disruption alert resolves when the next
/// transition passes, so it is watched while it fires).
async fn judged_both(s: &mut Stack, n: usize, within: u64) -> (Vec<Value>, Vec<Value>) {
    let seen = std::sync::Mutex::new(Vec::new());
    let done = eventually(secs(within), POLL, || async {
        let alerts = s.alerts().await;
        seen.lock().unwrap().extend(alerts);
        let judged = s.judged();
        let both = judged.len() >= n && judged.iter().all(|t| !t["disruption"].is_null());
        both.then_some(())
    })
    .await;
    let seen = seen.into_inner().unwrap();
    let status = match done {
        Ok(()) => s.agent.as_mut().unwrap().wait_exit(secs(20)).await,
        Err(_) => None,
    };
    let judged = s.judged();
    assert!(
        status.is_some() && judged.len() == n,
        "{} judged of {n}:\n{}\n{}",
        judged.len(),
        all(&judged),
        s.logs()
    );
    assert!(
        judged.iter().all(|t| !t["disruption"].is_null()),
        "a judged transition without its disruption window:\n{}",
        all(&judged)
    );
    (judged, seen)
}

/// The disruption window's verdict came within the window plus two evaluation intervals.
fn assert_prompt(t: &Value, interval_s: u64) {
    let d = &t["disruption"];
    let late = d["judged_at"].as_i64().unwrap() - d["window_end"].as_i64().unwrap();
    assert!(
        late <= INGEST_LAG_S + 2 * interval_s as i64,
        "verdict {late}s after the window closed\n{}",
        disruption_summary(t)
    );
}

/// The fault `kind` tied to 1.59.0 fails the transition to it (generation 1) on `slo` in its
/// disruption window, and the transition back (generation 2) passes it.
async fn upgrade_fault_is_caught(kind: &str, params: &str, slo: &str) {
    let cfg = upgrade_soak(fault_on_1_59(kind, params));
    let interval = cfg.interval_s;
    let mut s = soak(kind, cfg, Some(2)).await;
    let (judged, alerts) = judged_both(&mut s, 2, 150).await;
    let (brings, back) = (&judged[0], &judged[1]);
    assert_eq!(
        (brings["generation"].as_u64(), version(brings, "to")),
        (Some(1), "1.59.0".to_owned())
    );
    assert_eq!(
        disruption_verdict(brings),
        "fail",
        "{kind}:\n{}",
        all(&judged)
    );
    let failed = disrupted_with(brings, "fail");
    assert!(
        failed.iter().any(|f| f == &format!("disruption/{slo}")),
        "{kind}: expected disruption/{slo} to fail, failed: {failed:?}\n{}",
        all(&judged)
    );
    // The window opened at the apply's start, as the sidecar exported it.
    let d = &brings["disruption"];
    assert!(
        d["apply_started"].is_number() && d["window_start"].as_i64() < brings["at"].as_i64(),
        "{}",
        disruption_summary(brings)
    );
    assert_prompt(brings, interval);
    assert_eq!(
        disruption_verdict(back),
        "pass",
        "{kind}: the transition back to 1.58.0 is clean:\n{}",
        all(&judged)
    );
    println!(
        "{kind}: caught by {failed:?}:\n{}",
        disruption_summary(brings)
    );
    // The alert said it failed during the upgrade (it resolved when the transition back passed).
    assert!(
        alerts
            .iter()
            .any(|a| a["labels"]["slo"] == slo && a["labels"]["window"] == "disruption"),
        "{kind}: no disruption alert for {slo}: {alerts:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn upgrade_kills_allocated_fails_its_transition_on_lost_canaries() {
    upgrade_fault_is_caught("upgrade_kills_allocated", "fraction: 1.0", "canaries-lost").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn upgrade_drops_game_traffic_fails_its_transition_on_the_longest_gap() {
    upgrade_fault_is_caught(
        "upgrade_drops_game_traffic",
        "duration: 6s",
        "canary-longest-gap",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn upgrade_stalls_fails_its_transition_on_the_allocation_outage() {
    upgrade_fault_is_caught("upgrade_stalls", "factor: 10", "allocation-outage-seconds").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_clean_soak_of_ten_transitions_passes_both_windows_without_an_alert() {
    let cfg = upgrade_soak(String::new());
    let (period, interval) = (cfg.period_s, cfg.interval_s);
    let n = 10;
    let mut s = soak("upgrade-clean", cfg, Some(n)).await;
    let (judged, alerts) = judged_both(&mut s, n, (n as u64 + 2) * (period + 5)).await;
    for t in &judged {
        // A warning (a significant shift still within its threshold) is a pass, as in e2e.rs.
        assert!(
            disruption_verdict(t) == "pass" && matches!(verdict(t).as_str(), "pass" | "warn"),
            "a clean transition was not passed in both windows:\n{}\n{}",
            disruption_summary(t),
            summary(t)
        );
        assert!(slos_with(t, "inconclusive").is_empty(), "{}", summary(t));
        assert_prompt(t, interval);
        // The sidecar exported the apply's phases for every transition.
        assert!(
            t["disruption"]["apply_started"].is_number(),
            "{}",
            disruption_summary(t)
        );
    }
    // Past min_transitions, the baselines of earlier transitions were judged.
    let last = &judged[n - 1]["disruption"]["slos"]["disruption/allocation-outage-seconds"];
    assert!(
        last["evidence"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("earlier transitions (")),
        "{last}"
    );
    println!("{}", all(&judged));
    assert!(
        alerts.is_empty() && s.alerts().await.is_empty(),
        "Alertmanager held no alert during a clean soak: {alerts:?}"
    );
    let (code, text) = s.report("text");
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("disruption: PASS"), "{text}");
}
