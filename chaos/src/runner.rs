//! The Wanderer's loop: on its schedule, take the next step of the walk, journal the intent,
//! apply it, observe what is installed, journal and export the outcome. Restarted with the
//! same journal it resumes the same walk at the next step; an interrupted action is recorded
//! as indeterminate, then observed.

use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use tokio_util::sync::CancellationToken;

use crate::apply::{Applier, ApplyError, Install};
use crate::journal::{Entry, Journal, JournalError, Outcome, Recovered, now};

/// The walk, as the loop needs it: deterministic from its seed and what it was told.
pub trait Planner: Send {
    /// Seed, strategy name and a hash of the configuration space, journalled on the first line.
    fn identity(&self) -> (u64, String, String);
    /// The target of step `step`, starting from `current` (what is observed installed).
    fn next(&mut self, step: u64, current: &Install) -> Install;
    /// Tells the walk a transition happened (for coverage); called on replay too.
    fn record(&mut self, from: &Install, to: &Install);
    /// Coverage ratios by kind (`version_pairs`, `gate_version`, `gate_pairs`), 0..=1.
    fn coverage(&self) -> Vec<(&'static str, f64)>;
}

/// When transitions happen.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Schedule {
    pub period: Duration,
    /// Fraction of the period added or taken at random (0.1 = ±10 %).
    pub jitter: f64,
}

impl Schedule {
    /// The wait before step `step`: the same for the same seed and step, so a replay waits alike.
    pub fn wait(&self, seed: u64, step: u64) -> Duration {
        let mut rng = StdRng::seed_from_u64(seed ^ step.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let j = self.jitter.clamp(0.0, 1.0);
        let f = if j > 0.0 {
            rng.random_range(-j..=j)
        } else {
            0.0
        };
        self.period.mul_f64(1.0 + f)
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConfigLabels {
    version: String,
    feature_gates: String,
    tunables: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: String,
}

/// The Wanderer's metrics.
#[derive(Clone)]
pub struct WandererMetrics {
    generation: Gauge,
    config_info: Family<ConfigLabels, Gauge>,
    transitions: Family<ResultLabel, Counter>,
    duration: Histogram,
    last_transition: Gauge<f64, std::sync::atomic::AtomicU64>,
    coverage: Family<KindLabel, Gauge<f64, std::sync::atomic::AtomicU64>>,
    next_transition: Gauge<f64, std::sync::atomic::AtomicU64>,
}

impl Default for WandererMetrics {
    fn default() -> Self {
        WandererMetrics {
            generation: Gauge::default(),
            config_info: Family::default(),
            transitions: Family::default(),
            duration: Histogram::new([
                1.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0,
            ]),
            last_transition: Gauge::default(),
            coverage: Family::default(),
            next_transition: Gauge::default(),
        }
    }
}

impl WandererMetrics {
    pub fn register(&self, r: &mut Registry) {
        r.register(
            "upsoak_wanderer_generation",
            "Steps of the walk taken so far; changes at every transition",
            self.generation.clone(),
        );
        r.register(
            "upsoak_wanderer_config_info",
            "The configuration observed installed (value 1)",
            self.config_info.clone(),
        );
        r.register(
            "upsoak_wanderer_transitions",
            "Transitions by observed result (applied, failed, indeterminate, observed)",
            self.transitions.clone(),
        );
        r.register(
            "upsoak_wanderer_transition_duration_seconds",
            "Time from a transition's intent to its observed outcome",
            self.duration.clone(),
        );
        r.register(
            "upsoak_wanderer_last_transition_timestamp_seconds",
            "Unix time of the last transition's outcome",
            self.last_transition.clone(),
        );
        r.register(
            "upsoak_wanderer_coverage_ratio",
            "Covered share of the pairs of each kind (version_pairs, gate_version, gate_pairs)",
            self.coverage.clone(),
        );
        r.register(
            "upsoak_wanderer_next_transition_timestamp_seconds",
            "Unix time the next transition is scheduled for",
            self.next_transition.clone(),
        );
    }

    fn set_config(&self, c: &Install) {
        self.config_info.clear();
        let tunables = c
            .tunables
            .iter()
            .map(|(k, v)| {
                format!(
                    "{k}={}",
                    v.as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| v.to_string())
                )
            })
            .collect::<Vec<_>>()
            .join("&");
        self.config_info
            .get_or_create(&ConfigLabels {
                version: c.version.clone(),
                feature_gates: c.gate_query(),
                tunables,
            })
            .set(1);
    }
}

/// A transition's outcome: the one place it is logged and counted.
#[derive(Debug)]
pub struct WandererTransition<'a> {
    pub step: u64,
    pub from: &'a Install,
    pub to: &'a Install,
    pub observed: Option<&'a Install>,
    pub result: Outcome,
    pub error: Option<&'a str>,
    pub duration: Duration,
}

impl WandererTransition<'_> {
    pub fn emit(&self, m: &WandererMetrics) {
        tracing::info!(
            event = "wanderer_transition",
            step = self.step,
            from_version = %self.from.version,
            to_version = %self.to.version,
            to_gates = %self.to.gate_query(),
            result = self.result.as_str(),
            observed_version = self.observed.map(|o| o.version.as_str()).unwrap_or(""),
            error = self.error.unwrap_or(""),
            duration_s = self.duration.as_secs_f64(),
            "transition"
        );
        m.transitions
            .get_or_create(&ResultLabel {
                result: self.result.as_str().to_owned(),
            })
            .inc();
        m.duration.observe(self.duration.as_secs_f64());
        m.generation
            .set(i64::try_from(self.step).unwrap_or(i64::MAX));
        m.last_transition.set(unix_now());
        if let Some(o) = self.observed {
            m.set_config(o);
        }
    }
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

/// Why the Wanderer stopped before its time.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(
        "the journal `{path}` belongs to another walk (seed {seed}, strategy {strategy}, space {space}); use another --state-dir or the same settings"
    )]
    OtherWalk {
        path: String,
        seed: u64,
        strategy: String,
        space: String,
    },
    #[error("cannot observe what is installed at start")]
    Observe(#[source] ApplyError),
}

/// Options of one run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub schedule: Schedule,
    /// Stop after this many steps in total (journalled ones included); `None` runs until stopped.
    pub max_steps: Option<u64>,
    /// Longest an apply may take before it is recorded as failed.
    pub apply_timeout: Duration,
}

/// Runs the Wanderer until `shutdown` or `max_steps`. A SIGTERM while applying lets the apply
/// finish and journal its outcome (bounded by `apply_timeout`).
pub async fn run<A: Applier, P: Planner>(
    journal_path: &std::path::Path,
    applier: &A,
    planner: &mut P,
    opts: &RunOptions,
    metrics: &WandererMetrics,
    shutdown: &CancellationToken,
) -> Result<u64, RunError> {
    let (mut journal, recovered) = Journal::open(journal_path)?;
    if recovered.torn_bytes > 0 {
        tracing::warn!(
            bytes = recovered.torn_bytes,
            "dropped a torn last journal line"
        );
    }
    let (seed, strategy, space) = planner.identity();
    match recovered.entries.first() {
        None => journal.append(&Entry::Start {
            seed,
            strategy: strategy.clone(),
            space_hash: space.clone(),
            at: now(),
        })?,
        Some(Entry::Start {
            seed: s,
            strategy: st,
            space_hash: h,
            ..
        }) if (*s, st, h) == (seed, &strategy, &space) => {}
        Some(Entry::Start {
            seed: s,
            strategy: st,
            space_hash: h,
            ..
        }) => {
            return Err(RunError::OtherWalk {
                path: journal_path.display().to_string(),
                seed: *s,
                strategy: st.clone(),
                space: h.clone(),
            });
        }
        Some(_) => {
            return Err(RunError::Journal(JournalError::Corrupt {
                path: journal_path.to_owned(),
                line: 1,
                reason: "the first entry is not `start`".into(),
            }));
        }
    }
    replay(planner, &recovered);
    let mut current = resume(&mut journal, &recovered, applier, metrics).await?;
    metrics.set_config(&current);
    let mut step = recovered.last_step().unwrap_or(0) + 1;
    metrics
        .generation
        .set(i64::try_from(step - 1).unwrap_or(i64::MAX));
    publish_coverage(planner, metrics);
    loop {
        if opts.max_steps.is_some_and(|m| step > m) {
            break;
        }
        let wait = opts.schedule.wait(seed, step);
        metrics.next_transition.set(unix_now() + wait.as_secs_f64());
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(wait) => {}
        }
        let target = planner.next(step, &current);
        journal.append(&Entry::Intent {
            step,
            from: current.clone(),
            to: target.clone(),
            at: now(),
        })?;
        let start = Instant::now();
        let applied = tokio::time::timeout(opts.apply_timeout, applier.apply(&target)).await;
        let observed = applier.observe().await;
        let duration = start.elapsed();
        let error = match (&applied, &observed) {
            (Err(_), _) => Some(format!("apply timed out after {:?}", opts.apply_timeout)),
            (Ok(Err(e)), _) => Some(error_chain(e)),
            (Ok(Ok(())), Err(e)) => Some(format!("cannot observe: {}", error_chain(e))),
            (Ok(Ok(())), Ok(o)) if !target.satisfied_by(o) => Some(format!(
                "observed {} {} is not the target",
                o.version,
                o.gate_query()
            )),
            _ => None,
        };
        let result = if error.is_none() {
            Outcome::Applied
        } else {
            Outcome::Failed
        };
        let observed = observed.ok();
        journal.append(&Entry::Outcome {
            step,
            result,
            observed: observed.clone(),
            error: error.clone(),
            duration_s: duration.as_secs_f64(),
            at: now(),
        })?;
        let from = current.clone();
        if let Some(o) = &observed {
            current = o.clone();
        }
        if result == Outcome::Applied {
            planner.record(&from, &target);
        }
        WandererTransition {
            step,
            from: &from,
            to: &target,
            observed: observed.as_ref(),
            result,
            error: error.as_deref(),
            duration,
        }
        .emit(metrics);
        publish_coverage(planner, metrics);
        step += 1;
    }
    Ok(step - 1)
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

fn publish_coverage<P: Planner>(planner: &P, m: &WandererMetrics) {
    for (kind, ratio) in planner.coverage() {
        m.coverage
            .get_or_create(&KindLabel {
                kind: kind.to_owned(),
            })
            .set(ratio);
    }
}

/// Feeds the journalled, applied transitions back to the walk so coverage resumes too.
fn replay<P: Planner>(planner: &mut P, recovered: &Recovered) {
    let mut intents = std::collections::BTreeMap::new();
    for e in &recovered.entries {
        match e {
            Entry::Intent { step, from, to, .. } => {
                intents.insert(*step, (from, to));
            }
            Entry::Outcome {
                step,
                result: Outcome::Applied,
                ..
            } => {
                if let Some((from, to)) = intents.get(step) {
                    planner.record(from, to);
                }
            }
            _ => {}
        }
    }
}

/// Finds what is installed: an interrupted action is recorded as indeterminate, then observed.
async fn resume<A: Applier>(
    journal: &mut Journal,
    recovered: &Recovered,
    applier: &A,
    metrics: &WandererMetrics,
) -> Result<Install, RunError> {
    if let Some(Entry::Intent { step, from, to, .. }) = recovered.pending() {
        journal.append(&Entry::Outcome {
            step: *step,
            result: Outcome::Indeterminate,
            observed: None,
            error: Some("the sidecar stopped while this transition was in flight".into()),
            duration_s: 0.0,
            at: now(),
        })?;
        WandererTransition {
            step: *step,
            from,
            to,
            observed: None,
            result: Outcome::Indeterminate,
            error: None,
            duration: Duration::ZERO,
        }
        .emit(metrics);
        // The interrupted install may still be going: observe a settled system.
        applier.settle().await.map_err(RunError::Observe)?;
        let observed = applier.observe().await.map_err(RunError::Observe)?;
        journal.append(&Entry::Outcome {
            step: *step,
            result: Outcome::Observed,
            observed: Some(observed.clone()),
            error: None,
            duration_s: 0.0,
            at: now(),
        })?;
        WandererTransition {
            step: *step,
            from,
            to,
            observed: Some(&observed),
            result: Outcome::Observed,
            error: None,
            duration: Duration::ZERO,
        }
        .emit(metrics);
        return Ok(observed);
    }
    applier.settle().await.map_err(RunError::Observe)?;
    applier.observe().await.map_err(RunError::Observe)
}
