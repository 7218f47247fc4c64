//! Watch streams: the current objects or the events after a resourceVersion, then every
//! matching change as a JSON line, bookmarks when asked, and 410 Gone when the log is too short.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde_json::{Value, json};
use tokio_stream::StreamExt as _;

use super::request::ListQuery;
use super::table::table;
use super::{ApiResult, ApiState, Served};
use crate::status::ApiError;
use crate::world::{Kind, WatchEvent};

// ----- watch -----

/// Most watches open at once (429 past it). Each one serializes a snapshot of every matching
/// object and buffers up to 1024 lines. The API server's `--max-requests-inflight` does not
/// count watches; the simulator bounds them because it runs in one small process.
pub const MAX_WATCHES: usize = 256;

/// Streams events as JSON lines: the current objects as ADDED when no resourceVersion (or 0)
/// is given, otherwise every event after it; 410 Gone when the log no longer reaches back.
pub(super) fn watch<T: Served>(
    s: ApiState,
    ns: Option<String>,
    q: ListQuery,
    as_table: bool,
) -> ApiResult {
    let kind = T::KIND;
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(1024);
    let mut sub;
    let mut backlog: Vec<Bytes> = Vec::new();
    let mut resumed: Vec<std::sync::Arc<WatchEvent>> = Vec::new();
    let mut last_rv;
    {
        let w = s.lock()?;
        if w.watchers() >= MAX_WATCHES {
            return Err(ApiError::too_many_requests(format!(
                "too many open watches: at most {MAX_WATCHES} at once"
            )));
        }
        sub = w.subscribe();
        last_rv = w.resource_version();
        let matches = |e: &WatchEvent| event_matches(e, kind, ns.as_deref(), &q);
        match q.resource_version.as_deref() {
            None | Some("") | Some("0") => {
                let lines: Vec<Value> = T::list(&w, ns.as_deref(), &q.labels)
                    .into_iter()
                    .filter(|o| q.fields.matches(|k| o.field(k)))
                    .map(|o| json!({"type": "ADDED", "object": o}))
                    .collect();
                backlog.extend(lines.into_iter().map(|l| Bytes::from(format!("{l}\n"))));
            }
            Some(rv) => {
                let rv: u64 = rv.parse().map_err(|_| {
                    ApiError::bad_request(format!("resourceVersion: `{rv}` is not a number"))
                })?;
                match w.events_since(rv) {
                    Some(events) => resumed = events.into_iter().filter(|e| matches(e)).collect(),
                    None => backlog.push(gone_line(rv)),
                }
            }
        }
    }
    // Encoded here, after the world's lock is released.
    backlog.extend(resumed.iter().map(|e| e.line()));
    let gone = backlog
        .last()
        .is_some_and(|l| l.starts_with(b"{\"type\":\"ERROR\""));
    // A timeout past what an Instant can hold (timeoutSeconds=2^64-1) is no timeout.
    let deadline = q
        .timeout
        .and_then(|t| tokio::time::Instant::now().checked_add(t));
    let shutdown = s.shutdown.clone();
    tokio::spawn(async move {
        for line in backlog {
            let line = if as_table { tableize::<T>(&line) } else { line };
            if tx.send(line).await.is_err() {
                return;
            }
        }
        if gone {
            return;
        }
        let mut bookmark = tokio::time::interval(Duration::from_secs(10));
        bookmark.tick().await;
        loop {
            let sleep_until =
                deadline.unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tx.closed() => return,
                _ = tokio::time::sleep_until(sleep_until) => return,
                _ = bookmark.tick(), if q.bookmarks => {
                    let api_version = "agones.dev/v1";
                    let k = match kind { Kind::Fleet => "Fleet", Kind::GameServer => "GameServer" };
                    let line = format!("{}\n", json!({"type": "BOOKMARK", "object": {"kind": k,
                        "apiVersion": api_version, "metadata": {"resourceVersion": last_rv.to_string()}}}));
                    if tx.send(Bytes::from(line)).await.is_err() { return; }
                }
                ev = sub.recv() => match ev {
                    Ok(e) => {
                        if e.rv <= last_rv && q.resource_version.as_deref().is_none_or(|r| r.is_empty() || r == "0") {
                            // Already part of the snapshot sent as ADDED.
                            continue;
                        }
                        last_rv = last_rv.max(e.rv);
                        if !event_matches(&e, kind, ns.as_deref(), &q) { continue; }
                        let line = if as_table { tableize::<T>(&e.line()) } else { e.line() };
                        if tx.send(line).await.is_err() { return; }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        // This watcher fell behind the event log: tell it to re-list, as the API
                        // server does with 410 Gone.
                        let _ = tx.send(gone_line(last_rv)).await;
                        return;
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        }
    });
    let stream =
        tokio_stream::wrappers::ReceiverStream::new(rx).map(Ok::<Bytes, std::convert::Infallible>);
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(stream),
    )
        .into_response())
}

fn event_matches(e: &WatchEvent, kind: Kind, ns: Option<&str>, q: &ListQuery) -> bool {
    e.kind == kind
        && ns.is_none_or(|n| n == e.namespace)
        && q.labels.matches(Some(&e.labels))
        && q.fields.matches(|f| {
            e.fields
                .iter()
                .find(|(name, _)| *name == f)
                .map(|(_, v)| v.clone())
        })
}

fn gone_line(rv: u64) -> Bytes {
    let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "reason": "Expired", "code": 410,
        "message": format!("too old resource version: {rv}")});
    Bytes::from(format!("{}\n", json!({"type": "ERROR", "object": status})))
}

/// Re-encodes one watch line's object as a one-row Table, for `kubectl get -w`.
fn tableize<T: Served>(line: &Bytes) -> Bytes {
    let Ok(mut v) = serde_json::from_slice::<Value>(line) else {
        return line.clone();
    };
    let obj = v["object"].take();
    let rv = obj
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .and_then(|r| r.parse().ok())
        .unwrap_or(0);
    let row = serde_json::from_value::<T>(obj.clone())
        .ok()
        .map(|o| o.row());
    match row {
        Some(r) => {
            v["object"] = table(T::KIND, vec![r], json!({"resourceVersion": rv.to_string()}));
            Bytes::from(format!("{v}\n"))
        }
        None => {
            v["object"] = obj;
            Bytes::from(format!("{v}\n"))
        }
    }
}
