//! The disruption window against a real Prometheus: a timeline of six transitions is written
//! into its storage with `promtool tsdb create-blocks-from openmetrics` (exact timestamps, no
//! waiting on scrapes), then each transition's window is judged as the agent's loop judges it.
//! Covered: apply phases found (and their fallback for a sidecar that exports none), a lost
//! canary failing its transition only, the one-series rule, no data inconclusive (never pass),
//! the baseline of earlier transitions once `min_transitions` exist, and the shipped
//! `rules/slos.yaml` disruption SLOs each reducing a window to one plausible number.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::path::Path;
use std::time::Duration;

use common::{Prometheus, TempDir, now};
use upsoak_agent::disruption;
use upsoak_agent::eval::{JudgeSettings, Judging};
use upsoak_agent::history::{History, Transition};
use upsoak_agent::prom::PromQuerier;
use upsoak_agent::spec::{Specs, Verdict};
use upsoak_agent::webhook::Inbox;
use upsoak_common::names::{producer, wanderer};

const SETTLE: i64 = 60;
const STEP: i64 = 5;
const END: i64 = 1000;

/// (generation, (apply start, apply end), live moment).
type Step = (u64, Option<(i64, i64)>, i64);

/// A series of the timeline: (name, labels, value at t seconds after the start).
type Series = (&'static str, &'static str, Box<dyn Fn(i64) -> f64>);

/// Transitions as (generation, apply start, apply end, live), seconds after the timeline's
/// start; generation 6 comes from a sidecar that exports no apply phases.
const TRANSITIONS: [Step; 5] = [
    (2, Some((60, 90)), 100),
    (3, Some((260, 290)), 300),
    (4, Some((460, 490)), 500),
    (5, Some((660, 690)), 700),
    (6, None, 900),
];

const SPECS: &str = r#"
groups:
  - name: d
    interval: 15s
    slos:
      - name: lost
        window: disruption
        expr: sum(increase(upsoak_producer_canaries_lost_total[${window}]))
        objective: "<= 0"
      - name: gap
        window: disruption
        expr: max(max_over_time(upsoak_producer_canary_longest_silence_seconds[${window}]))
        objective: "<= 10"
        baseline: "<= +50%"
        min_transitions: 3
      - name: two-series
        window: disruption
        expr: max_over_time(upsoak_test_two[${window}])
        objective: "<= 10"
      - name: absent
        window: disruption
        expr: max_over_time(upsoak_test_absent[${window}])
        objective: "<= 10"
"#;

/// Every series of the timeline: (name, labels, value at t seconds after the start).
fn series(t0: i64) -> Vec<Series> {
    let current = move |t: i64| TRANSITIONS.iter().rev().find(|x| x.2 <= t).map(|x| x.0);
    let applying = |t: i64| {
        TRANSITIONS
            .iter()
            .rev()
            .find(|x| x.1.is_some_and(|(s, _)| s <= t))
            .copied()
    };
    let up = |t: i64, from: i64, to: i64| (from..to).contains(&t);
    vec![
        (
            wanderer::GENERATION,
            "",
            Box::new(move |t| current(t).unwrap_or(1) as f64),
        ),
        (
            wanderer::APPLY_GENERATION,
            "",
            Box::new(move |t| applying(t).map_or(1, |x| x.0) as f64),
        ),
        (
            wanderer::APPLY_STARTED_TIMESTAMP_SECONDS,
            "",
            Box::new(move |t| applying(t).map_or(0, |x| t0 + x.1.unwrap().0) as f64),
        ),
        // In progress (finished before started) until the apply's end.
        (
            wanderer::APPLY_FINISHED_TIMESTAMP_SECONDS,
            "",
            Box::new(move |t| {
                applying(t).map_or(0, |x| {
                    let (s, f) = x.1.unwrap();
                    if t >= f { t0 + f } else { t0 + s - 1 }
                }) as f64
            }),
        ),
        // One canary lost at 120 s, inside generation 2's window.
        (
            producer::CANARIES_LOST_TOTAL,
            "{reason=\"deleted\"}",
            Box::new(|t| f64::from(t >= 120)),
        ),
        (
            producer::CANARIES_LOST_TOTAL,
            "{reason=\"timeout\"}",
            Box::new(|_| 0.0),
        ),
        // Gaps of 2 s, 4 s inside generation 5's window, 30 s inside generation 6's.
        (
            producer::CANARY_LONGEST_SILENCE_SECONDS,
            "",
            Box::new(move |t| {
                if up(t, 700, 720) {
                    4.0
                } else if up(t, 910, 920) {
                    30.0
                } else {
                    2.0
                }
            }),
        ),
        ("upsoak_test_two", "{a=\"x\"}", Box::new(|_| 1.0)),
        ("upsoak_test_two", "{a=\"y\"}", Box::new(|_| 1.0)),
        // Generation 3's upgrade: allocations refused for 10 s, the controller unready for 10 s,
        // the Fleet under fleet-converged's 0.8 from 270 s (inside the apply, 260-290 s) to
        // 320 s (30 s after the apply ended), and again from 340 s to 350 s (a scale-up after
        // it was back, which recovery leaves out). Otherwise one replica is always starting.
        (
            producer::ALLOCATIONS_TOTAL,
            "{result=\"Allocated\"}",
            Box::new(|t| (t * 5) as f64),
        ),
        (
            producer::ALLOCATIONS_TOTAL,
            "{result=\"UnAllocated\"}",
            Box::new(|t| (t.clamp(270, 280) - 270) as f64),
        ),
        // Generation 4's upgrade finds the Fleet full for 20 s: capacity, not an outage.
        (
            producer::ALLOCATIONS_TOTAL,
            "{result=\"FleetFull\"}",
            Box::new(|t| (t.clamp(470, 490) - 470) as f64),
        ),
        (
            "upsoak_agent_probe_success",
            "{probe=\"agones-controller\"}",
            Box::new(move |t| f64::from(!up(t, 300, 310))),
        ),
        (
            "agones_fleets_replicas_count",
            "{name=\"f\",namespace=\"default\",type=\"desired\"}",
            Box::new(|_| 10.0),
        ),
        (
            "agones_fleets_replicas_count",
            "{name=\"f\",namespace=\"default\",type=\"ready\"}",
            Box::new(move |t| {
                if up(t, 270, 320) || up(t, 340, 350) {
                    6.0
                } else {
                    8.0
                }
            }),
        ),
        (
            "agones_fleets_replicas_count",
            "{name=\"f\",namespace=\"default\",type=\"allocated\"}",
            Box::new(|_| 1.0),
        ),
    ]
}

/// Writes the timeline from `t0` into `dir`'s Prometheus storage and starts Prometheus on it.
async fn prometheus_with_timeline(dir: &Path, t0: i64) -> Prometheus {
    let mut text = String::new();
    let mut typed = BTreeSet::new();
    for (name, labels, f) in series(t0) {
        if typed.insert(name) {
            writeln!(text, "# TYPE {name} gauge").unwrap();
        }
        // The jobs and the renamed namespace label of the default `vars` (rules/slos.yaml).
        let job = match name {
            n if n.starts_with("agones_") => "agones-controller-metrics-service",
            n if n.starts_with("upsoak_agent_") => "upsoak-agent",
            _ => "upsoak-chaos",
        };
        let inner = labels.trim_start_matches('{').trim_end_matches('}');
        let inner = inner.replace("namespace=", "exported_namespace=");
        let sep = if inner.is_empty() { "" } else { "," };
        let labels = format!("{{job=\"{job}\"{sep}{inner}}}");
        for t in (0..=END).step_by(STEP as usize) {
            writeln!(text, "{name}{labels} {} {}", f(t), t0 + t).unwrap();
        }
    }
    text.push_str("# EOF\n");
    let file = dir.join("timeline.om");
    std::fs::write(&file, text).unwrap();
    let out = std::process::Command::new("promtool")
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&file)
        .arg(dir.join("prometheus-data"))
        .output()
        .unwrap();
    assert!(out.status.success(), "promtool: {out:?}");
    Prometheus::start(dir, &upsoak_testkit::scrape_config(&[])).await
}

fn history(t0: i64) -> History {
    let mut h = History::default();
    for (generation, _, live) in TRANSITIONS {
        h.transitions.push(Transition::new(
            generation,
            t0 + live,
            BTreeMap::new(),
            BTreeMap::new(),
        ));
    }
    h
}

async fn judge(specs: &Specs, url: &str, t0: i64) -> History {
    let q = PromQuerier::new(url, None).unwrap();
    let settings = JudgeSettings {
        settle: Duration::from_secs(SETTLE as u64),
        judge: Duration::from_secs(60),
        step: None,
        alpha: 0.05,
    };
    let inbox = Inbox::default();
    let j = Judging {
        specs,
        baseline: None,
        settings: &settings,
        inbox: &inbox,
    };
    let mut h = history(t0);
    // Before generation 2's settle end (plus the ingest lag) nothing is judged.
    let early = disruption::judge_due(&q, &j, &mut h, t0 + 100 + SETTLE).await;
    assert!(early.judged.is_empty() && h.transitions[0].disruption.is_none());
    let done = disruption::judge_due(&q, &j, &mut h, t0 + END).await;
    assert_eq!(done.judged, vec![0, 1, 2, 3, 4]);
    assert!(done.failed_queries.is_empty(), "{:?}", done.failed_queries);
    h
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_transition_is_judged_once_over_its_disruption_window() {
    let dir = TempDir::new("disruption");
    let t0 = (now() - 2 * 3600) / STEP * STEP;
    let prom = prometheus_with_timeline(dir.path(), t0).await;
    let h = judge(&Specs::parse(SPECS, "test").unwrap(), prom.url(), t0).await;
    let d = |i: usize| h.transitions[i].disruption.as_ref().unwrap();
    let v = |i: usize, slo: &str| d(i).slos[&format!("d/{slo}")].evidence.clone();

    // Phases found: the window opens at the apply's start and ends at the settle end.
    assert_eq!(d(0).apply_started, Some((t0 + 60) as f64));
    assert_eq!(d(0).apply_finished, Some((t0 + 90) as f64));
    assert_eq!((d(0).window_start, d(0).window_end), (t0 + 60, t0 + 160));
    assert!(d(0).phases.contains("apply started"), "{}", d(0).phases);
    assert_eq!(d(3).window_start, t0 + 660);
    // The fallback: no apply phases for generation 6, the window opens when it went live.
    assert_eq!((d(4).apply_started, d(4).window_start), (None, t0 + 900));
    assert!(
        d(4).phases
            .contains("no upsoak_wanderer_apply_started_timestamp_seconds for generation 6"),
        "{}",
        d(4).phases
    );

    // The lost canary fails generation 2 and no other.
    let lost: Vec<Verdict> = (0..5).map(|i| v(i, "lost").verdict).collect();
    assert_eq!(lost[0], Verdict::Fail, "{:?}", v(0, "lost"));
    assert!(v(0, "lost").value.unwrap() >= 1.0);
    assert!(lost[1..].iter().all(|x| *x == Verdict::Pass), "{lost:?}");

    // More than one series, or none: inconclusive with the reason, never pass.
    for i in 0..5 {
        let two = v(i, "two-series");
        assert_eq!(two.verdict, Verdict::Inconclusive);
        assert!(two.reason.contains("gave 2 series"), "{}", two.reason);
        let absent = v(i, "absent");
        assert_eq!(absent.verdict, Verdict::Inconclusive);
        assert!(absent.reason.contains("no sample"), "{}", absent.reason);
    }

    // The distribution baseline: objective only until 3 earlier transitions passed, then the
    // median of theirs (2 s): 4 s breaks `<= +50%` though it meets the objective.
    for i in 0..3 {
        let g = v(i, "gap");
        assert_eq!((g.verdict, g.value), (Verdict::Pass, Some(2.0)), "{g:?}");
        assert!(g.reason.contains("objective only"), "{}", g.reason);
    }
    let g = v(3, "gap");
    assert_eq!(g.verdict, Verdict::Fail, "{g:?}");
    assert_eq!(
        (g.baseline, g.threshold, g.baseline_samples),
        (Some(2.0), Some(3.0), 3)
    );
    assert!(
        g.reason.contains("median 2.000000 of 3 earlier"),
        "{}",
        g.reason
    );
    // A failed transition does not move the distribution; 30 s breaks the objective.
    let g = v(4, "gap");
    assert_eq!((g.verdict, g.baseline_samples), (Verdict::Fail, 3), "{g:?}");
    assert!(g.reason.contains("breaks the objective"), "{}", g.reason);
    assert_eq!(h.overall(), Verdict::Fail);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_disruption_slos_reduce_each_window_to_one_number() {
    let dir = TempDir::new("disruption-shipped");
    let t0 = (now() - 2 * 3600) / STEP * STEP;
    let prom = prometheus_with_timeline(dir.path(), t0).await;
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules/slos.yaml");
    let mut specs = Specs::load(&path).unwrap();
    specs.slos.retain(|s| !s.spec.window.is_steady());
    assert!(specs.slos.len() >= 4, "{:?}", specs.slos);
    let h = judge(&specs, prom.url(), t0).await;
    let value = |i: usize, slo: &str| {
        let e = &h.transitions[i].disruption.as_ref().unwrap().slos[&format!("disruption/{slo}")]
            .evidence;
        assert_ne!(e.verdict, Verdict::Inconclusive, "{slo}: {e:?}");
        e.value.unwrap()
    };
    // Generation 2: a canary lost, nothing else happened.
    assert!(value(0, "canaries-lost") >= 1.0);
    assert_eq!(value(0, "allocation-outage-seconds"), 0.0);
    assert_eq!(value(0, "controller-unready-seconds"), 0.0);
    assert_eq!(value(0, "fleet-recovery-seconds"), 0.0);
    assert_eq!(value(0, "canary-longest-gap"), 2.0);
    // Generation 3: 10 s of refused allocations (irate over 30 s sees them for up to 30 s
    // more at a 5 s scrape), 10 s of an unready controller, the Fleet first back 30 s after
    // the apply ended (at 320 s; the dip at 340 s came after it was back).
    let outage = value(1, "allocation-outage-seconds");
    assert!((10.0..=45.0).contains(&outage), "{outage}");
    let unready = value(1, "controller-unready-seconds");
    assert!((5.0..=15.0).contains(&unready), "{unready}");
    let recovery = value(1, "fleet-recovery-seconds");
    assert!((20.0..=35.0).contains(&recovery), "{recovery}");
    assert_eq!(value(1, "canaries-lost"), 0.0);
    // Generation 4: allocations that found the Fleet full are no outage.
    assert_eq!(value(2, "allocation-outage-seconds"), 0.0);
}
