//! Passive mode: Alertmanager's webhook (payload version 4) posts the user's own alerts here;
//! an alert firing during a transition's judge window makes that transition fail on it.

use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

/// Alerts kept for folding; older ones are dropped first.
const CAPACITY: usize = 10_000;

/// Alertmanager's webhook payload, version 4.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Payload {
    pub version: String,
    #[serde(default)]
    pub status: String,
    pub alerts: Vec<WebhookAlert>,
}

/// One alert of a webhook payload.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WebhookAlert {
    pub status: String,
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: std::collections::BTreeMap<String, String>,
    pub starts_at: String,
    #[serde(default)]
    pub ends_at: String,
}

impl WebhookAlert {
    /// Unix seconds it started, and ended (`None` while firing: Alertmanager sends the zero time).
    pub fn span(&self) -> Option<(i64, Option<i64>)> {
        let start = self.starts_at.parse::<jiff::Timestamp>().ok()?.as_second();
        let end = self
            .ends_at
            .parse::<jiff::Timestamp>()
            .ok()
            .map(|t| t.as_second())
            .filter(|e| *e > 0 && self.status == "resolved");
        Some((start, end))
    }

    /// True when it fired at some point of [from, to].
    pub fn overlaps(&self, from: i64, to: i64) -> bool {
        match self.span() {
            Some((s, e)) => s <= to && e.is_none_or(|e| e >= from),
            None => false,
        }
    }
}

/// Alerts received, shared between the HTTP handler and the evaluator.
#[derive(Clone, Default)]
pub struct Inbox(pub Arc<Mutex<Vec<WebhookAlert>>>);

impl Inbox {
    /// The alerts, even if a handler panicked while holding them: the list is replaced one
    /// alert at a time, so it is consistent, and losing it would read as "no alert fired".
    fn alerts(&self) -> std::sync::MutexGuard<'_, Vec<WebhookAlert>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The alerts that fired during [from, to], except the agent's own.
    pub fn firing_between(&self, from: i64, to: i64) -> Vec<WebhookAlert> {
        self.alerts()
            .iter()
            .filter(|a| {
                a.labels.get("alertname").map(String::as_str) != Some(crate::sinks::ALERT_NAME)
            })
            .filter(|a| a.overlaps(from, to))
            .cloned()
            .collect()
    }
}

/// `POST /api/v1/alertmanager`: 400 unless the payload is version 4.
pub async fn receive(
    State(inbox): State<Inbox>,
    body: axum::body::Bytes,
) -> (StatusCode, Json<serde_json::Value>) {
    let payload: Payload = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(
                    serde_json::json!({"error": format!("not an Alertmanager webhook payload: {e}")}),
                ),
            );
        }
    };
    if payload.version != "4" {
        return (
            StatusCode::BAD_REQUEST,
            Json(
                serde_json::json!({"error": format!("payload version `{}` is not 4", payload.version)}),
            ),
        );
    }
    let mut v = inbox.alerts();
    for a in payload.alerts {
        // A newer state of the same alert (same labels and start) replaces the older one.
        v.retain(|old| !(old.labels == a.labels && old.starts_at == a.starts_at));
        v.push(a);
    }
    let excess = v.len().saturating_sub(CAPACITY);
    v.drain(..excess);
    (StatusCode::OK, Json(serde_json::json!({"status": "ok"})))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(status: &str, start: &str, end: &str) -> WebhookAlert {
        WebhookAlert {
            status: status.into(),
            labels: [("alertname".to_owned(), "AgonesAllocatorDown".to_owned())].into(),
            annotations: Default::default(),
            starts_at: start.into(),
            ends_at: end.into(),
        }
    }

    #[test]
    fn overlap_of_firing_and_resolved_alerts() {
        let t0 = "2026-11-25T00:00:00Z"
            .parse::<jiff::Timestamp>()
            .unwrap()
            .as_second();
        let firing = alert("firing", "2026-11-25T00:00:00Z", "0001-01-01T00:00:00Z");
        assert!(firing.overlaps(t0 + 100, t0 + 200));
        assert!(!firing.overlaps(t0 - 200, t0 - 100));
        let resolved = alert("resolved", "2026-11-25T00:00:00Z", "2026-11-25T00:01:00Z");
        assert!(resolved.overlaps(t0 + 30, t0 + 200));
        assert!(!resolved.overlaps(t0 + 61, t0 + 200));
    }
}
