//! A step interrupted by a kill stays unresolved only until one restart lives long enough to
//! observe it, however many restarts were killed before (review 2, D7): against a real
//! simulator, with restarts cut off while they wait for the interrupted install to settle.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;
use upsoak_agones::release::Install;
use upsoak_chaos::wanderer::apply::{Applier, SimApplier};
use upsoak_chaos::wanderer::events::WandererMetrics;
use upsoak_chaos::wanderer::journal::{Entry, Journal, Outcome, now};
use upsoak_chaos::wanderer::walk::Planner;
use upsoak_chaos::wanderer::{self, RunOptions, Schedule};
use upsoak_testkit::TempDir;

/// Always targets 1.58.0; its identity is the journal's `start`.
struct To158;

impl Planner for To158 {
    fn identity(&self) -> (u64, String, String) {
        (5, "fixed".into(), "d7-space".into())
    }
    fn next(&mut self, _: u64, _: &Install) -> Install {
        version("1.58.0")
    }
    fn record(&mut self, _: &Install, _: &Install) {}
    fn coverage(&self) -> Vec<(&'static str, f64)> {
        vec![]
    }
}

fn version(v: &str) -> Install {
    Install {
        version: v.into(),
        ..Install::default()
    }
}

/// Resume only: `max_steps` 1 with step 1 journalled stops right after the start-up observe.
fn resume_only() -> RunOptions {
    RunOptions {
        schedule: Schedule {
            period: Duration::from_secs(3600),
            jitter: 0.0,
        },
        max_steps: Some(1),
        apply_timeout: Duration::from_secs(20),
        progress: None,
    }
}

/// A journal whose step 1 (1.60.0 → 1.58.0) was intended, then `extra` appended.
fn journal_with(path: &Path, extra: &[Entry]) {
    let (mut j, _) = Journal::open(path).unwrap();
    let (seed, strategy, space_hash) = To158.identity();
    j.append(&Entry::Start {
        seed,
        strategy,
        space_hash,
        at: now(),
    })
    .unwrap();
    j.append(&Entry::Intent {
        step: 1,
        from: version("1.60.0"),
        to: version("1.58.0"),
        at: now(),
    })
    .unwrap();
    for e in extra {
        j.append(e).unwrap();
    }
}

/// Step 1's outcomes in the journal at `path`: result and observed version.
fn step1(path: &Path) -> Vec<(Outcome, Option<String>)> {
    let (_, r) = Journal::open(path).unwrap();
    r.entries
        .iter()
        .filter_map(|e| match e {
            Entry::Outcome {
                step: 1,
                result,
                observed,
                ..
            } => Some((*result, observed.as_ref().map(|o| o.version.clone()))),
            _ => None,
        })
        .collect()
}

fn encode(metrics: &WandererMetrics) -> String {
    let mut reg = Registry::default();
    metrics.register(&mut reg);
    upsoak_common::exposition::encode(&reg, upsoak_common::exposition::Format::PrometheusText)
        .unwrap()
}

/// A sidecar start on `path` that lives to the end of its resume.
async fn start_and_finish(url: &str, path: &Path, metrics: &WandererMetrics) {
    let applier = SimApplier::new(url, Duration::from_secs(20));
    let taken = wanderer::run(
        path,
        &applier,
        &mut To158,
        &resume_only(),
        metrics,
        &CancellationToken::new(),
        || {},
    )
    .await
    .unwrap();
    assert_eq!(taken, 1, "no new step was taken");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_indeterminate_step_left_by_a_killed_restart_is_observed_by_the_next() {
    let (url, stop) = common::start_sim("upgrade_window: 100ms", 1).await;
    let dir = TempDir::new("chaos-d7");
    let path = dir.join("journal.jsonl");
    // The first restart journalled the interrupted step indeterminate, then was killed.
    journal_with(
        &path,
        &[Entry::Outcome {
            step: 1,
            result: Outcome::Indeterminate,
            observed: None,
            error: Some("the sidecar stopped while this transition was in flight".into()),
            duration_s: 0.0,
            at: now(),
            started_unix_ms: None,
            finished_unix_ms: None,
            observed_unix_ms: None,
        }],
    );
    let metrics = WandererMetrics::default();
    start_and_finish(&url, &path, &metrics).await;
    // Observed (the install never reached the simulator), and not journalled twice
    // indeterminate.
    assert_eq!(
        step1(&path),
        [
            (Outcome::Indeterminate, None),
            (Outcome::Observed, Some("1.60.0".into()))
        ]
    );
    let text = encode(&metrics);
    assert!(
        !text.contains("result=\"indeterminate\",kind=\"interrupted\"} 1"),
        "the interruption was counted by the first restart, not again: {text}"
    );
    assert!(
        text.contains("upsoak_wanderer_transitions_total{result=\"observed\",kind=\"none\"} 1"),
        "{text}"
    );
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_step_is_observed_after_many_killed_restarts() {
    // A window long enough that every killed restart below is still waiting for it to close
    // when it is cut off.
    let (url, stop) = common::start_sim("upgrade_window: 6s", 1).await;
    let dir = TempDir::new("chaos-d7");
    let path = dir.join("journal.jsonl");
    journal_with(&path, &[]);
    // The killed process had sent the install: it is in flight in the simulator.
    let installing = tokio::spawn({
        let url = url.clone();
        async move {
            let _ = SimApplier::new(&url, Duration::from_secs(20))
                .apply(&version("1.58.0"))
                .await;
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    installing.abort();
    for kill in 0..4 {
        let run = tokio::spawn({
            let (url, path) = (url.clone(), path.clone());
            async move {
                start_and_finish(&url, &path, &WandererMetrics::default()).await;
            }
        });
        // Dropping the task at an await is what a SIGKILL leaves of it: every journal append
        // is synced before the next await.
        tokio::time::sleep(Duration::from_millis(300)).await;
        run.abort();
        assert!(run.await.unwrap_err().is_cancelled(), "kill {kill}");
        assert_eq!(
            step1(&path),
            [(Outcome::Indeterminate, None)],
            "after kill {kill}: journalled indeterminate once, not yet observed"
        );
    }
    let metrics = WandererMetrics::default();
    start_and_finish(&url, &path, &metrics).await;
    assert_eq!(
        step1(&path),
        [
            (Outcome::Indeterminate, None),
            (Outcome::Observed, Some("1.58.0".into()))
        ]
    );
    // The observation carries the phases of the step it resolves.
    let (_, r) = Journal::open(&path).unwrap();
    let (step, phases) = r.last_phases().unwrap();
    assert_eq!(step, 1);
    assert!(phases.started.is_some() && phases.finished.is_some() && phases.observed.is_some());
    assert!(r.unresolved().is_none());
    stop.cancel();
}
