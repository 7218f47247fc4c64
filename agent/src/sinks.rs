//! Where verdicts go besides `/metrics`: alerts to Alertmanager (API v2), with a bounded retry
//! queue and backoff, delivered by a task beside the loop ([`AlertQueue`]) so a slow or hung
//! Alertmanager never delays judging.

use std::collections::{BTreeMap, VecDeque};

use serde_json::json;

use crate::events::{AgentMetrics, AlertsDeferred, AlertsDelivered, AlertsDropped};
use crate::history::{SloVerdict, Transition};
use crate::http::Timeouts;
use crate::spec::{Severity, SloWindow, Verdict};

/// The `alertname` of the agent's own alerts (and of the Prometheus rules it exports); the
/// webhook leaves alerts of this name out of the user's alerts it folds into verdicts.
pub const ALERT_NAME: &str = "UpsoakSloViolation";

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
            "alertname": ALERT_NAME,
            "slo": v.slo,
            "group": v.group,
            "severity": severity(v.severity),
            "from_version": t.from.get("version").cloned().unwrap_or_default(),
            "to_version": t.to.get("version").cloned().unwrap_or_default(),
        },
        "annotations": {
            "summary": format!("SLO {}/{} failed after the transition to generation {} ({})", v.group, v.slo, t.generation, upsoak_common::change::describe(&t.from, &t.to)),
            "change": upsoak_common::change::describe(&t.from, &t.to),
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
    /// A sender with the default timeouts.
    pub fn new(url: &str, capacity: usize) -> AlertSender {
        AlertSender::with_timeouts(url, capacity, Timeouts::SINK)
    }

    /// A sender whose every request is bounded by `timeouts`.
    pub fn with_timeouts(url: &str, capacity: usize, timeouts: Timeouts) -> AlertSender {
        AlertSender {
            url: url.trim_end_matches('/').to_owned(),
            http: timeouts.client(),
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
                AlertsDropped {
                    queued: self.queue.len(),
                }
                .emit(m);
            }
            self.queue.push_back(serde_json::Value::Array(alerts));
        }
        if self.next_try.is_some_and(|t| std::time::Instant::now() < t) {
            AlertsDeferred {
                why: None,
                queued: self.queue.len(),
            }
            .emit(m);
            return;
        }
        while let Some(batch) = self.queue.front() {
            let n = batch.as_array().map_or(0, Vec::len) as u64;
            let why = match self
                .http
                .post(format!("{}/api/v2/alerts", self.url))
                .json(batch)
                .send()
                .await
            {
                Ok(r) if r.status().is_success() => {
                    self.queue.pop_front();
                    self.failures = 0;
                    self.next_try = None;
                    AlertsDelivered {
                        alerts: n,
                        queued: self.queue.len(),
                    }
                    .emit(m);
                    continue;
                }
                Ok(r) => format!("alertmanager refused them: {}", r.status()),
                Err(e) => format!("alertmanager unreachable: {}", crate::error::chain(&e)),
            };
            self.failed();
            AlertsDeferred {
                why: Some(&why),
                queued: self.queue.len(),
            }
            .emit(m);
            break;
        }
    }
}

/// Batches the loop may hand over before the delivery task takes them; more are dropped (and
/// counted): the loop re-sends every alert at each slot, so the next batch carries them again.
pub const HANDOVER: usize = 8;

/// The loop's end of the delivery task: [`AlertQueue::offer`] never waits.
pub struct AlertQueue {
    tx: Option<tokio::sync::mpsc::Sender<Vec<serde_json::Value>>>,
    closing: tokio_util::sync::CancellationToken,
    task: tokio::task::JoinHandle<upsoak_common::tasks::Ended>,
}

impl AlertQueue {
    /// Starts delivering through `sender` on a supervised task (a death is logged, counted and
    /// fails `health`, so the agent is restarted).
    pub fn start(
        mut sender: AlertSender,
        m: &AgentMetrics,
        health: upsoak_common::ops::Health,
    ) -> AlertQueue {
        let closing = tokio_util::sync::CancellationToken::new();
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<serde_json::Value>>(HANDOVER);
        let metrics = m.clone();
        let died = m.clone();
        let task = upsoak_common::tasks::supervise(
            "alert delivery",
            async move {
                while let Some(batch) = rx.recv().await {
                    sender.send(batch, &metrics).await;
                }
            },
            health,
            // The task ends when the loop closes the queue, not on the signal: the last
            // batches are still delivered (within the stop deadline).
            closing.clone(),
            move |task, reason| crate::events::TaskDied { task, reason }.emit(&died),
        );
        AlertQueue {
            tx: Some(tx),
            closing,
            task,
        }
    }

    /// Hands `alerts` to the delivery task without waiting; a full hand-over is counted as a
    /// dropped batch.
    pub fn offer(&self, alerts: Vec<serde_json::Value>, m: &AgentMetrics) {
        let Some(tx) = &self.tx else { return };
        if alerts.is_empty() {
            return;
        }
        if tx.try_send(alerts).is_err() {
            AlertsDropped { queued: HANDOVER }.emit(m);
        }
    }

    /// Closes the hand-over and waits (at most `deadline`) for what was handed over to be tried.
    pub async fn close(mut self, deadline: std::time::Duration) {
        self.closing.cancel();
        self.tx = None;
        let _ = tokio::time::timeout(deadline, &mut self.task).await;
    }
}

/// Alerts of every failed SLO of the latest judged transition of each SLO: firing ones, and
/// resolved ones for SLOs whose latest verdict is no longer fail. Each carries the label
/// `window`: `disruption` (failed during the upgrade: apply start to settle end) or `steady`.
///
/// Every alert also carries `labels` (the agent's `namespace`, so an AlertmanagerConfig of that
/// namespace, whose routes prometheus-operator restricts with a `namespace` matcher, matches
/// it); they never replace the alert's own labels.
pub fn current_alerts(
    transitions: &[Transition],
    now: &str,
    labels: &BTreeMap<String, String>,
) -> Vec<serde_json::Value> {
    let mut latest: BTreeMap<String, (&Transition, &SloVerdict)> = BTreeMap::new();
    let mut ever_failed: BTreeMap<String, (&Transition, &SloVerdict, SloWindow)> = BTreeMap::new();
    for t in transitions {
        let disruption = t
            .disruption
            .iter()
            .flat_map(|d| d.slos.iter().map(|kv| (kv, SloWindow::Disruption)));
        // The first steady window, then its chunks: the latest chunk's verdict is the current one.
        let steady = t
            .judged
            .iter()
            .chain(&t.chunks)
            .flat_map(|j| j.slos.iter().map(|kv| (kv, SloWindow::Steady)));
        for ((k, v), window) in disruption.chain(steady) {
            latest.insert(k.clone(), (t, v));
            if v.evidence.verdict == Verdict::Fail {
                ever_failed.insert(k.clone(), (t, v, window));
            }
        }
    }
    let mut out = Vec::new();
    for (k, (t, v, window)) in &ever_failed {
        let still = latest
            .get(k)
            .is_some_and(|(_, lv)| lv.evidence.verdict == Verdict::Fail);
        let mut a = alert(t, v, still, now, now);
        a["labels"]["window"] = json!(window.as_str());
        if let Some(own) = a["labels"].as_object_mut() {
            for (k, v) in labels {
                own.entry(k.clone()).or_insert_with(|| json!(v));
            }
        }
        if *window == SloWindow::Disruption {
            a["annotations"]["summary"] = json!(format!(
                "SLO {}/{} failed during the upgrade to generation {} (disruption window; {})",
                v.group,
                v.slo,
                t.generation,
                upsoak_common::change::describe(&t.from, &t.to)
            ));
        }
        out.push(a);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alerts_read_as_what_the_transition_changed() {
        let t: Transition = serde_json::from_value(json!({
            "generation": 4, "at": 100,
            "from": {"version": "1.58.0", "feature_gates": "A=false", "tunables": "x=1"},
            "to": {"version": "1.59.0", "feature_gates": "A=true", "tunables": "x=2"},
        }))
        .unwrap();
        let v: SloVerdict = serde_json::from_value(json!({
            "group": "g", "slo": "s", "severity": "critical", "query": "up",
            "evidence": {"verdict": "fail", "value": 0.0, "baseline": null, "threshold": null,
                "p_value": null, "samples": 3, "reason": "0 breaks the objective >= 1"},
            "previous": null, "samples": [],
        }))
        .unwrap();
        let a = alert(&t, &v, true, "now", "then");
        assert_eq!(a["annotations"]["change"], "1.58.0 → 1.59.0  +A  x 1→2");
        assert_eq!(
            a["annotations"]["summary"],
            "SLO g/s failed after the transition to generation 4 (1.58.0 → 1.59.0  +A  x 1→2)"
        );
        // The full configuration stays in the labels and annotations it always had.
        assert_eq!(a["annotations"]["to_gates"], "A=true");
    }

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
        let shown = crate::events::encoded(|r| m.register(r));
        assert!(
            shown.contains("upsoak_agent_alerts_dropped_total 1\n")
                && shown.contains("upsoak_agent_alerts_queued 2\n"),
            "{shown}"
        );
    }
}
