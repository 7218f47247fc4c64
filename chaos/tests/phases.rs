//! The phases of each transition against a real simulator: when its apply started, returned
//! and was observed live, journalled per transition and exported as the apply gauges (one
//! series each, whatever the number of transitions); an apply in progress shows finished <
//! started; an apply interrupted by a restart is journalled as such and the gauges survive it.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;
use upsoak_agones::release::Install;
use upsoak_chaos::wanderer::apply::SimApplier;
use upsoak_chaos::wanderer::events::WandererMetrics;
use upsoak_chaos::wanderer::journal::{Entry, Journal, Outcome, Recovered, parse_rfc3339, rfc3339};
use upsoak_chaos::wanderer::walk::Planner;
use upsoak_chaos::wanderer::{self, RunOptions, Schedule};
use upsoak_common::names::wanderer as names;
use upsoak_testkit::{POLL, TempDir, eventually, sample};

/// Alternates between two versions.
struct Flip;

impl Planner for Flip {
    fn identity(&self) -> (u64, String, String) {
        (5, "flip".into(), "phases".into())
    }
    fn next(&mut self, step: u64, _: &Install) -> Install {
        Install {
            version: if step % 2 == 1 { "1.59.0" } else { "1.60.0" }.into(),
            ..Install::default()
        }
    }
    fn record(&mut self, _: &Install, _: &Install) {}
    fn coverage(&self) -> Vec<(&'static str, f64)> {
        Vec::new()
    }
}

fn opts(max_steps: u64) -> RunOptions {
    RunOptions {
        schedule: Schedule {
            period: Duration::from_millis(50),
            jitter: 0.0,
        },
        max_steps: Some(max_steps),
        apply_timeout: Duration::from_secs(20),
        progress: None,
    }
}

async fn run(url: &str, path: &Path, steps: u64, metrics: &WandererMetrics) -> Recovered {
    let applier = SimApplier::new(url, Duration::from_secs(20));
    let taken = wanderer::run(
        path,
        &applier,
        &mut Flip,
        &opts(steps),
        metrics,
        &CancellationToken::new(),
        || {},
    )
    .await
    .unwrap();
    assert_eq!(taken, steps);
    Journal::open(path).unwrap().1
}

fn encode(metrics: &WandererMetrics) -> String {
    let mut reg = Registry::default();
    metrics.register(&mut reg);
    upsoak_common::exposition::encode(&reg, upsoak_common::exposition::Format::PrometheusText)
        .unwrap()
}

/// (generation, started, finished, last transition) as exported, in seconds.
fn gauges(text: &str) -> (f64, f64, f64, f64) {
    let get = |n: &str| sample(text, &format!("{n} ")).unwrap_or(-1.0);
    (
        get(names::APPLY_GENERATION),
        get(names::APPLY_STARTED_TIMESTAMP_SECONDS),
        get(names::APPLY_FINISHED_TIMESTAMP_SECONDS),
        get(names::LAST_TRANSITION_TIMESTAMP_SECONDS),
    )
}

/// Each outcome's (step, result, started, finished, observed) in unix ms.
type Row = (u64, Outcome, Option<u64>, Option<u64>, Option<u64>);

fn outcomes(r: &Recovered) -> Vec<Row> {
    r.entries
        .iter()
        .filter_map(|e| match e {
            Entry::Outcome {
                step,
                result,
                started_unix_ms,
                finished_unix_ms,
                observed_unix_ms,
                ..
            } => Some((
                *step,
                *result,
                *started_unix_ms,
                *finished_unix_ms,
                *observed_unix_ms,
            )),
            _ => None,
        })
        .collect()
}

fn intent_at(r: &Recovered, step: u64) -> u64 {
    r.entries
        .iter()
        .find_map(|e| match e {
            Entry::Intent { step: s, at, .. } if *s == step => parse_rfc3339(at),
            _ => None,
        })
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_transition_journals_and_exports_its_phases() {
    // A long install window, so the apply is seen in progress from outside.
    let (url, stop) = common::start_sim("upgrade_window: 1500ms", 1).await;
    let dir = TempDir::new("chaos-phases");
    let path = dir.join("journal.jsonl");
    let metrics = WandererMetrics::default();
    let loop_metrics = metrics.clone();
    let loop_url = url.clone();
    let loop_path = path.clone();
    let task = tokio::spawn(async move { run(&loop_url, &loop_path, 2, &loop_metrics).await });
    // While step 1 is applied: its generation and start are out, its finish is not yet.
    let text = eventually(Duration::from_secs(10), POLL, || async {
        let text = encode(&metrics);
        let (g, started, finished, _) = gauges(&text);
        (g == 1.0 && started > 0.0 && finished < started).then_some(text)
    })
    .await
    .expect("the apply of step 1 to be exported as in progress");
    // In the same scrape, the generation still shows the transition before it.
    assert_eq!(
        sample(&text, &format!("{} ", names::GENERATION)),
        Some(0.0),
        "{text}"
    );

    let r = task.await.unwrap();
    let rows = outcomes(&r);
    assert_eq!(rows.len(), 2, "{rows:?}");
    for (step, result, s, f, o) in &rows {
        assert_eq!(*result, Outcome::Applied);
        let (s, f, o) = (s.unwrap(), f.unwrap(), o.unwrap());
        assert_eq!(s, intent_at(&r, *step), "the start is the intent");
        // The simulator's install window (1.5 s) lies between start and finish.
        assert!(f >= s + 1_400, "step {step}: {s} {f}");
        assert!(o >= f, "step {step}: {f} {o}");
    }
    let (_, _, s2, f2, o2) = rows[1];
    let (g, started, finished, live) = gauges(&encode(&metrics));
    assert_eq!(g, 2.0);
    assert_eq!(started, s2.unwrap() as f64 / 1000.0);
    assert_eq!(finished, f2.unwrap() as f64 / 1000.0);
    assert_eq!(live, o2.unwrap() as f64 / 1000.0);
    // One series each, after any number of transitions.
    let text = encode(&metrics);
    for n in [
        names::APPLY_GENERATION,
        names::APPLY_STARTED_TIMESTAMP_SECONDS,
        names::APPLY_FINISHED_TIMESTAMP_SECONDS,
    ] {
        let lines = text
            .lines()
            .filter(|l| l.starts_with(n) && !l.starts_with('#'))
            .count();
        assert_eq!(lines, 1, "{n} in {text}");
    }

    // A restart restores the gauges from the journal.
    let again = WandererMetrics::default();
    run(&url, &path, 2, &again).await;
    assert_eq!(gauges(&encode(&again)), (g, started, finished, live));
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apply_interrupted_by_a_restart_is_journalled_as_such() {
    let (url, stop) = common::start_sim("upgrade_window: 200ms", 2).await;
    let dir = TempDir::new("chaos-phases");
    let path = dir.join("journal.jsonl");
    run(&url, &path, 1, &WandererMetrics::default()).await;
    // The sidecar died right after step 2's intent, before the simulator saw it.
    let at = upsoak_chaos::wanderer::journal::now_unix_ms() - 5_000;
    {
        let (mut j, _) = Journal::open(&path).unwrap();
        j.append(&Entry::Intent {
            step: 2,
            from: Install {
                version: "1.59.0".into(),
                ..Install::default()
            },
            to: Install {
                version: "1.60.0".into(),
                ..Install::default()
            },
            at: rfc3339(at),
        })
        .unwrap();
    }
    let metrics = WandererMetrics::default();
    let r = run(&url, &path, 2, &metrics).await;
    let rows = outcomes(&r);
    assert_eq!(rows.len(), 3, "{rows:?}");
    // Interrupted: started at its intent, never finished, not observed.
    assert_eq!(rows[1], (2, Outcome::Indeterminate, Some(at), None, None));
    // Then observed by the restarted sidecar, with the moment it found the install settled.
    let (step, result, s, f, o) = rows[2];
    assert_eq!((step, result, s), (2, Outcome::Observed, Some(at)));
    assert!(f.unwrap() > at + 5_000 - 1 && o.unwrap() >= f.unwrap());
    let (g, started, finished, live) = gauges(&encode(&metrics));
    assert_eq!(g, 2.0);
    assert_eq!(started, at as f64 / 1000.0);
    assert_eq!(finished, f.unwrap() as f64 / 1000.0);
    assert_eq!(live, o.unwrap() as f64 / 1000.0);
    stop.cancel();
}
