//! The Wanderer's events and the metrics they feed: each action is one typed event whose
//! `emit` writes the log line and updates the metrics. The metric handles are private to this
//! module, so nothing else can count.

use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use upsoak_agones::release::Install;
use upsoak_common::names::wanderer as names;

use super::DueSource;
use super::journal::{Outcome, Phases};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TransitionLabels {
    result: &'static str,
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConfigLabels {
    version: String,
    feature_gates: String,
    tunables: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailedTargetLabels {
    version: String,
    feature_gates: String,
    tunables: String,
    kind: &'static str,
}

// The helm applier's own metrics: for people and alerts; the agent does not query them, so they
// are named here rather than in `upsoak_common::names`.
/// Counter: releases found left `pending-*` by a helm that died mid-operation, by the `policy`
/// applied and its `result` (`rolled_back`, `failed`, `cleared`: it finished while waited for).
const STUCK_RELEASES: &str = "upsoak_wanderer_stuck_releases";
/// Counter: applies stopped at `apply_timeout` (the process group signalled), by last `signal`.
const APPLY_KILLS: &str = "upsoak_wanderer_apply_kills";
/// Gauge: 1 once the Wanderer stopped on an applier failure while the Producer goes on.
const HALTED: &str = "upsoak_wanderer_halted";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StuckLabels {
    policy: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SignalLabel {
    signal: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

/// The Wanderer's metrics; only the events below touch them.
#[derive(Clone)]
pub struct WandererMetrics {
    running: Gauge,
    generation: Gauge,
    config_info: Family<ConfigLabels, Gauge>,
    transitions: Family<TransitionLabels, Counter>,
    last_failed_target: Family<FailedTargetLabels, Gauge>,
    duration: Histogram,
    last_transition: Gauge<f64, AtomicU64>,
    coverage: Family<KindLabel, Gauge<f64, AtomicU64>>,
    next_transition: Gauge<f64, AtomicU64>,
    journal_lines_dropped: Counter,
    journal_compactions: Counter,
    stuck_releases: Family<StuckLabels, Counter>,
    apply_kills: Family<SignalLabel, Counter>,
    halted: Gauge,
    apply_generation: Gauge,
    apply_started: Gauge<f64, AtomicU64>,
    apply_finished: Gauge<f64, AtomicU64>,
    journal_write_failures: Counter,
}

impl Default for WandererMetrics {
    fn default() -> Self {
        WandererMetrics {
            running: Gauge::default(),
            generation: Gauge::default(),
            config_info: Family::default(),
            transitions: Family::default(),
            last_failed_target: Family::default(),
            duration: Histogram::new([
                1.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0,
            ]),
            last_transition: Gauge::default(),
            journal_write_failures: Counter::default(),
            coverage: Family::default(),
            next_transition: Gauge::default(),
            journal_lines_dropped: Counter::default(),
            journal_compactions: Counter::default(),
            stuck_releases: Family::default(),
            apply_kills: Family::default(),
            halted: Gauge::default(),
            apply_generation: Gauge::default(),
            apply_started: Gauge::default(),
            apply_finished: Gauge::default(),
        }
    }
}

impl WandererMetrics {
    /// Registers every Wanderer metric in `r`.
    pub fn register(&self, r: &mut Registry) {
        r.register(
            "upsoak_wanderer_journal_write_failures",
            "Times the journal could not be written (the walk is retried with backoff; the Producer goes on)",
            self.journal_write_failures.clone(),
        );
        r.register(
            names::RUNNING,
            "1 while the Wanderer's loop runs (after its first observation), 0 once it stopped",
            self.running.clone(),
        );
        r.register(
            names::GENERATION,
            "Steps of the walk taken so far; changes at every transition",
            self.generation.clone(),
        );
        r.register(
            names::CONFIG_INFO,
            "The configuration observed installed (value 1)",
            self.config_info.clone(),
        );
        // The results the default `transition-success` SLO reads exist from the start at 0, so
        // `increase()` sees the first transition (a series born at 1 shows no increase).
        let _ = self.transitions.get_or_create(&TransitionLabels {
            result: "applied",
            kind: "none",
        });
        for kind in crate::wanderer::apply::ApplyError::KINDS {
            let _ = self.transitions.get_or_create(&TransitionLabels {
                result: "failed",
                kind,
            });
        }
        r.register(
            names::TRANSITIONS,
            "Transitions by observed result (applied, failed, indeterminate, observed) and failure kind (none when it did not fail)",
            self.transitions.clone(),
        );
        r.register(
            names::LAST_FAILED_TARGET_INFO,
            "The target of the last failed transition and why it failed (value 1; one series)",
            self.last_failed_target.clone(),
        );
        r.register(
            names::TRANSITION_DURATION_SECONDS,
            "Time from a transition's intent to its observed outcome",
            self.duration.clone(),
        );
        r.register(
            names::LAST_TRANSITION_TIMESTAMP_SECONDS,
            "Unix time of the last transition's outcome",
            self.last_transition.clone(),
        );
        r.register(
            names::COVERAGE_RATIO,
            "Covered share of the pairs of each kind (version_pairs, gate_version, gate_pairs)",
            self.coverage.clone(),
        );
        r.register(
            names::NEXT_TRANSITION_TIMESTAMP_SECONDS,
            "Unix time the next transition is scheduled for",
            self.next_transition.clone(),
        );
        r.register(
            names::JOURNAL_LINES_DROPPED,
            "Torn last journal lines dropped on open (a crash hit mid-write)",
            self.journal_lines_dropped.clone(),
        );
        r.register(
            "upsoak_wanderer_journal_compactions",
            "Journal compactions on open (a snapshot of the applied transitions plus the tail)",
            self.journal_compactions.clone(),
        );
        r.register(
            STUCK_RELEASES,
            "Releases found left pending by a helm that died mid-operation, by policy and result",
            self.stuck_releases.clone(),
        );
        r.register(
            APPLY_KILLS,
            "Applies stopped at apply_timeout (helm's process group signalled), by the last signal",
            self.apply_kills.clone(),
        );
        r.register(
            HALTED,
            "1 once the Wanderer stopped on an applier failure while the Producer goes on",
            self.halted.clone(),
        );
        r.register(
            names::APPLY_GENERATION,
            "The generation the apply timestamps describe (the value the generation takes when that transition goes live)",
            self.apply_generation.clone(),
        );
        r.register(
            names::APPLY_STARTED_TIMESTAMP_SECONDS,
            "Unix time the apply of transition apply_generation started (before helm or the simulator was called)",
            self.apply_started.clone(),
        );
        r.register(
            names::APPLY_FINISHED_TIMESTAMP_SECONDS,
            "Unix time the apply of transition apply_generation returned; below the started time while it is in progress",
            self.apply_finished.clone(),
        );
    }
}

impl WandererMetrics {
    /// The generation exported now (steps taken): the Producer's canaries read it to know a
    /// transition went live during their life.
    pub fn generation(&self) -> u64 {
        u64::try_from(self.generation.get()).unwrap_or(0)
    }
}

/// `A=1&B=x`: an install's tunables as one label value.
fn tunables_label(c: &Install) -> String {
    c.tunables
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// An install as the labels of the info metric: what the agent reads back, so the sidecar's
/// log and the agent describe a change from the same thing.
fn config_labels(c: &Install) -> std::collections::BTreeMap<String, String> {
    std::collections::BTreeMap::from([
        (names::VERSION_LABEL.to_owned(), c.version.clone()),
        (names::FEATURE_GATES_LABEL.to_owned(), c.gate_query()),
        (names::TUNABLES_LABEL.to_owned(), tunables_label(c)),
    ])
}

/// What changes from `from` to `to`, in one line ([`upsoak_common::change::describe`]).
pub fn change(from: &Install, to: &Install) -> String {
    upsoak_common::change::describe(&config_labels(from), &config_labels(to))
}

fn set_config(m: &WandererMetrics, c: &Install) {
    m.config_info.clear();
    m.config_info
        .get_or_create(&ConfigLabels {
            version: c.version.clone(),
            feature_gates: c.gate_query(),
            tunables: tunables_label(c),
        })
        .set(1);
}

fn set_generation(m: &WandererMetrics, step: u64) {
    m.generation.set(i64::try_from(step).unwrap_or(i64::MAX));
}

fn unix_s(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

/// Sets the apply gauges from a transition's journalled phases: the generation and start
/// together (so the pair always describes one transition), the finish only once it happened.
fn set_phases(m: &WandererMetrics, step: u64, p: &Phases) {
    if let Some(started) = p.started {
        m.apply_generation
            .set(i64::try_from(step).unwrap_or(i64::MAX));
        m.apply_started.set(unix_s(started));
    }
    if let Some(finished) = p.finished {
        m.apply_finished.set(unix_s(finished));
    }
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

/// The loop observed what is installed and is about to walk: readiness follows this event.
#[derive(Debug)]
pub struct WandererStarted<'a> {
    pub seed: u64,
    pub strategy: &'a str,
    pub space: &'a str,
    pub journal: &'a Path,
    pub period: Duration,
    /// Steps already taken (journalled), 0 on a fresh journal.
    pub generation: u64,
    pub observed: &'a Install,
    /// The last journalled transition's step and phases, restored into the apply gauges (and
    /// the last-transition timestamp) so a restart does not lose them.
    pub last: Option<(u64, Phases)>,
}

impl WandererStarted<'_> {
    pub fn emit(&self, m: &WandererMetrics) {
        tracing::info!(
            event = "wanderer_started",
            seed = self.seed,
            strategy = self.strategy,
            space = self.space,
            journal = %self.journal.display(),
            period_s = self.period.as_secs_f64(),
            generation = self.generation,
            observed_version = %self.observed.version,
            "wanderer started"
        );
        m.running.set(1);
        set_generation(m, self.generation);
        set_config(m, self.observed);
        if let Some((step, phases)) = &self.last {
            set_phases(m, *step, phases);
            if let Some(observed) = phases.observed {
                m.last_transition.set(unix_s(observed));
            }
        }
    }
}

/// The loop ended: at `max_steps` or on shutdown.
#[derive(Debug)]
pub struct WandererStopped {
    /// The last step taken.
    pub steps: u64,
    /// `max_steps` or `shutdown`.
    pub reason: &'static str,
}

impl WandererStopped {
    pub fn emit(&self, m: &WandererMetrics) {
        tracing::info!(
            event = "wanderer_stopped",
            steps = self.steps,
            reason = self.reason,
            "wanderer stopped"
        );
        m.running.set(0);
    }
}

/// The next transition is due at `due_unix_ms`, `wait` from now; after a restart the due time
/// is the journalled one.
#[derive(Debug)]
pub struct TransitionScheduled {
    pub step: u64,
    /// When the step is due, in milliseconds since the epoch (jitter included).
    pub due_unix_ms: u64,
    /// What is left of it now.
    pub wait: Duration,
    /// Whether the due time is new, kept from the journal, or rescheduled.
    pub source: DueSource,
}

impl TransitionScheduled {
    pub fn emit(&self, m: &WandererMetrics) {
        tracing::info!(
            event = "transition_scheduled",
            step = self.step,
            due_unix_ms = self.due_unix_ms,
            wait_s = self.wait.as_secs_f64(),
            source = self.source.as_str(),
            "transition scheduled"
        );
        m.next_transition.set(self.due_unix_ms as f64 / 1000.0);
    }
}

/// The apply of step `step` begins: journalled as its intent, exported before helm or the
/// simulator is called. `apply_finished` keeps the previous transition's value until
/// [`ApplyFinished`], so finished < started reads as "in progress".
#[derive(Debug)]
pub struct ApplyStarted<'a> {
    pub step: u64,
    /// What is installed before the apply.
    pub from: &'a Install,
    pub to: &'a Install,
    pub started_unix_ms: u64,
}

impl ApplyStarted<'_> {
    pub fn emit(&self, m: &WandererMetrics) {
        tracing::info!(
            event = "apply_started",
            step = self.step,
            change = %change(self.from, self.to),
            to_version = %self.to.version,
            to_gates = %self.to.gate_query(),
            started_unix_ms = self.started_unix_ms,
            "apply started"
        );
        set_phases(
            m,
            self.step,
            &Phases {
                started: Some(self.started_unix_ms),
                ..Phases::default()
            },
        );
    }
}

/// The apply of step `step` returned (helm exited, the simulator's install window closed, or
/// the apply timed out), before what is installed is observed.
#[derive(Debug)]
pub struct ApplyFinished {
    pub step: u64,
    pub finished_unix_ms: u64,
    /// From the apply's start.
    pub took: Duration,
    /// `ok`, `timeout`, or the apply error's kind.
    pub result: &'static str,
}

impl ApplyFinished {
    pub fn emit(&self, m: &WandererMetrics) {
        tracing::info!(
            event = "apply_finished",
            step = self.step,
            finished_unix_ms = self.finished_unix_ms,
            took_s = self.took.as_secs_f64(),
            result = self.result,
            "apply finished"
        );
        m.apply_finished.set(unix_s(self.finished_unix_ms));
    }
}

/// A transition's outcome: the one place it is logged and counted. The loop journals the same
/// fields in the same call (`record_outcome`), so the log and the journal cannot disagree.
#[derive(Debug)]
pub struct TransitionOutcome<'a> {
    pub step: u64,
    pub from: &'a Install,
    pub to: &'a Install,
    pub observed: Option<&'a Install>,
    pub result: Outcome,
    /// Why it failed, bounded (`none` when it did not): an `ApplyError::kind`, `timeout`,
    /// `unobserved`, `mismatch` or `interrupted`.
    pub kind: &'static str,
    pub error: Option<&'a str>,
    pub duration: Duration,
    /// When its apply started, returned and was observed; journalled with it.
    pub phases: Phases,
}

impl TransitionOutcome<'_> {
    pub fn emit(&self, m: &WandererMetrics) {
        tracing::info!(
            event = "wanderer_transition",
            step = self.step,
            change = %change(self.from, self.to),
            from_version = %self.from.version,
            to_version = %self.to.version,
            to_gates = %self.to.gate_query(),
            result = self.result.as_str(),
            kind = self.kind,
            observed_version = self.observed.map(|o| o.version.as_str()).unwrap_or(""),
            error = self.error.unwrap_or(""),
            duration_s = self.duration.as_secs_f64(),
            started_unix_ms = self.phases.started,
            finished_unix_ms = self.phases.finished,
            observed_unix_ms = self.phases.observed,
            "transition"
        );
        m.transitions
            .get_or_create(&TransitionLabels {
                result: self.result.as_str(),
                kind: self.kind,
            })
            .inc();
        m.duration.observe(self.duration.as_secs_f64());
        set_generation(m, self.step);
        set_phases(m, self.step, &self.phases);
        m.last_transition
            .set(self.phases.observed.map_or_else(unix_now, unix_s));
        if let Some(o) = self.observed {
            set_config(m, o);
        }
        if self.result == Outcome::Failed {
            // One series: the last failure's target, never a growing set.
            m.last_failed_target.clear();
            m.last_failed_target
                .get_or_create(&FailedTargetLabels {
                    version: self.to.version.clone(),
                    feature_gates: self.to.gate_query(),
                    tunables: tunables_label(self.to),
                    kind: self.kind,
                })
                .set(1);
        }
    }
}

/// A release was found left `pending-*` and the `on_stuck` policy handled it (or it finished
/// while waited for). The loop journals the same fields.
#[derive(Debug)]
pub struct ReleaseRecovered<'a> {
    pub step: u64,
    pub recovery: &'a super::apply::Recovery,
}

impl ReleaseRecovered<'_> {
    pub fn emit(&self, m: &WandererMetrics) {
        let r = self.recovery;
        tracing::warn!(
            event = "release_recovered",
            step = self.step,
            status = %r.status,
            revision = r.revision,
            policy = r.policy,
            result = r.result,
            waited_s = r.waited.as_secs_f64(),
            detail = %r.detail,
            "a release left pending was handled"
        );
        m.stuck_releases
            .get_or_create(&StuckLabels {
                policy: r.policy,
                result: r.result,
            })
            .inc();
    }
}

/// An apply ran past `apply_timeout` and its process group was stopped.
#[derive(Debug)]
pub struct ApplyKilled<'a> {
    pub step: u64,
    pub command: &'a str,
    pub pgid: u32,
    /// The last signal needed: `TERM` or `KILL`.
    pub signal: &'static str,
    pub after: Duration,
}

impl ApplyKilled<'_> {
    pub fn emit(&self, m: &WandererMetrics) {
        tracing::warn!(
            event = "apply_killed",
            step = self.step,
            command = self.command,
            pgid = self.pgid,
            signal = self.signal,
            after_s = self.after.as_secs_f64(),
            "the apply ran past its timeout; its process group was stopped"
        );
        m.apply_kills
            .get_or_create(&SignalLabel {
                signal: self.signal,
            })
            .inc();
    }
}

/// The Wanderer stopped on an applier failure; the sidecar keeps producing load.
#[derive(Debug)]
pub struct WandererHalted<'a> {
    pub reason: &'a str,
}

impl WandererHalted<'_> {
    pub fn emit(&self, m: &WandererMetrics) {
        tracing::error!(
            event = "wanderer_halted",
            reason = self.reason,
            "the Wanderer stopped on an applier failure; the Producer goes on"
        );
        m.running.set(0);
        m.halted.set(1);
    }
}

/// The journal could not be written (a full disk): the walk stops and is started again from
/// the journal after `retry_in`; the Producer goes on, and `/healthz` shows the warning.
pub struct JournalWriteFailed<'a> {
    pub error: &'a str,
    pub failures: u32,
    pub retry_in: std::time::Duration,
}

impl JournalWriteFailed<'_> {
    pub fn emit(&self, m: &WandererMetrics) {
        tracing::error!(
            event = "journal_write_failed",
            error = self.error,
            failures = self.failures,
            retry_in = ?self.retry_in,
            "cannot write the journal; the walk resumes from it after the backoff, the Producer goes on"
        );
        m.running.set(0);
        m.journal_write_failures.inc();
    }
}

/// The cluster's Kubernetes version was read at start and the space cut to the releases that
/// support it (or it could not be read, and the space is walked whole).
#[derive(Debug)]
pub struct ClusterVersionChecked<'a> {
    /// `1.34`, or `None` when it could not be read.
    pub kubernetes: Option<&'a str>,
    /// Why it could not be read.
    pub error: Option<&'a str>,
    /// Releases kept and dropped.
    pub kept: &'a [String],
    pub dropped: &'a [String],
}

impl ClusterVersionChecked<'_> {
    pub fn emit(&self, _m: &WandererMetrics) {
        match self.kubernetes {
            Some(k) => tracing::info!(
                event = "cluster_version_checked",
                kubernetes = k,
                kept = %self.kept.join(","),
                dropped = %self.dropped.join(","),
                "walking only the releases that support the cluster's Kubernetes"
            ),
            None => tracing::warn!(
                event = "cluster_version_checked",
                error = self.error.unwrap_or(""),
                "cannot read the cluster's version: the space's Kubernetes ranges are not checked"
            ),
        }
    }
}

/// Opening the journal dropped a torn last line.
#[derive(Debug)]
pub struct JournalLineDropped<'a> {
    pub path: &'a Path,
    pub bytes: usize,
}

impl JournalLineDropped<'_> {
    pub fn emit(&self, m: &WandererMetrics) {
        tracing::warn!(
            event = "journal_line_dropped",
            path = %self.path.display(),
            bytes = self.bytes,
            "dropped a torn last journal line"
        );
        m.journal_lines_dropped.inc();
    }
}

/// The journal was past its size on open and was compacted (a snapshot plus the tail).
pub struct JournalCompacted<'a> {
    pub path: &'a Path,
    pub before: usize,
    pub after: usize,
}

impl JournalCompacted<'_> {
    pub fn emit(&self, m: &WandererMetrics) {
        tracing::info!(
            event = "journal_compacted",
            path = %self.path.display(),
            bytes_before = self.before,
            bytes_after = self.after,
            "journal compacted"
        );
        m.journal_compactions.inc();
    }
}

/// The walk's pairwise coverage, after a transition (or on start, replayed from the journal).
#[derive(Debug)]
pub struct CoverageChanged<'a> {
    pub ratios: &'a [(&'static str, f64)],
}

impl CoverageChanged<'_> {
    pub fn emit(&self, m: &WandererMetrics) {
        for (kind, ratio) in self.ratios {
            tracing::debug!(event = "coverage_changed", kind, ratio, "coverage");
            m.coverage.get_or_create(&KindLabel { kind }).set(*ratio);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_reads_a_transition_as_what_it_changed() {
        let from = Install {
            version: "1.58.0".into(),
            feature_gates: [
                ("SidecarContainers".into(), true),
                ("WasmAutoscaler".into(), false),
            ]
            .into(),
            tunables: [(
                "allocationBatchWaitTime".into(),
                upsoak_agones::release::TunableValue::Str("500ms".into()),
            )]
            .into(),
        };
        let to = Install {
            version: "1.59.0".into(),
            feature_gates: [
                ("SidecarContainers".into(), false),
                ("WasmAutoscaler".into(), true),
            ]
            .into(),
            tunables: [(
                "allocationBatchWaitTime".into(),
                upsoak_agones::release::TunableValue::Str("100ms".into()),
            )]
            .into(),
        };
        assert_eq!(
            change(&from, &to),
            "1.58.0 → 1.59.0  +WasmAutoscaler −SidecarContainers  allocationBatchWaitTime 500ms→100ms"
        );
    }

    #[test]
    fn config_info_labels_are_the_names_the_monitor_reads() {
        let m = WandererMetrics::default();
        let mut r = Registry::default();
        m.register(&mut r);
        set_config(
            &m,
            &Install {
                version: "1.60.0".into(),
                ..Install::default()
            },
        );
        let text = upsoak_common::exposition::encode(
            &r,
            upsoak_common::exposition::Format::PrometheusText,
        )
        .unwrap();
        let want = format!(
            "{}{{{}=\"1.60.0\",{}=\"\",{}=\"\"}} 1",
            names::CONFIG_INFO,
            names::VERSION_LABEL,
            names::FEATURE_GATES_LABEL,
            names::TUNABLES_LABEL
        );
        assert!(text.contains(&want), "{want} in {text}");
    }

    #[test]
    fn the_transition_results_the_slo_reads_exist_at_zero_before_the_first_transition() {
        let m = WandererMetrics::default();
        let mut r = Registry::default();
        m.register(&mut r);
        let text = upsoak_common::exposition::encode(
            &r,
            upsoak_common::exposition::Format::PrometheusText,
        )
        .unwrap();
        for want in [
            "upsoak_wanderer_transitions_total{result=\"applied\",kind=\"none\"} 0",
            "upsoak_wanderer_transitions_total{result=\"failed\",kind=\"rejected\"} 0",
            "upsoak_wanderer_transitions_total{result=\"failed\",kind=\"stuck\"} 0",
        ] {
            assert!(text.contains(want), "{want} in {text}");
        }
    }
}
