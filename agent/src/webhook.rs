//! Passive mode: Alertmanager's webhook (payload version 4) posts the user's own alerts here;
//! an alert firing during a transition's judge window makes that transition fail on it.
//!
//! A post must carry the configured credentials ([`auth`]; 401 otherwise, nothing changes), be
//! JSON (415) and at most [`MAX_BODY_BYTES`] (413); its alerts go to the [`Inbox`], which is
//! bounded in bytes and kept in the state dir. A post is answered 200 only once the inbox is
//! written, so Alertmanager retries what the agent could not keep.

pub mod auth;
pub mod inbox;
pub mod verdicts;

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

pub use auth::{AuthFileError, WebhookAuth};
pub use inbox::{Inbox, MAX_INBOX_BYTES};

use crate::events::{AgentMetrics, WebhookAccepted, WebhookRefusal, WebhookRefused};

/// Largest body a post may have (Alertmanager's default `max_alerts: 0` sends every alert of a
/// group; 1 MiB holds thousands).
pub const MAX_BODY_BYTES: usize = 1 << 20;
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
    /// Alertmanager's hash of the labels: the alert's identity in the [`Inbox`].
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub fingerprint: String,
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

/// What the webhook's handler needs: where alerts go, who may post, and what it counts.
#[derive(Clone)]
pub struct Webhook {
    pub inbox: Inbox,
    /// `None`: anyone who reaches the port may post (warned about at start).
    pub auth: Option<Arc<WebhookAuth>>,
    pub metrics: AgentMetrics,
}

impl Webhook {
    /// An open webhook over `inbox` (tests).
    pub fn open(inbox: Inbox) -> Webhook {
        Webhook {
            inbox,
            auth: None,
            metrics: AgentMetrics::default(),
        }
    }
}

fn refuse(m: &AgentMetrics, reason: WebhookRefusal, detail: &str) -> Response {
    WebhookRefused { reason, detail }.emit(m);
    let status = match reason {
        WebhookRefusal::Unauthenticated => StatusCode::UNAUTHORIZED,
        WebhookRefusal::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        WebhookRefusal::NotJson => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        WebhookRefusal::BadPayload => StatusCode::BAD_REQUEST,
        WebhookRefusal::NotSaved => StatusCode::INTERNAL_SERVER_ERROR,
    };
    (status, Json(serde_json::json!({ "error": detail }))).into_response()
}

/// `POST /api/v1/alertmanager`: 401 without the configured credentials, 415 unless JSON, 413
/// above [`MAX_BODY_BYTES`], 400 unless a payload of version 4, 500 if the inbox cannot be
/// written; 200 once its alerts are kept.
pub async fn receive(
    State(w): State<Webhook>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let m = &w.metrics;
    if let Some(auth) = &w.auth
        && !auth.allows(headers.get(header::AUTHORIZATION))
    {
        let mut r = refuse(
            m,
            WebhookRefusal::Unauthenticated,
            "missing or wrong Authorization",
        );
        for c in auth.challenges() {
            r.headers_mut().append(header::WWW_AUTHENTICATE, c);
        }
        return r;
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/json")
        });
    if !json {
        return refuse(
            m,
            WebhookRefusal::NotJson,
            "Content-Type must be application/json",
        );
    }
    let too_large = format!("the body is larger than {MAX_BODY_BYTES} bytes");
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return refuse(m, WebhookRefusal::TooLarge, &too_large);
    }
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
        return refuse(m, WebhookRefusal::TooLarge, &too_large);
    };
    let payload: Payload = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => {
            let detail = format!("not an Alertmanager webhook payload: {e}");
            return refuse(m, WebhookRefusal::BadPayload, &detail);
        }
    };
    if payload.version != "4" {
        let detail = format!("payload version `{}` is not 4", payload.version);
        return refuse(m, WebhookRefusal::BadPayload, &detail);
    }
    let received = payload.alerts.len();
    let inserted = w.inbox.insert(payload.alerts);
    if let Err(e) = w.inbox.save().await {
        let detail = crate::error::chain(&e);
        return refuse(m, WebhookRefusal::NotSaved, &detail);
    }
    WebhookAccepted {
        received,
        inserted: &inserted,
    }
    .emit(m);
    (StatusCode::OK, Json(serde_json::json!({"status": "ok"}))).into_response()
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
            fingerprint: String::new(),
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
