//! Where verdicts go: the agent's own `/metrics`, and Alertmanager (API v2).

use std::collections::{BTreeMap, VecDeque};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde_json::json;

use crate::eval::{SloVerdict, Transition};
use crate::spec::{Severity, Verdict};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SloLabels {
    pub group: String,
    pub slo: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VerdictLabels {
    pub group: String,
    pub slo: String,
    pub verdict: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GroupLabel {
    pub group: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JudgedLabel {
    pub verdict: String,
}

type F64Gauge = Gauge<f64, std::sync::atomic::AtomicU64>;

/// The agent's metrics; label values are bounded by the specs (group, slo) and the verdicts.
#[derive(Clone, Default)]
pub struct AgentMetrics {
    pub verdict: Family<VerdictLabels, Gauge>,
    pub value: Family<SloLabels, F64Gauge>,
    pub baseline: Family<SloLabels, F64Gauge>,
    pub threshold: Family<SloLabels, F64Gauge>,
    pub evaluations: Counter,
    pub failures: Family<GroupLabel, Counter>,
    pub missed: Family<GroupLabel, Counter>,
    pub current: Family<SloLabels, F64Gauge>,
    pub judged: Family<JudgedLabel, Counter>,
    pub alerts_sent: Counter,
    pub alerts_dropped: Counter,
    pub alerts_queued: Gauge,
    pub reloads: Family<ResultLabel, Counter>,
}

impl AgentMetrics {
    pub fn register(&self, r: &mut Registry) {
        r.register(
            "upsoak_agent_slo_verdict",
            "Latest verdict of each SLO as a state set (1 for the current verdict)",
            self.verdict.clone(),
        );
        r.register(
            "upsoak_agent_slo_value",
            "Mean of the latest judged window",
            self.value.clone(),
        );
        r.register(
            "upsoak_agent_slo_current",
            "Value of the SLO's expression at its group's latest evaluation slot",
            self.current.clone(),
        );
        r.register(
            "upsoak_agent_slo_baseline",
            "Mean of the SLO's baseline",
            self.baseline.clone(),
        );
        r.register(
            "upsoak_agent_slo_threshold",
            "Threshold the baseline criterion sets",
            self.threshold.clone(),
        );
        r.register(
            "upsoak_agent_evaluations",
            "Group evaluations run (one per group per slot)",
            self.evaluations.clone(),
        );
        r.register(
            "upsoak_agent_rule_evaluation_failures",
            "Failed queries, by group",
            self.failures.clone(),
        );
        r.register(
            "upsoak_agent_missed_evaluations",
            "Evaluation slots of each group skipped because the agent was busy or suspended",
            self.missed.clone(),
        );
        r.register(
            "upsoak_agent_transitions_judged",
            "Transitions judged, by overall verdict",
            self.judged.clone(),
        );
        r.register(
            "upsoak_agent_alerts_sent",
            "Alerts accepted by Alertmanager",
            self.alerts_sent.clone(),
        );
        r.register(
            "upsoak_agent_alerts_dropped",
            "Alerts dropped because the retry queue was full",
            self.alerts_dropped.clone(),
        );
        r.register(
            "upsoak_agent_alerts_queued",
            "Alert batches waiting for a retry",
            self.alerts_queued.clone(),
        );
    }
}

/// A verdict of one SLO changed: the one place it is logged and exported.
pub struct SloVerdictChanged<'a> {
    pub transition: &'a Transition,
    pub verdict: &'a SloVerdict,
}

impl SloVerdictChanged<'_> {
    pub fn emit(&self, m: &AgentMetrics) {
        let v = self.verdict;
        let e = &v.evidence;
        tracing::info!(
            event = "slo_verdict",
            generation = self.transition.generation,
            from_version = self.transition.from.get("version").map(String::as_str).unwrap_or(""),
            to_version = self.transition.to.get("version").map(String::as_str).unwrap_or(""),
            group = %v.group,
            slo = %v.slo,
            verdict = e.verdict.as_str(),
            value = e.value.unwrap_or(f64::NAN),
            baseline = e.baseline.unwrap_or(f64::NAN),
            threshold = e.threshold.unwrap_or(f64::NAN),
            p_value = e.p_value.unwrap_or(f64::NAN),
            reason = %e.reason,
            "verdict"
        );
        for verdict in Verdict::ALL {
            m.verdict
                .get_or_create(&VerdictLabels {
                    group: v.group.clone(),
                    slo: v.slo.clone(),
                    verdict: verdict.as_str().to_owned(),
                })
                .set(i64::from(verdict == e.verdict));
        }
        let l = SloLabels {
            group: v.group.clone(),
            slo: v.slo.clone(),
        };
        m.value.get_or_create(&l).set(e.value.unwrap_or(f64::NAN));
        m.baseline
            .get_or_create(&l)
            .set(e.baseline.unwrap_or(f64::NAN));
        m.threshold
            .get_or_create(&l)
            .set(e.threshold.unwrap_or(f64::NAN));
    }
}

fn severity(s: Severity) -> &'static str {
    match s {
        Severity::Info => "info",
        Severity::Warning => "warning",
        Severity::Critical => "critical",
    }
}

/// An alert as Alertmanager's API v2 takes it.
pub fn alert(
    t: &Transition,
    v: &SloVerdict,
    firing: bool,
    now_rfc3339: &str,
    ends_rfc3339: &str,
) -> serde_json::Value {
    let e = &v.evidence;
    let mut a = json!({
        "labels": {
            "alertname": "UpsoakSloViolation",
            "slo": v.slo,
            "group": v.group,
            "severity": severity(v.severity),
            "from_version": t.from.get("version").cloned().unwrap_or_default(),
            "to_version": t.to.get("version").cloned().unwrap_or_default(),
        },
        "annotations": {
            "summary": format!("SLO {}/{} failed after the transition to generation {}", v.group, v.slo, t.generation),
            "description": e.reason,
            "query": v.query,
            "value": e.value.map(|x| x.to_string()).unwrap_or_default(),
            "baseline": e.baseline.map(|x| x.to_string()).unwrap_or_default(),
            "threshold": e.threshold.map(|x| x.to_string()).unwrap_or_default(),
            "from_gates": t.from.get("feature_gates").cloned().unwrap_or_default(),
            "to_gates": t.to.get("feature_gates").cloned().unwrap_or_default(),
        },
        "startsAt": now_rfc3339,
    });
    if !firing {
        a["endsAt"] = json!(ends_rfc3339);
    }
    a
}

/// Sends alert batches to Alertmanager, keeping failed batches in a bounded queue for retry;
/// a batch that does not fit is counted as dropped, never lost silently.
pub struct AlertSender {
    url: String,
    http: reqwest::Client,
    queue: VecDeque<serde_json::Value>,
    capacity: usize,
    /// Consecutive failed deliveries, and when the next attempt may be made: 1 s, 2 s, 4 s …
    /// up to 60 s after each failure, so a down Alertmanager is not hammered.
    failures: u32,
    next_try: Option<std::time::Instant>,
}

/// The wait after `failures` consecutive failed deliveries.
pub fn backoff(failures: u32) -> std::time::Duration {
    std::time::Duration::from_secs(1u64 << failures.saturating_sub(1).min(6))
        .min(std::time::Duration::from_secs(60))
}

impl AlertSender {
    pub fn new(url: &str, capacity: usize) -> AlertSender {
        AlertSender {
            url: url.trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
            queue: VecDeque::new(),
            capacity,
            failures: 0,
            next_try: None,
        }
    }

    fn failed(&mut self) {
        self.failures += 1;
        self.next_try = Some(std::time::Instant::now() + backoff(self.failures));
    }

    /// Batches waiting for delivery.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Queues `alerts` and tries to deliver everything queued, oldest first, unless a failed
    /// delivery's backoff has not yet run out.
    pub async fn send(&mut self, alerts: Vec<serde_json::Value>, m: &AgentMetrics) {
        if !alerts.is_empty() {
            if self.queue.len() >= self.capacity {
                self.queue.pop_front();
                m.alerts_dropped.inc();
                tracing::warn!("alert retry queue full: dropped the oldest batch");
            }
            self.queue.push_back(serde_json::Value::Array(alerts));
        }
        if self.next_try.is_some_and(|t| std::time::Instant::now() < t) {
            m.alerts_queued.set(self.queue.len() as i64);
            return;
        }
        while let Some(batch) = self.queue.front() {
            let n = batch.as_array().map_or(0, Vec::len) as u64;
            match self
                .http
                .post(format!("{}/api/v2/alerts", self.url))
                .json(batch)
                .send()
                .await
            {
                Ok(r) if r.status().is_success() => {
                    m.alerts_sent.inc_by(n);
                    self.queue.pop_front();
                    self.failures = 0;
                    self.next_try = None;
                }
                Ok(r) => {
                    tracing::warn!(status = %r.status(), "alertmanager refused alerts; will retry");
                    self.failed();
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "alertmanager unreachable; will retry");
                    self.failed();
                    break;
                }
            }
        }
        m.alerts_queued.set(self.queue.len() as i64);
    }
}

/// Alerts of every failed SLO of the latest judged transition of each SLO: firing ones, and
/// resolved ones for SLOs whose latest verdict is no longer fail.
pub fn current_alerts(transitions: &[Transition], now: &str) -> Vec<serde_json::Value> {
    let mut latest: BTreeMap<String, (&Transition, &SloVerdict)> = BTreeMap::new();
    let mut ever_failed: BTreeMap<String, (&Transition, &SloVerdict)> = BTreeMap::new();
    for t in transitions {
        if let Some(j) = &t.judged {
            for (k, v) in &j.slos {
                latest.insert(k.clone(), (t, v));
                if v.evidence.verdict == Verdict::Fail {
                    ever_failed.insert(k.clone(), (t, v));
                }
            }
        }
    }
    let mut out = Vec::new();
    for (k, (t, v)) in &ever_failed {
        let still = latest
            .get(k)
            .is_some_and(|(_, lv)| lv.evidence.verdict == Verdict::Fail);
        out.push(alert(t, v, still, now, now));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_a_minute() {
        let secs: Vec<u64> = (1..=9).map(|f| backoff(f).as_secs()).collect();
        assert_eq!(secs, vec![1, 2, 4, 8, 16, 32, 60, 60, 60]);
    }

    #[tokio::test]
    async fn a_down_alertmanager_is_retried_with_backoff_and_overflow_is_counted() {
        // Nothing listens on port 1: every delivery fails at once.
        let mut s = AlertSender::new("http://127.0.0.1:1", 2);
        let m = AgentMetrics::default();
        s.send(vec![json!({"labels": {"alertname": "A"}})], &m)
            .await;
        assert_eq!((s.queued(), s.failures), (1, 1));
        // Within the backoff: queued, not attempted.
        s.send(vec![json!({"labels": {"alertname": "B"}})], &m)
            .await;
        assert_eq!((s.queued(), s.failures), (2, 1));
        // Past capacity: the oldest batch is dropped and counted, never silently.
        s.send(vec![json!({"labels": {"alertname": "C"}})], &m)
            .await;
        assert_eq!(s.queued(), 2);
        assert_eq!(m.alerts_dropped.get(), 1);
        assert_eq!(m.alerts_queued.get(), 2);
    }
}
