//! The Wanderer's progress watchdog (M3 of the first audit): the loop beats while it waits for
//! its next transition, however long the period, so `/healthz` stays live; once the loop has
//! stopped beating, the watchdog reports the stall. Against a real simulator.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use upsoak_agones::release::Install;
use upsoak_chaos::wanderer::apply::{ApplyError, Recovery, SimApplier};
use upsoak_chaos::wanderer::events::WandererMetrics;
use upsoak_chaos::wanderer::walk::Planner;
use upsoak_chaos::wanderer::{self, RunError, RunOptions, Schedule};
use upsoak_common::ops::Health;
use upsoak_testkit::TempDir;

/// Always the same target: the test is about waiting, not walking.
struct Stay;

impl Planner for Stay {
    fn identity(&self) -> (u64, String, String) {
        (3, "stay".into(), "progress-space".into())
    }
    fn next(&mut self, _step: u64, current: &Install) -> Install {
        current.clone()
    }
    fn record(&mut self, _from: &Install, _to: &Install) {}
    fn coverage(&self) -> Vec<(&'static str, f64)> {
        Vec::new()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loop_waiting_a_whole_period_stays_live_and_a_stopped_one_shows_as_stalled() {
    let (url, stop_sim) = common::start_sim("upgrade_window: 100ms", 1).await;
    let dir = TempDir::new("chaos-progress");
    let health = Health::new();
    // A limit far shorter than the period: only beats during the wait keep it live.
    let limit = Duration::from_millis(1500);
    let opts = RunOptions {
        schedule: Schedule {
            period: Duration::from_secs(60),
            jitter: 0.0,
        },
        max_steps: Some(1),
        apply_timeout: Duration::from_secs(10),
        progress: Some(health.watchdog("the Wanderer", limit)),
    };
    let applier = SimApplier::new(&url, Duration::from_secs(10));
    let shutdown = CancellationToken::new();
    let metrics = WandererMetrics::default();
    let path = dir.join("journal.jsonl");
    let walking = {
        let shutdown = shutdown.clone();
        async move {
            let mut planner = Stay;
            wanderer::run(
                &path,
                &applier,
                &mut planner,
                &opts,
                &metrics,
                &shutdown,
                || {},
            )
            .await
        }
    };
    let task = tokio::spawn(walking);
    // Four limits' worth of the minute-long wait, sampled every 100 ms: never stalled.
    let watched = tokio::time::Instant::now();
    while watched.elapsed() < limit * 4 {
        assert_eq!(health.stalled(), None, "the waiting loop stopped beating");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        !task.is_finished(),
        "the loop is still waiting for its step"
    );
    shutdown.cancel();
    task.await.unwrap().unwrap();
    // Stopped: nothing beats any more, and the watchdog says so once the limit has passed.
    tokio::time::sleep(limit + Duration::from_millis(500)).await;
    let stalled = health
        .stalled()
        .expect("a loop that stopped beating shows as stalled");
    assert!(
        stalled.contains("the Wanderer has not made progress"),
        "{stalled}"
    );
    stop_sim.cancel();
}

/// Installs anything at once and never answers what is installed, as a hung `helm status`.
struct Deaf;

impl upsoak_chaos::wanderer::apply::Applier for Deaf {
    async fn apply(&self, _target: &Install) -> Result<(), ApplyError> {
        Ok(())
    }
    async fn observe_installed(&self) -> Result<Install, ApplyError> {
        std::future::pending().await
    }
    async fn settle(&self) -> Result<Option<Recovery>, ApplyError> {
        Ok(None)
    }
    fn name(&self) -> &'static str {
        "deaf"
    }
}

#[tokio::test]
async fn an_observation_that_never_answers_ends_within_the_apply_timeout_and_its_backstop() {
    let dir = TempDir::new("chaos-deaf");
    let opts = RunOptions {
        schedule: Schedule {
            period: Duration::from_millis(100),
            jitter: 0.0,
        },
        max_steps: Some(1),
        apply_timeout: Duration::from_secs(1),
        progress: None,
    };
    let never = CancellationToken::new();
    let mut planner = Stay;
    // The bound is apply_timeout + the 30 s backstop; twice that is a hang.
    let ended = tokio::time::timeout(
        Duration::from_secs(62),
        wanderer::run(
            &dir.join("journal.jsonl"),
            &Deaf,
            &mut planner,
            &opts,
            &WandererMetrics::default(),
            &never,
            || {},
        ),
    )
    .await
    .expect("the observation at start was not bounded");
    assert!(
        matches!(ended, Err(RunError::Observe(ApplyError::Timeout(_)))),
        "{ended:?}"
    );
}
