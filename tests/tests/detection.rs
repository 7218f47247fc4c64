//! Detection quality, for BENCHMARKS.md (ignored in `make test`: about 35 minutes). Run with
//! `make bench-detection`, which is
//! `cargo nextest run -p upsoak-tests --test detection --run-ignored only --test-threads 1 --no-capture`.
//!
//! - False fails: a clean soak of `DETECTION_CLEAN` transitions (default 30), each judged in
//!   both windows (the steady one and the disruption window of the upgrade itself, with the
//!   SLOs of `upsoak_tests::disruption_slos`); every fail or inconclusive verdict is listed
//!   with its evidence.
//! - Detection latency per fault kind: a soak of `DETECTION_FAULTY` transitions (default 4) per
//!   kind, the fault tied to 1.59.0 so it comes in at every odd generation and leaves at every
//!   even one; each odd transition must fail (its latency printed), each even one is reported.
//!   The steady-state faults are judged in the steady window (latency from its opening); the
//!   upgrade-time faults (`upgrade_kills_allocated`, `upgrade_stalls`,
//!   `upgrade_drops_game_traffic`, active only inside the simulator's install window) in the
//!   disruption window (latency from the apply's start, and after the window's end).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use serde_json::Value;
use upsoak_testkit::eventually;
use upsoak_tests::{
    Soak, Stack, detection_latency, disrupted_with, disruption_summary, disruption_verdict,
    fault_on_1_59, slos_with, soak, summary, verdict,
};

fn count(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Waits until `n` transitions are judged in both windows.
async fn judged_both(s: &Stack, n: usize, secs: u64) -> Vec<Value> {
    eventually(
        Duration::from_secs(secs),
        Duration::from_millis(500),
        || async {
            let j = s.judged();
            (j.len() >= n && j[..n].iter().all(|t| !t["disruption"].is_null())).then_some(j)
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{n} transitions judged in both windows: {e}\n{}", s.logs()))
}

/// Seconds from the apply's start (the disruption window's opening) and from the window's
/// end to the disruption verdict.
fn disruption_latency(t: &Value) -> (i64, i64) {
    let d = &t["disruption"];
    let at = d["judged_at"].as_i64().unwrap_or(0);
    (
        at - d["window_start"].as_i64().unwrap_or(0),
        at - d["window_end"].as_i64().unwrap_or(0),
    )
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "a 13-minute soak; see the module doc"]
async fn false_fails_over_clean_transitions() {
    let n = count("DETECTION_CLEAN", 30);
    let cfg = Soak {
        disruption: true,
        ..Soak::default()
    };
    let s = soak("bench-clean", cfg.clone(), None).await;
    let judged = judged_both(&s, n, (n as u64 + 2) * (cfg.period_s + 5)).await;
    let judged = &judged[..n];
    let bad: Vec<String> = judged
        .iter()
        .filter(|t| {
            !matches!(verdict(t).as_str(), "pass" | "warn")
                || !matches!(disruption_verdict(t).as_str(), "pass" | "warn")
        })
        .map(|t| format!("{}\n{}", summary(t), disruption_summary(t)))
        .collect();
    let count_of = |f: &dyn Fn(&Value) -> bool| judged.iter().filter(|t| f(t)).count();
    let warns = count_of(&|t| verdict(t) == "warn");
    let not_passed = count_of(&|t| !matches!(verdict(t).as_str(), "pass" | "warn"));
    let false_fails = count_of(&|t| verdict(t) == "fail");
    let disruption_passes = count_of(&|t| disruption_verdict(t) == "pass");
    let disruption_fails = count_of(&|t| disruption_verdict(t) == "fail");
    let mut lat: Vec<f64> = judged.iter().map(detection_latency).collect();
    lat.sort_by(f64::total_cmp);
    let mut dlat: Vec<i64> = judged.iter().map(|t| disruption_latency(t).1).collect();
    dlat.sort();
    println!(
        "clean soak: {n} transitions judged. Steady window: {} pass, {warns} warn, {not_passed} not passed (false fails {false_fails}), verdict {:.0}-{:.0} s after the window opened. Disruption window: {disruption_passes} pass, {disruption_fails} fail, verdict {}-{} s after the window closed",
        n - warns - not_passed,
        lat[0],
        lat[n - 1],
        dlat[0],
        dlat[n - 1]
    );
    for b in &bad {
        println!("{b}");
    }
    let alerts = s.alerts().await;
    println!("alerts held by Alertmanager: {}", alerts.len());
    assert!(
        false_fails == 0 && disruption_fails == 0,
        "false fails:\n{}",
        bad.join("\n")
    );
}

async fn detection(kind: &str, fault: &str) {
    let n = count("DETECTION_FAULTY", 4);
    let cfg = Soak {
        faults: fault_on_1_59(kind, fault),
        ..Soak::default()
    };
    let s = soak(&format!("bench-{kind}"), cfg.clone(), None).await;
    let judged = s.wait_judged(n, (n as u64 + 2) * (cfg.period_s + 5)).await;
    for t in &judged[..n] {
        let g = t["generation"].as_u64().unwrap();
        println!(
            "{kind}: generation {g} ({}): {} by {:?}, {:.0} s after the judged window opened (bound {} s)",
            if g % 2 == 1 { "fault in" } else { "fault out" },
            verdict(t),
            slos_with(t, "fail"),
            detection_latency(t),
            cfg.judge_s + 2 * cfg.interval_s
        );
        if g % 2 == 1 {
            assert_eq!(verdict(t), "fail", "{}", summary(t));
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "a soak; see the module doc"]
async fn detection_allocation_latency() {
    detection("allocation_latency", "multiplier: 6, added: 40ms").await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "a soak; see the module doc"]
async fn detection_allocation_failures() {
    detection("allocation_failures", "rate: 0.5").await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "a soak; see the module doc"]
async fn detection_game_server_failures() {
    detection("game_server_failures", "per_second: 0.05, state: Error").await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "a soak; see the module doc"]
async fn detection_reconcile_stall() {
    detection("reconcile_stall", "").await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "a soak; see the module doc"]
async fn detection_memory_growth() {
    detection("memory_growth", "bytes_per_second: 5000000").await;
}

/// An upgrade-time fault: each transition that brings it must fail its disruption window on
/// `slo`; the transitions back are reported.
async fn upgrade_detection(kind: &str, fault: &str, slo: &str) {
    let n = count("DETECTION_FAULTY", 4);
    let cfg = Soak {
        faults: fault_on_1_59(kind, fault),
        disruption: true,
        ..Soak::default()
    };
    let s = soak(&format!("bench-{kind}"), cfg.clone(), None).await;
    let judged = judged_both(&s, n, (n as u64 + 2) * (cfg.period_s + 15)).await;
    for t in &judged[..n] {
        let g = t["generation"].as_u64().unwrap();
        let (from_start, after_end) = disruption_latency(t);
        let d = &t["disruption"];
        println!(
            "{kind}: generation {g} ({}): disruption {} by {:?}, {from_start} s after the apply started, {after_end} s after the window closed (window {} s; bound window + 2 + 2 intervals = {} s after it closed)",
            if g % 2 == 1 { "fault in" } else { "fault out" },
            disruption_verdict(t),
            disrupted_with(t, "fail"),
            d["window_end"].as_i64().unwrap_or(0) - d["window_start"].as_i64().unwrap_or(0),
            2 + 2 * cfg.interval_s
        );
        if g % 2 == 1 {
            assert!(
                disruption_verdict(t) == "fail"
                    && disrupted_with(t, "fail").contains(&format!("disruption/{slo}")),
                "{}",
                disruption_summary(t)
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "a soak; see the module doc"]
async fn detection_upgrade_kills_allocated() {
    upgrade_detection("upgrade_kills_allocated", "fraction: 1.0", "canaries-lost").await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "a soak; see the module doc"]
async fn detection_upgrade_stalls() {
    upgrade_detection("upgrade_stalls", "factor: 10", "allocation-outage-seconds").await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "a soak; see the module doc"]
async fn detection_upgrade_drops_game_traffic() {
    upgrade_detection(
        "upgrade_drops_game_traffic",
        "duration: 6s",
        "canary-longest-gap",
    )
    .await;
}
