//! Detection quality, for BENCHMARKS.md (ignored in `make test`: about 25 minutes). Run with
//! `make bench-detection`, which is
//! `cargo nextest run -p upsoak-tests --test detection --run-ignored only --test-threads 1 --no-capture`.
//!
//! - False fails: a clean soak of `DETECTION_CLEAN` transitions (default 50); every fail or
//!   inconclusive verdict is listed with its evidence.
//! - Detection latency per fault kind: a soak of `DETECTION_FAULTY` transitions (default 4) per
//!   kind, the fault tied to 1.59.0 so it comes in at every odd generation and leaves at every
//!   even one; each odd transition must fail (its latency printed), each even one is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use upsoak_tests::{Soak, detection_latency, fault_on_1_59, slos_with, soak, summary, verdict};

fn count(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "a 17-minute soak; see the module doc"]
async fn false_fails_over_clean_transitions() {
    let n = count("DETECTION_CLEAN", 50);
    let cfg = Soak::default();
    let s = soak("bench-clean", cfg.clone(), None).await;
    let judged = s.wait_judged(n, (n as u64 + 2) * (cfg.period_s + 5)).await;
    let judged = &judged[..n];
    let bad: Vec<String> = judged
        .iter()
        .filter(|t| !matches!(verdict(t).as_str(), "pass" | "warn"))
        .map(summary)
        .collect();
    let warns = judged.iter().filter(|t| verdict(t) == "warn").count();
    let mut lat: Vec<f64> = judged.iter().map(detection_latency).collect();
    lat.sort_by(f64::total_cmp);
    println!(
        "clean soak: {n} transitions judged: {} pass, {warns} warn, {} not passed (false fails {}); verdict {:.0}-{:.0} s after the window opened",
        n - warns - bad.len(),
        bad.len(),
        judged.iter().filter(|t| verdict(t) == "fail").count(),
        lat[0],
        lat[lat.len() - 1]
    );
    for b in &bad {
        println!("{b}");
    }
    let alerts = s.alerts().await;
    println!("alerts held by Alertmanager: {}", alerts.len());
    assert!(
        judged.iter().all(|t| verdict(t) != "fail"),
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
