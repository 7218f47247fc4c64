//! The default `rules/slos.yaml` judging a stack scraped under kube-prometheus-stack's
//! conventions (Agones' ServiceMonitor job names, `exported_namespace`; see
//! `upsoak_tests::conventions`): it records a baseline, a 2 % allocation failure brought by
//! 1.59.0 fails its transition through the error budget, the clean transition back does not
//! fail, and once Prometheus stops scraping Agones (a reload without Agones' jobs, as when
//! kube-prometheus-stack stops selecting its ServiceMonitor) the Agones SLOs are inconclusive,
//! never pass, and name the `up` selector that found nothing. Prometheus writes no staleness
//! markers for a job dropped from its configuration, so its last samples answer a bare
//! selector for 5 minutes; the default SLOs ask for an `up` sample within
//! `vars.scraped_within`. About four minutes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use upsoak_testkit::eventually;
use upsoak_tests::conventions::{SCRAPED_AGONES_SLOS, SCRAPED_WITHIN_S, prometheus_config};
use upsoak_tests::{Soak, fault_on_1_59, slos_with, soak, summary, verdict, version};

/// The evidence of `slo` (`group/name`) in a judged transition.
fn evidence<'a>(t: &'a serde_json::Value, slo: &str) -> &'a serde_json::Value {
    &t["judged"]["slos"][slo]["evidence"]
}

#[tokio::test(flavor = "multi_thread")]
async fn the_default_slos_judge_a_stack_scraped_like_kube_prometheus_stack() {
    let cfg = Soak {
        faults: fault_on_1_59("allocation_failures", "rate: 0.02"),
        // Windows that do not overlap the next transition: settle 6 s + judge 30 s < 40 s.
        period_s: 40,
        settle_s: 6,
        judge_s: 30,
        interval_s: 2,
        // 12/s: a 30 s window counts ~360 allocations, ~7 of them failed at 2 %; the 0.5 %
        // budget allows 1.8, so a window with fewer than 2 failures (p ≈ 0.006) would pass.
        allocation_rate: 12.0,
        conventions: true,
        disruption: false,
        steady_every_s: None,
        fleet_replicas: FLEET,
        ..Soak::default()
    };
    let s = soak("conventions", cfg.clone(), None).await;
    let baseline: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(s.dir.join("baseline.json")).unwrap())
            .unwrap();
    // The Agones SLOs have their baseline: the default job names found the simulator.
    for k in [
        "fleets/fleet-converged",
        "fleets/gameservers-failing",
        "allocation/allocation-success",
    ] {
        assert!(
            baseline["slos"][k]["count"].as_u64().unwrap_or(0) >= 5,
            "{k} not in the baseline: {baseline}"
        );
    }

    // The agent judges the transitions after it started: the first that brings 1.59.0 (and
    // the fault), then the one back to 1.58.0. When the agent starts just after a transition
    // to 1.59.0, the first it judges goes back to 1.58.0, and the pair needs two more periods
    // and a judged window: six periods cover that on a loaded machine.
    let pair = eventually(
        std::time::Duration::from_secs(6 * (cfg.period_s + 10)),
        std::time::Duration::from_millis(500),
        || async {
            let j = s.judged();
            let i = j.iter().position(|t| version(t, "to") == "1.59.0")?;
            let back = j[i + 1..].first()?.clone();
            Some((j[i].clone(), back, j.len()))
        },
    )
    .await
    .unwrap_or_else(|e| panic!("a faulty and a clean transition judged: {e}\n{}", s.logs()));
    let (faulty, clean, seen) = (&pair.0, &pair.1, pair.2);
    assert_eq!(version(clean, "to"), "1.58.0", "{}", summary(clean));
    // The fault comes in: the error budget burns, against a baseline without failures.
    assert_eq!(verdict(faulty), "fail", "{}", summary(faulty));
    assert!(
        slos_with(faulty, "fail").contains(&"allocation/allocation-success".to_owned()),
        "{}",
        summary(faulty)
    );
    let reason = evidence(faulty, "allocation/allocation-success")["reason"]
        .as_str()
        .unwrap_or("");
    assert!(reason.contains("burns the error budget"), "{reason}");
    // Back on 1.58.0: nothing fails; each SLO passes or warns.
    assert_ne!(verdict(clean), "fail", "{}", summary(clean));
    for (k, v) in clean["judged"]["slos"].as_object().unwrap() {
        let got = v["evidence"]["verdict"].as_str().unwrap_or("");
        if k.starts_with("disruption/") {
            // Judged against earlier transitions, which a short soak does not have.
            assert_ne!(got, "fail", "{k}: {}", summary(clean));
        } else {
            assert!(
                got == "pass" || got == "warn",
                "{k} is {got}: {}",
                summary(clean)
            );
        }
    }

    // kube-prometheus-stack stops selecting Agones' ServiceMonitor: no Agones job any more.
    let sim = s.sim_url.trim_start_matches("http://").to_owned();
    let config = prometheus_config(&sim, s.chaos_port, s.agent_port, false);
    s.prom.as_ref().unwrap().reload(&config).await;
    let reloaded = upsoak_testkit::unix_now() as i64;
    // The Agones jobs' last `up` samples still answer a bare selector (no staleness markers for
    // a job that left the configuration): the series is there, only old.
    let stale = s
        .query("count(up{job=\"agones-controller-metrics-service\"})")
        .await;
    println!("up of the dropped job right after the reload: {stale:?}");
    // The first transition whose judged window opened once the last scrape was older than
    // `scraped_within` (one more second for the scrape in flight).
    let blind = eventually(
        std::time::Duration::from_secs(3 * (cfg.period_s + 10)),
        std::time::Duration::from_millis(500),
        || async {
            s.judged().into_iter().skip(seen).find(|t| {
                t["judged"]["window_start"].as_i64().unwrap_or(0) > reloaded + SCRAPED_WITHIN_S + 1
            })
        },
    )
    .await
    .unwrap_or_else(|e| {
        panic!(
            "a transition judged without Agones' scrape: {e}\n{}",
            s.logs()
        )
    });
    let blind = &blind;
    for k in SCRAPED_AGONES_SLOS {
        let e = evidence(blind, k);
        assert_eq!(e["verdict"], "inconclusive", "{k}: {}", summary(blind));
    }
    let why = evidence(blind, "control-plane/controller-scraped")["reason"]
        .as_str()
        .unwrap_or("");
    assert!(
        why.contains(&format!(
            "nothing matched `up{{job=\"agones-controller-metrics-service\"}}[{SCRAPED_WITHIN_S}s]`"
        )),
        "{why}"
    );
    // upsoak's own jobs are still scraped: their SLOs still judge.
    assert_eq!(
        evidence(blind, "control-plane/upsoak-scraped")["verdict"],
        "pass",
        "{}",
        summary(blind)
    );
}

fn count(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The soak of [`the_default_slos_judge_a_stack_scraped_like_kube_prometheus_stack`], with
/// `faults`.
fn bench_soak(faults: String, period_s: u64, judge_s: u64) -> Soak {
    Soak {
        faults,
        period_s,
        settle_s: 6,
        judge_s,
        interval_s: 2,
        allocation_rate: 12.0,
        conventions: true,
        disruption: false,
        steady_every_s: None,
        fleet_replicas: FLEET,
        ..Soak::default()
    }
}

/// At 12 allocations/s with sessions of 1-3 s and 4 canaries held Allocated, the default 40
/// servers run out at peaks, and an allocation with no Ready server is a failure.
const FLEET: u32 = 60;

/// For BENCHMARKS.md (`make bench-conventions`): with the default SLOs, the share of the
/// transitions that bring an allocation failure rate of 1, 2 and 5 % that fail
/// (`CONVENTIONS_FAULTY` transitions per rate, default 6: half of them bring the fault).
#[tokio::test(flavor = "multi_thread")]
#[ignore = "a benchmark soak; `make bench-conventions`"]
async fn bench_detection_of_small_allocation_failure_rates() {
    let n = count("CONVENTIONS_FAULTY", 6);
    for rate in [0.01, 0.02, 0.05] {
        let cfg = bench_soak(
            fault_on_1_59("allocation_failures", &format!("rate: {rate}")),
            40,
            30,
        );
        let s = soak(&format!("bench-rate-{rate}"), cfg.clone(), None).await;
        let judged = s.wait_judged(n, (n as u64 + 2) * (cfg.period_s + 10)).await;
        let faulty: Vec<_> = judged[..n]
            .iter()
            .filter(|t| version(t, "to") == "1.59.0")
            .collect();
        let caught = faulty
            .iter()
            .filter(|t| {
                verdict(t) == "fail"
                    && slos_with(t, "fail").contains(&"allocation/allocation-success".to_owned())
            })
            .count();
        let false_fails = judged[..n]
            .iter()
            .filter(|t| version(t, "to") != "1.59.0" && verdict(t) == "fail")
            .count();
        println!(
            "allocation failure rate {:.0} %: {caught} of {} transitions that bring it fail on allocation-success; {false_fails} of {} clean transitions fail",
            rate * 100.0,
            faulty.len(),
            n - faulty.len()
        );
        for t in &judged[..n] {
            println!(
                "  {}→{}: {} ({})",
                version(t, "from"),
                version(t, "to"),
                verdict(t),
                evidence(t, "allocation/allocation-success")["reason"]
                    .as_str()
                    .unwrap_or("")
            );
        }
    }
}

/// For BENCHMARKS.md: the warn rate of a clean soak with the default SLOs (`CONVENTIONS_CLEAN`
/// transitions, default 20): the share of the SLO verdicts that are warn, and which SLOs warned.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "a benchmark soak; `make bench-conventions`"]
async fn bench_warn_rate_of_a_clean_soak() {
    let n = count("CONVENTIONS_CLEAN", 20);
    let cfg = bench_soak(String::new(), 30, 20);
    let s = soak("bench-clean-conventions", cfg.clone(), None).await;
    let judged = s.wait_judged(n, (n as u64 + 2) * (cfg.period_s + 10)).await;
    let mut by: std::collections::BTreeMap<String, usize> = Default::default();
    let mut total = 0usize;
    for t in &judged[..n] {
        for (_, v) in t["judged"]["slos"].as_object().unwrap() {
            total += 1;
            *by.entry(v["evidence"]["verdict"].as_str().unwrap_or("").to_owned())
                .or_default() += 1;
        }
    }
    let warns = slos_warned(&judged[..n]);
    println!(
        "clean soak, default SLOs: {n} transitions, {total} SLO verdicts: {by:?}; warn rate {:.1} % of verdicts; transitions: {:?}",
        100.0 * *by.get("warn").unwrap_or(&0) as f64 / total.max(1) as f64,
        judged[..n].iter().map(verdict).collect::<Vec<_>>()
    );
    println!("warned: {warns:?}");
    assert!(
        judged[..n].iter().all(|t| verdict(t) != "fail"),
        "a clean transition failed"
    );
}

/// How often each SLO warned.
fn slos_warned(judged: &[serde_json::Value]) -> std::collections::BTreeMap<String, usize> {
    let mut out = std::collections::BTreeMap::new();
    for t in judged {
        for k in slos_with(t, "warn") {
            *out.entry(k).or_default() += 1;
        }
    }
    out
}
