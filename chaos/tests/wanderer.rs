//! The Wanderer loop against a real simulator: journal before acting, observed outcomes,
//! metrics, resuming after a crash with an action in flight, and resuming a journalled schedule.

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
use upsoak_chaos::wanderer::journal::{
    Entry, Journal, Outcome, Recovered, now, now_unix_ms, parse_rfc3339,
};
use upsoak_chaos::wanderer::walk::Planner;
use upsoak_chaos::wanderer::{self, RunOptions, Schedule};
use upsoak_testkit::{POLL, TempDir};

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
        progress: None,
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
            Entry::Scheduled { step, .. } => format!("scheduled {step}"),
            Entry::Intent { step, to, .. } => format!("intent {step} {}", to.version),
            Entry::Outcome { step, result, .. } => format!("outcome {step} {}", result.as_str()),
            Entry::Release { step, result, .. } => format!("release {step} {result}"),
            Entry::Snapshot { entries, .. } => format!("snapshot of {entries}"),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "start",
            "scheduled 1",
            "intent 1 1.58.0",
            "outcome 1 applied",
            "scheduled 2",
            "intent 2 1.59.0",
            "outcome 2 applied",
            "scheduled 3",
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

/// A journal of `Cycle`'s walk that an earlier run left waiting for step 1, due at `due`.
fn journal_waiting(path: &Path, due: u64) {
    let (mut j, _) = Journal::open(path).unwrap();
    let (seed, strategy, space_hash) = Cycle {
        seen: BTreeSet::new(),
    }
    .identity();
    j.append(&Entry::Start {
        seed,
        strategy,
        space_hash,
        at: now(),
    })
    .unwrap();
    j.append(&Entry::Scheduled {
        step: 1,
        due_unix_ms: due,
        at: now(),
    })
    .unwrap();
}

/// Each step's journalled (due times, intent time), in unix ms.
fn schedule_of(r: &Recovered, step: u64) -> (Vec<u64>, Option<u64>) {
    let dues = r
        .entries
        .iter()
        .filter_map(|e| match e {
            Entry::Scheduled {
                step: s,
                due_unix_ms,
                ..
            } if *s == step => Some(*due_unix_ms),
            _ => None,
        })
        .collect();
    let intent = r.entries.iter().find_map(|e| match e {
        Entry::Intent { step: s, at, .. } if *s == step => parse_rfc3339(at),
        _ => None,
    });
    (dues, intent)
}

/// Runs `Cycle` for `steps` with `schedule`, within 30 s.
async fn run_with(url: &str, path: &Path, schedule: Schedule, steps: u64, m: &WandererMetrics) {
    let opts = RunOptions {
        schedule,
        max_steps: Some(steps),
        apply_timeout: Duration::from_secs(10),
        progress: None,
    };
    let mut planner = Cycle {
        seen: BTreeSet::new(),
    };
    let applier = SimApplier::new(url, Duration::from_secs(10));
    let never = CancellationToken::new();
    let run = wanderer::run(path, &applier, &mut planner, &opts, m, &never, || {});
    let taken = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("the restarted loop took its steps within 30 s (it waited a whole period?)")
        .unwrap();
    assert_eq!(taken, steps);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_loop_waits_for_the_journalled_due_time_not_a_new_period() {
    let (url, stop) = start_sim().await;
    let dir = TempDir::new("chaos-schedule");
    let minute = Schedule {
        period: Duration::from_secs(60),
        jitter: 0.1,
    };

    // Restarted halfway: step 1 is due in 1.5 s, not a minute from now.
    let path = dir.join("halfway.jsonl");
    let due = now_unix_ms() + 1500;
    journal_waiting(&path, due);
    let metrics = WandererMetrics::default();
    let m = metrics.clone();
    let watch = tokio::spawn(async move {
        // The gauge shows the journalled due time while the loop waits for it.
        upsoak_testkit::eventually(Duration::from_secs(10), POLL, || {
            let text = encode(&m);
            let v =
                upsoak_testkit::sample(&text, "upsoak_wanderer_next_transition_timestamp_seconds ");
            async move { v.filter(|v| *v > 0.0) }
        })
        .await
        .unwrap()
    });
    run_with(&url, &path, minute, 1, &metrics).await;
    assert!((watch.await.unwrap() - due as f64 / 1000.0).abs() < 1e-3);
    let r = Journal::open(&path).unwrap().1;
    let (dues, intent) = schedule_of(&r, 1);
    assert_eq!(dues, [due], "kept, not journalled again");
    let intent = intent.unwrap();
    assert!(
        (due..due + 1000).contains(&intent),
        "intent at {intent}, due {due}"
    );

    // Already past: taken at once and once; the next step waits a whole period from then.
    let path = dir.join("past.jsonl");
    journal_waiting(&path, now_unix_ms() - 3_600_000);
    let started = now_unix_ms();
    let second = Schedule {
        period: Duration::from_secs(1),
        jitter: 0.0,
    };
    run_with(&url, &path, second, 2, &WandererMetrics::default()).await;
    let r = Journal::open(&path).unwrap().1;
    let first = schedule_of(&r, 1).1.unwrap();
    assert!(
        first < started + 1000,
        "the missed step waited {}",
        first - started
    );
    let (dues, intent) = schedule_of(&r, 2);
    assert_eq!(dues.len(), 1);
    assert!(
        dues[0] >= first + 1000,
        "no burst: step 2 due a period after step 1"
    );
    assert!(intent.unwrap() >= dues[0]);

    // The period was shortened below what is left: rescheduled under the new period.
    let path = dir.join("shortened.jsonl");
    let far = now_unix_ms() + 3_600_000;
    journal_waiting(&path, far);
    let before = now_unix_ms();
    let short = Schedule {
        period: Duration::from_millis(200),
        jitter: 0.0,
    };
    run_with(&url, &path, short, 1, &WandererMetrics::default()).await;
    let r = Journal::open(&path).unwrap().1;
    let (dues, intent) = schedule_of(&r, 1);
    assert_eq!(dues.len(), 2, "{dues:?}");
    assert!((before + 200..before + 2000).contains(&dues[1]), "{dues:?}");
    assert_eq!(r.scheduled(1), Some(dues[1]), "the last schedule wins");
    assert!(intent.unwrap() >= dues[1]);
    stop.cancel();
}
