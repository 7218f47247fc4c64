//! Every action of the agent as a typed event, in vector's "internal events" style: each
//! event's `emit` writes the log line and updates the metrics, and no other code logs or counts
//! that action. The metric handles are private to this module, so counting elsewhere does not
//! compile; [`AgentMetrics`] and [`ProbeMetrics`] only register them. Label values are bounded
//! by the specs (group, slo), the verdicts and the probed Deployments; error text goes to the
//! log (and the report), never into a label.

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::time::Duration;

use crate::error::{Error, chain};
use crate::history::{Disruption, History, Judged, SloVerdict, Transition};
use crate::spec::{SpecErrors, Specs, Verdict};

mod baseline_events;
mod registry;
mod runtime_events;

pub use baseline_events::{
    BaselineAutoNotRecorded, BaselineAutoRecorded, BaselineLoaded, BaselineOfOtherSpecs,
};

pub use runtime_events::{
    ClockSteppedBack, SlotAnswered, StateWriteFailed, StateWriteRecovered, TaskDied,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SloLabels {
    group: String,
    slo: String,
}

fn slo_labels(group: &str, slo: &str) -> SloLabels {
    SloLabels {
        group: group.to_owned(),
        slo: slo.to_owned(),
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VerdictLabels {
    group: String,
    slo: String,
    verdict: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GroupLabel {
    group: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
enum ReloadResult {
    Success,
    Failure,
}

impl EncodeLabelValue for ReloadResult {
    fn encode(&self, e: &mut LabelValueEncoder<'_>) -> std::fmt::Result {
        use std::fmt::Write;
        e.write_str(match self {
            ReloadResult::Success => "success",
            ReloadResult::Failure => "failure",
        })
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReloadLabel {
    result: ReloadResult,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JudgedLabel {
    verdict: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProbeLabel {
    probe: String,
}

type F64Gauge = Gauge<f64, std::sync::atomic::AtomicU64>;

/// Why the webhook refused a post.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum WebhookRefusal {
    /// No or wrong `Authorization` (401).
    Unauthenticated,
    /// Body above the limit (413).
    TooLarge,
    /// `Content-Type` is not JSON (415).
    NotJson,
    /// Not an Alertmanager payload of version 4 (400).
    BadPayload,
    /// The inbox could not be written to the state dir (500; Alertmanager retries).
    NotSaved,
}

impl WebhookRefusal {
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookRefusal::Unauthenticated => "unauthenticated",
            WebhookRefusal::TooLarge => "too_large",
            WebhookRefusal::NotJson => "not_json",
            WebhookRefusal::BadPayload => "bad_payload",
            WebhookRefusal::NotSaved => "not_saved",
        }
    }
}

impl EncodeLabelValue for WebhookRefusal {
    fn encode(&self, e: &mut LabelValueEncoder<'_>) -> std::fmt::Result {
        use std::fmt::Write;
        e.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusalLabel {
    reason: WebhookRefusal,
}

/// The agent's metrics. Clones share their values; only the events below change them.
#[derive(Clone, Default)]
pub struct AgentMetrics {
    verdict: Family<VerdictLabels, Gauge>,
    changes: Family<SloLabels, Counter>,
    value: Family<SloLabels, F64Gauge>,
    baseline: Family<SloLabels, F64Gauge>,
    threshold: Family<SloLabels, F64Gauge>,
    current: Family<SloLabels, F64Gauge>,
    health: Family<SloLabels, Gauge>,
    last_error: Family<SloLabels, F64Gauge>,
    evaluations: Family<GroupLabel, Counter>,
    failures: Family<GroupLabel, Counter>,
    missed: Family<GroupLabel, Counter>,
    wanderer_failures: Counter,
    detected: Counter,
    judged: Family<JudgedLabel, Counter>,
    disruption_judged: Family<JudgedLabel, Counter>,
    chunks_judged: Family<JudgedLabel, Counter>,
    alerts_sent: Counter,
    alerts_dropped: Counter,
    alerts_queued: Gauge,
    reloads: Family<ReloadLabel, Counter>,
    annotation_failures: Counter,
    webhook_auth: Gauge,
    webhook_refused: Family<RefusalLabel, Counter>,
    webhook_alerts: Counter,
    webhook_dropped: Counter,
    inbox_alerts: Gauge,
    inbox_bytes: Gauge,
    baseline_slos: Gauge,
    runtime: runtime_events::RuntimeMetrics,
}

impl AgentMetrics {
    /// Sets the gauges of one SLO's verdict: the state set and the evidence's numbers.
    fn export_verdict(&self, v: &SloVerdict) {
        let e = &v.evidence;
        for verdict in Verdict::ALL {
            self.verdict
                .get_or_create(&VerdictLabels {
                    group: v.group.clone(),
                    slo: v.slo.clone(),
                    verdict: verdict.as_str().to_owned(),
                })
                .set(i64::from(verdict == e.verdict));
        }
        self.export_evidence(v);
    }

    fn export_evidence(&self, v: &SloVerdict) {
        let e = &v.evidence;
        let l = slo_labels(&v.group, &v.slo);
        self.value
            .get_or_create(&l)
            .set(e.value.unwrap_or(f64::NAN));
        self.baseline
            .get_or_create(&l)
            .set(e.baseline.unwrap_or(f64::NAN));
        self.threshold
            .get_or_create(&l)
            .set(e.threshold.unwrap_or(f64::NAN));
    }
}

/// A SIGHUP's reload of the specs: applied, or refused (the old specs stay, as Prometheus keeps
/// its old rules).
pub enum SpecsReloaded<'a> {
    Applied(&'a Specs),
    Refused(&'a SpecErrors),
}

impl SpecsReloaded<'_> {
    pub fn emit(&self, m: &AgentMetrics) {
        let result = match self {
            SpecsReloaded::Applied(s) => {
                tracing::info!(slos = s.slos.len(), hash = %s.hash, "specs reloaded");
                ReloadResult::Success
            }
            SpecsReloaded::Refused(e) => {
                tracing::error!(error = %e, "invalid specs on reload; keeping the previous ones");
                ReloadResult::Failure
            }
        };
        m.reloads.get_or_create(&ReloadLabel { result }).inc();
    }
}

/// A group's slot came: counted, with the slots it missed since its last evaluation.
pub struct GroupEvaluated<'a> {
    pub group: &'a str,
    pub missed: u64,
}

impl GroupEvaluated<'_> {
    pub fn emit(&self, m: &AgentMetrics) {
        let group = GroupLabel {
            group: self.group.to_owned(),
        };
        m.evaluations.get_or_create(&group).inc();
        if self.missed > 0 {
            tracing::warn!(group = %self.group, missed = self.missed, "evaluation slots missed");
            m.missed.get_or_create(&group).inc_by(self.missed);
        }
    }
}

/// An SLO's live value at its group's slot (`None`: the expression returned nothing).
pub struct SloEvaluated<'a> {
    pub group: &'a str,
    pub slo: &'a str,
    pub value: Option<f64>,
}

impl SloEvaluated<'_> {
    pub fn emit(&self, m: &AgentMetrics) {
        let l = slo_labels(self.group, self.slo);
        m.current
            .get_or_create(&l)
            .set(self.value.unwrap_or(f64::NAN));
        m.health.get_or_create(&l).set(1);
    }
}

/// Which query of an SLO failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueryPurpose {
    /// The live value at its group's slot.
    Live,
    /// A transition's judged window.
    Judge,
}

/// A query of an SLO failed: never pass, never stops the other SLOs.
pub struct SloQueryFailed<'a> {
    pub group: &'a str,
    pub slo: &'a str,
    pub purpose: QueryPurpose,
    /// Unix seconds.
    pub at: i64,
    pub error: &'a Error,
}

impl SloQueryFailed<'_> {
    pub fn emit(&self, m: &AgentMetrics) {
        tracing::warn!(
            group = %self.group,
            slo = %self.slo,
            purpose = ?self.purpose,
            error = %chain(self.error),
            "query failed"
        );
        let l = slo_labels(self.group, self.slo);
        if self.purpose == QueryPurpose::Live {
            m.current.get_or_create(&l).set(f64::NAN);
        }
        m.health.get_or_create(&l).set(0);
        m.last_error.get_or_create(&l).set(self.at as f64);
        m.failures
            .get_or_create(&GroupLabel {
                group: self.group.to_owned(),
            })
            .inc();
    }
}

/// The Wanderer's generation could not be read: nothing is assumed, pending windows wait.
pub struct WandererUnreadable<'a> {
    pub error: &'a Error,
}

impl WandererUnreadable<'_> {
    pub fn emit(&self, m: &AgentMetrics) {
        tracing::warn!(error = %chain(self.error), "cannot read the Wanderer's generation");
        m.wanderer_failures.inc();
    }
}

/// Prometheus answered a query for the first time: the agent is ready.
pub struct PrometheusAnswered;

impl PrometheusAnswered {
    pub fn emit(&self) {
        tracing::info!("prometheus answered: ready");
    }
}

/// The Wanderer's generation changed: a transition to judge once its windows pass.
pub struct TransitionDetected<'a> {
    pub transition: &'a Transition,
}

impl TransitionDetected<'_> {
    pub fn emit(&self, m: &AgentMetrics) {
        let t = self.transition;
        tracing::info!(
            event = "transition_detected",
            generation = t.generation,
            at = t.at,
            from_version = version(&t.from),
            to_version = version(&t.to),
            change = %upsoak_common::change::describe(&t.from, &t.to),
            "transition detected"
        );
        m.detected.inc();
    }
}

fn version(c: &std::collections::BTreeMap<String, String>) -> &str {
    c.get("version").map(String::as_str).unwrap_or("")
}

/// Every group has judged a transition: its overall verdict counted, each SLO's evidence
/// exported (the values change at each judgement even when the verdict does not).
pub struct TransitionJudged<'a> {
    pub transition: &'a Transition,
    pub judged: &'a Judged,
}

impl TransitionJudged<'_> {
    pub fn emit(&self, m: &AgentMetrics) {
        let (t, j) = (self.transition, self.judged);
        tracing::info!(
            event = "transition_judged",
            generation = t.generation,
            from_version = version(&t.from),
            to_version = version(&t.to),
            change = %upsoak_common::change::describe(&t.from, &t.to),
            verdict = j.verdict.as_str(),
            slos = j.slos.len(),
            "transition judged"
        );
        m.judged
            .get_or_create(&JudgedLabel {
                verdict: j.verdict.as_str().to_owned(),
            })
            .inc();
        for v in j.slos.values() {
            m.export_evidence(v);
        }
    }
}

/// A chunk of a transition's steady period was judged (module `chunks`): counted by verdict,
/// each SLO's evidence exported.
pub struct ChunkJudged<'a> {
    pub transition: &'a Transition,
    /// Its position among the transition's chunks (0: the first after the first window).
    pub index: usize,
    pub chunk: &'a Judged,
}

impl ChunkJudged<'_> {
    pub fn emit(&self, m: &AgentMetrics) {
        let (t, c) = (self.transition, self.chunk);
        tracing::info!(
            event = "steady_chunk_judged",
            generation = t.generation,
            from_version = version(&t.from),
            to_version = version(&t.to),
            chunk = self.index,
            window_start = c.window_start,
            window_end = c.window_end,
            verdict = c.verdict.as_str(),
            steady_verdict = t.steady_verdict().map(|v| v.as_str()).unwrap_or("pending"),
            "steady chunk judged"
        );
        m.chunks_judged
            .get_or_create(&JudgedLabel {
                verdict: c.verdict.as_str().to_owned(),
            })
            .inc();
        for v in c.slos.values() {
            m.export_evidence(v);
        }
    }
}

/// An SLO's verdict changed (or it was judged for the first time): the one place a verdict is
/// logged with its evidence and its state set exported.
pub struct SloJudged<'a> {
    pub transition: &'a Transition,
    pub verdict: &'a SloVerdict,
    /// Its verdict on the transition judged before; `None` on its first.
    pub previous: Option<Verdict>,
}

impl SloJudged<'_> {
    pub fn emit(&self, m: &AgentMetrics) {
        let v = self.verdict;
        let e = &v.evidence;
        tracing::info!(
            event = "slo_verdict",
            generation = self.transition.generation,
            from_version = version(&self.transition.from),
            to_version = version(&self.transition.to),
            change = %upsoak_common::change::describe(&self.transition.from, &self.transition.to),
            group = %v.group,
            slo = %v.slo,
            previous = self.previous.map_or("none", Verdict::as_str),
            verdict = e.verdict.as_str(),
            value = e.value.unwrap_or(f64::NAN),
            baseline = e.baseline.unwrap_or(f64::NAN),
            threshold = e.threshold.unwrap_or(f64::NAN),
            p_value = e.p_value.unwrap_or(f64::NAN),
            reason = %e.reason,
            "verdict changed"
        );
        m.changes.get_or_create(&slo_labels(&v.group, &v.slo)).inc();
        m.export_verdict(v);
    }
}

/// The history was read at start: the latest verdict of each SLO is exported again, so the
/// metrics agree with the history after a restart (no verdict changed, so no [`SloJudged`]).
pub struct HistoryRestored<'a> {
    pub history: &'a History,
}

impl HistoryRestored<'_> {
    pub fn emit(&self, m: &AgentMetrics) {
        let h = self.history;
        let mut latest = std::collections::BTreeMap::new();
        for t in &h.transitions {
            if let Some(d) = &t.disruption {
                latest.extend(d.slos.iter());
            }
            if let Some(j) = &t.judged {
                latest.extend(j.slos.iter());
            }
        }
        tracing::info!(
            transitions = h.transitions.len(),
            judged = h.transitions.iter().filter(|t| t.judged.is_some()).count(),
            last_generation = ?h.last_generation,
            "history restored"
        );
        for v in latest.values() {
            m.export_verdict(v);
        }
    }
}

/// Alertmanager accepted a batch of alerts.
pub struct AlertsDelivered {
    pub alerts: u64,
    /// Batches still waiting.
    pub queued: usize,
}

impl AlertsDelivered {
    pub fn emit(&self, m: &AgentMetrics) {
        tracing::debug!(
            alerts = self.alerts,
            queued = self.queued,
            "alerts delivered"
        );
        m.alerts_sent.inc_by(self.alerts);
        m.alerts_queued.set(self.queued as i64);
    }
}

/// Alerts wait in the retry queue: Alertmanager refused them or could not be reached (`why`),
/// or a failed delivery's backoff has not run out (`why` is `None`).
pub struct AlertsDeferred<'a> {
    pub why: Option<&'a str>,
    pub queued: usize,
}

impl AlertsDeferred<'_> {
    pub fn emit(&self, m: &AgentMetrics) {
        match self.why {
            Some(why) => {
                tracing::warn!(error = %why, queued = self.queued, "alerts not delivered; will retry")
            }
            None => tracing::debug!(queued = self.queued, "alerts wait for the backoff"),
        }
        m.alerts_queued.set(self.queued as i64);
    }
}

/// The retry queue was full: its oldest batch was dropped, counted, never lost silently.
pub struct AlertsDropped {
    pub queued: usize,
}

impl AlertsDropped {
    pub fn emit(&self, m: &AgentMetrics) {
        tracing::warn!(
            queued = self.queued,
            "alert retry queue full: dropped the oldest batch"
        );
        m.alerts_dropped.inc();
        m.alerts_queued.set(self.queued as i64);
    }
}

/// A Grafana annotation (a transition's region, or a verdict's point) failed.
pub struct AnnotationFailed<'a> {
    /// `transition` or `verdict`.
    pub kind: &'static str,
    pub generation: u64,
    pub error: &'a str,
}

impl AnnotationFailed<'_> {
    pub fn emit(&self, m: &AgentMetrics) {
        tracing::warn!(
            kind = self.kind,
            generation = self.generation,
            error = %self.error,
            "grafana annotation failed"
        );
        m.annotation_failures.inc();
    }
}

/// At start: whether the webhook requires credentials. Without, a loud warning: anyone who can
/// reach the port can fail transitions (and page whoever the agent's alerts reach).
pub struct WebhookAuthConfigured {
    pub enabled: bool,
}

impl WebhookAuthConfigured {
    pub fn emit(&self, m: &AgentMetrics) {
        match self.enabled {
            true => tracing::info!("webhook requires credentials"),
            false => tracing::warn!(
                "WEBHOOK UNAUTHENTICATED: anyone who can reach the agent's port can post alerts to {} and fail transitions; set --webhook-token-file or --webhook-basic-auth-file",
                crate::server::WEBHOOK_PATH
            ),
        }
        m.webhook_auth.set(i64::from(self.enabled));
    }
}

/// A post to the webhook was refused; nothing changed.
pub struct WebhookRefused<'a> {
    pub reason: WebhookRefusal,
    pub detail: &'a str,
}

impl WebhookRefused<'_> {
    pub fn emit(&self, m: &AgentMetrics) {
        tracing::warn!(
            reason = self.reason.as_str(),
            detail = %self.detail,
            "webhook post refused"
        );
        m.webhook_refused
            .get_or_create(&RefusalLabel {
                reason: self.reason,
            })
            .inc();
    }
}

/// A post's alerts were kept in the inbox (and written to the state dir).
pub struct WebhookAccepted<'a> {
    pub received: usize,
    pub inserted: &'a crate::webhook::inbox::Inserted,
}

impl WebhookAccepted<'_> {
    pub fn emit(&self, m: &AgentMetrics) {
        let i = self.inserted;
        tracing::debug!(
            received = self.received,
            kept = i.kept,
            dropped = i.dropped,
            inbox_alerts = i.alerts,
            inbox_bytes = i.bytes,
            "webhook alerts received"
        );
        if i.dropped > 0 {
            tracing::warn!(
                dropped = i.dropped,
                inbox_bytes = i.bytes,
                "webhook inbox full: dropped the oldest alerts"
            );
        }
        m.webhook_alerts.inc_by(self.received as u64);
        m.webhook_dropped.inc_by(i.dropped as u64);
        m.inbox_alerts.set(i.alerts as i64);
        m.inbox_bytes.set(i.bytes as i64);
    }
}

/// The webhook inbox was read from the state dir at start.
pub struct InboxRestored<'a> {
    pub path: &'a std::path::Path,
    pub alerts: usize,
}

impl InboxRestored<'_> {
    pub fn emit(&self, m: &AgentMetrics) {
        tracing::info!(path = %self.path.display(), alerts = self.alerts, "webhook inbox restored");
        m.inbox_alerts.set(self.alerts as i64);
    }
}

/// A transition's disruption window was judged: its verdict counted, the window and where its
/// start came from logged with each SLO's one number, and each SLO's evidence exported.
pub struct DisruptionJudged<'a> {
    pub transition: &'a Transition,
    pub disruption: &'a Disruption,
}

impl DisruptionJudged<'_> {
    pub fn emit(&self, m: &AgentMetrics) {
        let (t, d) = (self.transition, self.disruption);
        let values: Vec<String> = d
            .slos
            .iter()
            .map(|(k, v)| match v.evidence.value {
                Some(x) => format!("{k}={x}"),
                None => format!("{k}=none"),
            })
            .collect();
        tracing::info!(
            event = "disruption_judged",
            generation = t.generation,
            from_version = version(&t.from),
            to_version = version(&t.to),
            change = %upsoak_common::change::describe(&t.from, &t.to),
            verdict = d.verdict.as_str(),
            window_start = d.window_start,
            window_end = d.window_end,
            phases = %d.phases,
            values = %values.join(" "),
            "disruption window judged"
        );
        m.disruption_judged
            .get_or_create(&JudgedLabel {
                verdict: d.verdict.as_str().to_owned(),
            })
            .inc();
        for v in d.slos.values() {
            m.export_evidence(v);
        }
    }
}

/// The active probes' metrics (registered only when the probes run).
#[derive(Clone, Default)]
pub struct ProbeMetrics {
    success: Family<ProbeLabel, Gauge>,
    duration: Family<ProbeLabel, F64Gauge>,
}

impl ProbeMetrics {
    pub fn register(&self, r: &mut Registry) {
        r.register(
            "upsoak_agent_probe_success",
            "1 when the last probe succeeded (Deployment ready through the Kubernetes API)",
            self.success.clone(),
        );
        r.register(
            "upsoak_agent_probe_duration_seconds",
            "Duration of the last probe",
            self.duration.clone(),
        );
    }
}

/// One probe of a Deployment finished; `error` says why it is not ready when it is not.
pub struct ProbeFinished<'a> {
    pub probe: &'a str,
    pub ready: bool,
    pub duration: Duration,
    pub error: Option<&'a str>,
}

impl ProbeFinished<'_> {
    pub fn emit(&self, m: &ProbeMetrics) {
        match self.error {
            Some(e) => tracing::debug!(probe = %self.probe, error = %e, "probe failed"),
            None => tracing::debug!(probe = %self.probe, ready = self.ready, "probe finished"),
        }
        let l = ProbeLabel {
            probe: self.probe.to_owned(),
        };
        m.success.get_or_create(&l).set(i64::from(self.ready));
        m.duration
            .get_or_create(&l)
            .set(self.duration.as_secs_f64());
    }
}

/// The OpenMetrics text of a registry holding only `register`'s metrics, for tests that assert
/// what `/metrics` shows rather than what a struct holds.
#[cfg(test)]
pub(crate) fn encoded(register: impl FnOnce(&mut Registry)) -> String {
    let mut r = Registry::default();
    register(&mut r);
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &r).unwrap_or_default();
    out
}
