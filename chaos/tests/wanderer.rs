//! The Wanderer loop against a real simulator: journal before acting, observed outcomes,
//! metrics, and resuming after a crash with an action in flight.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;
use upsoak_agones::release::{Install, TunableValue};
use upsoak_chaos::wanderer::apply::SimApplier;
use upsoak_chaos::wanderer::events::WandererMetrics;
use upsoak_chaos::wanderer::journal::{Entry, Journal, Outcome, Recovered};
use upsoak_chaos::wanderer::walk::Planner;
use upsoak_chaos::wanderer::{self, RunOptions, Schedule};
use upsoak_testkit::TempDir;

/// Steps through versions in a fixed cycle; step N targets VERSIONS[N % 4].
struct Cycle {
    seen: BTreeSet<(String, String)>,
}

const VERSIONS: [&str; 4] = ["1.57.0", "1.58.0", "1.59.0", "1.60.0"];

impl Planner for Cycle {
    fn identity(&self) -> (u64, String, String) {
        (9, "cycle".into(), "test-space".into())
    }
    fn next(&mut self, step: u64, _current: &Install) -> Install {
        Install {
            version: VERSIONS[(step % 4) as usize].into(),
            ..Install::default()
        }
    }
    fn record(&mut self, from: &Install, to: &Install) {
        self.seen.insert((from.version.clone(), to.version.clone()));
    }
    fn coverage(&self) -> Vec<(&'static str, f64)> {
        vec![("version_pairs", self.seen.len() as f64 / 12.0)]
    }
}

async fn start_sim() -> (String, CancellationToken) {
    common::start_sim("upgrade_window: 100ms", 1).await
}

fn opts(max_steps: u64) -> RunOptions {
    RunOptions {
        schedule: Schedule {
            period: Duration::from_millis(50),
            jitter: 0.2,
        },
        max_steps: Some(max_steps),
        apply_timeout: Duration::from_secs(10),
    }
}

/// Runs the Wanderer with `planner` for `n` steps in total on `path`; the journal afterwards.
async fn run_steps<P: Planner>(
    url: &str,
    path: &Path,
    planner: &mut P,
    n: u64,
    metrics: &WandererMetrics,
) -> Recovered {
    let applier = SimApplier::new(url, Duration::from_secs(10));
    let started = AtomicU32::new(0);
    let steps = wanderer::run(
        path,
        &applier,
        planner,
        &opts(n),
        metrics,
        &CancellationToken::new(),
        || {
            started.fetch_add(1, Ordering::SeqCst);
        },
    )
    .await
    .unwrap();
    assert_eq!(steps, n);
    assert_eq!(
        started.load(Ordering::SeqCst),
        1,
        "started once, after observing"
    );
    Journal::open(path).unwrap().1
}

fn encode(metrics: &WandererMetrics) -> String {
    let mut reg = Registry::default();
    metrics.register(&mut reg);
    upsoak_common::exposition::encode(&reg, upsoak_common::exposition::Format::PrometheusText)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn walks_journals_and_exports_each_transition() {
    let (url, stop) = start_sim().await;
    let dir = TempDir::new("chaos-wanderer");
    let path = dir.join("journal.jsonl");
    let metrics = WandererMetrics::default();
    let mut planner = Cycle {
        seen: BTreeSet::new(),
    };
    let r = run_steps(&url, &path, &mut planner, 3, &metrics).await;
    let kinds: Vec<String> = r
        .entries
        .iter()
        .map(|e| match e {
            Entry::Start { .. } => "start".to_owned(),
            Entry::Intent { step, to, .. } => format!("intent {step} {}", to.version),
            Entry::Outcome { step, result, .. } => format!("outcome {step} {}", result.as_str()),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "start",
            "intent 1 1.58.0",
            "outcome 1 applied",
            "intent 2 1.59.0",
            "outcome 2 applied",
            "intent 3 1.60.0",
            "outcome 3 applied"
        ]
    );
    let text = encode(&metrics);
    assert!(text.contains("upsoak_wanderer_generation 3"), "{text}");
    assert!(
        text.contains("upsoak_wanderer_transitions_total{result=\"applied\",kind=\"none\"} 3"),
        "{text}"
    );
    // Stopped at max_steps; nothing failed, so no failed target.
    assert!(text.contains("upsoak_wanderer_running 0"), "{text}");
    assert!(
        !text.contains("upsoak_wanderer_last_failed_target_info{"),
        "{text}"
    );
    assert!(
        text.contains("upsoak_wanderer_config_info{version=\"1.60.0\""),
        "{text}"
    );
    assert!(
        text.contains("upsoak_wanderer_coverage_ratio{kind=\"version_pairs\"} 0.25"),
        "{text}"
    );
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumes_after_a_crash_with_an_action_in_flight() {
    let (url, stop) = start_sim().await;
    let dir = TempDir::new("chaos-wanderer");
    let path = dir.join("journal.jsonl");
    let metrics = WandererMetrics::default();
    // Two steps, then a crash right after step 3's intent was synced (the sim never saw it),
    // and a torn half line after it.
    let mut planner = Cycle {
        seen: BTreeSet::new(),
    };
    run_steps(&url, &path, &mut planner, 2, &metrics).await;
    {
        let (mut j, _) = Journal::open(&path).unwrap();
        j.append(&Entry::Intent {
            step: 3,
            from: Install {
                version: "1.59.0".into(),
                ..Install::default()
            },
            to: Install {
                version: "1.60.0".into(),
                ..Install::default()
            },
            at: "2026-11-25T00:00:00.000Z".into(),
        })
        .unwrap();
    }
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    std::io::Write::write_all(&mut f, b"{\"type\":\"outco").unwrap();
    drop(f);

    let mut planner = Cycle {
        seen: BTreeSet::new(),
    };
    let metrics = WandererMetrics::default();
    let r = run_steps(&url, &path, &mut planner, 4, &metrics).await;
    assert_eq!(r.torn_bytes, 0);
    let text = encode(&metrics);
    assert!(
        text.contains("upsoak_wanderer_journal_lines_dropped_total 1"),
        "{text}"
    );
    assert!(
        text.contains(
            "upsoak_wanderer_transitions_total{result=\"indeterminate\",kind=\"interrupted\"} 1"
        ),
        "{text}"
    );
    // The journal says why the outcome is indeterminate, as the log line does.
    assert!(r.entries.iter().any(|e| matches!(
        e,
        Entry::Outcome { result: Outcome::Indeterminate, error: Some(why), .. } if why.contains("in flight")
    )));
    let outcomes: Vec<(u64, Outcome, Option<String>)> = r
        .entries
        .iter()
        .filter_map(|e| match e {
            Entry::Outcome {
                step,
                result,
                observed,
                ..
            } => Some((*step, *result, observed.as_ref().map(|o| o.version.clone()))),
            _ => None,
        })
        .collect();
    assert_eq!(
        outcomes,
        vec![
            (1, Outcome::Applied, Some("1.58.0".into())),
            (2, Outcome::Applied, Some("1.59.0".into())),
            (3, Outcome::Indeterminate, None),
            // Observed, not assumed: the install never happened.
            (3, Outcome::Observed, Some("1.59.0".into())),
            (4, Outcome::Applied, Some("1.57.0".into())),
        ]
    );
    // No step was applied twice and the walk went on at the next step.
    let intents: Vec<u64> = r
        .entries
        .iter()
        .filter_map(|e| match e {
            Entry::Intent { step, .. } => Some(*step),
            _ => None,
        })
        .collect();
    assert_eq!(intents, vec![1, 2, 3, 4]);
    // Coverage resumed from the journal: 1→2, 2→3 (replayed) and 3→4.
    assert_eq!(planner.seen.len(), 3);
    // A journal of another walk is refused.
    struct Other;
    impl Planner for Other {
        fn identity(&self) -> (u64, String, String) {
            (1, "random".into(), "x".into())
        }
        fn next(&mut self, _: u64, c: &Install) -> Install {
            c.clone()
        }
        fn record(&mut self, _: &Install, _: &Install) {}
        fn coverage(&self) -> Vec<(&'static str, f64)> {
            vec![]
        }
    }
    let err = wanderer::run(
        &path,
        &SimApplier::new(&url, Duration::from_secs(10)),
        &mut Other,
        &opts(5),
        &metrics,
        &CancellationToken::new(),
        || panic!("a refused journal is never started"),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("belongs to another walk"), "{err}");
    stop.cancel();
}

/// Targets one install the simulator refuses (Stable `PortPolicyNone` off in 1.60.0).
struct Refused;

impl Planner for Refused {
    fn identity(&self) -> (u64, String, String) {
        (3, "refused".into(), "test-space".into())
    }
    fn next(&mut self, _: u64, _: &Install) -> Install {
        Install {
            version: "1.60.0".into(),
            feature_gates: [("PortPolicyNone".to_owned(), false)].into(),
            tunables: [("logLevel".to_owned(), TunableValue::from("debug"))].into(),
        }
    }
    fn record(&mut self, _: &Install, _: &Install) {}
    fn coverage(&self) -> Vec<(&'static str, f64)> {
        vec![]
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_transition_exports_its_target_and_kind() {
    let (url, stop) = start_sim().await;
    let dir = TempDir::new("chaos-wanderer");
    let path = dir.join("journal.jsonl");
    let metrics = WandererMetrics::default();
    let r = run_steps(&url, &path, &mut Refused, 2, &metrics).await;
    let text = encode(&metrics);
    assert!(
        text.contains("upsoak_wanderer_transitions_total{result=\"failed\",kind=\"rejected\"} 2"),
        "{text}"
    );
    // One series, the target that failed (not what is installed), with the failure kind.
    let failed: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("upsoak_wanderer_last_failed_target_info{"))
        .collect();
    assert_eq!(
        failed,
        [
            "upsoak_wanderer_last_failed_target_info{version=\"1.60.0\",feature_gates=\"PortPolicyNone=false\",tunables=\"logLevel=debug\",kind=\"rejected\"} 1"
        ],
        "{text}"
    );
    let errors: Vec<&str> = r
        .entries
        .iter()
        .filter_map(|e| match e {
            Entry::Outcome { error, .. } => error.as_deref(),
            _ => None,
        })
        .collect();
    assert_eq!(errors.len(), 2);
    assert!(errors[0].contains("PortPolicyNone"), "{errors:?}");
    stop.cancel();
}
