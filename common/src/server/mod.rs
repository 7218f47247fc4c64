//! The HTTP server every binary runs, with the limits hyper and axum leave off by default:
//! a header read timeout (hyper's timer is set, so a client that sends its headers slowly, or an
//! idle keep-alive connection, is cut off), a body read timeout and size limit (408 and 413
//! before any handler runs), and a limit on open connections, so a slow-loris flood cannot
//! exhaust file descriptors or memory.
//!
//! At the limit a new connection is not simply refused: the oldest connection that has not yet
//! sent a whole request header is closed to make room for it ([`Refusal::Shed`]). A slow-loris
//! client holds its slots by never finishing its headers, so its connections are the ones shed,
//! and a kubelet probe (which sends its request at once and is answered in milliseconds) gets
//! through however many slow clients there are. Only when every slot is serving a request is a
//! new connection answered 503 and closed.
//!
//! What the limits refuse is counted through [`events::ServerMetrics`], which each binary
//! registers under its own prefix.

pub mod events;
pub mod origin;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use events::{Refusal, ServerMetrics};

/// Default time a client has to send a request's headers (and an idle keep-alive connection
/// may wait for its next request).
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time a client has to send a request's whole body.
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Default largest request body (axum's own default for `Bytes`).
pub const DEFAULT_MAX_BODY_BYTES: usize = 2 * 1024 * 1024;
/// Default most connections open at once.
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;
/// How long connections in flight may take to finish after shutdown.
const DRAIN: Duration = Duration::from_secs(5);
/// How long the accept loop waits for a shed connection to free its slot.
const SHED_WAIT: Duration = Duration::from_millis(200);

/// The limits of a server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Time to send the headers of a request (and idle time between requests).
    pub header_read_timeout: Duration,
    /// Time to send the body of a request, from when the handler asks for it.
    pub body_read_timeout: Duration,
    /// Largest body accepted; a larger one is answered 413.
    pub max_body_bytes: usize,
    /// Connections open at once; more are answered 503 and closed.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

impl Limits {
    /// Every limit above zero, else which one is not (for a binary's bad-input error).
    pub fn check(&self) -> Result<(), &'static str> {
        if self.header_read_timeout.is_zero() {
            return Err("the header read timeout must be above zero");
        }
        if self.body_read_timeout.is_zero() {
            return Err("the body read timeout must be above zero");
        }
        if self.max_body_bytes == 0 {
            return Err("the body size limit must be above zero");
        }
        if self.max_connections == 0 {
            return Err("the connection limit must be above zero");
        }
        Ok(())
    }
}

/// The connections that have not sent a whole request header yet, oldest first: the ones
/// shed at the limit.
#[derive(Clone, Default)]
struct Waiting(Arc<Mutex<BTreeMap<u64, CancellationToken>>>);

impl Waiting {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, CancellationToken>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Closes the oldest waiting connection and waits (briefly) for its slot; `None` when none
    /// waits (every slot serves a request) or the slot did not come free in time.
    async fn shed_oldest(&self, permits: &Arc<Semaphore>) -> Option<OwnedSemaphorePermit> {
        let (_, close) = self.lock().pop_first()?;
        close.cancel();
        tokio::time::timeout(SHED_WAIT, permits.clone().acquire_owned())
            .await
            .ok()?
            .ok()
    }
}

#[derive(Clone)]
struct BodyLimits {
    limits: Limits,
    metrics: ServerMetrics,
}

/// Serves `app` on `listener` within `limits` until `shutdown` is cancelled, then lets the
/// requests in flight finish (at most a few seconds). Only a failing listener is an error; a
/// failed `accept` of one connection (e.g. out of file descriptors) is counted and retried.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    metrics: ServerMetrics,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let app = app.layer(axum::middleware::from_fn_with_state(
        BodyLimits {
            limits,
            metrics: metrics.clone(),
        },
        read_body,
    ));
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let waiting = Waiting::default();
    let mut next_id = 0u64;
    let tracker = TaskTracker::new();
    loop {
        let (stream, _peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(s) => s,
                Err(e) => {
                    metrics.refused(Refusal::AcceptFailed, Some(&e));
                    // EMFILE and friends: give closing connections a moment instead of spinning.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let permit = match permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => match waiting.shed_oldest(&permits).await {
                Some(p) => {
                    metrics.refused(Refusal::Shed, None);
                    p
                }
                None => {
                    metrics.refused(Refusal::TooManyConnections, None);
                    // Best effort, never waiting on the client: the socket is closed right after.
                    let _ = stream.try_write(
                        b"HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
                    );
                    continue;
                }
            },
        };
        let id = next_id;
        next_id += 1;
        let shed = CancellationToken::new();
        waiting.lock().insert(id, shed.clone());
        // The first whole request header takes the connection off the list of those shed.
        let started = Arc::new(AtomicBool::new(false));
        let service = {
            let app = app.clone();
            let waiting = waiting.clone();
            let started = started.clone();
            tower::service_fn(move |req: Request<hyper::body::Incoming>| {
                if !started.swap(true, Ordering::Relaxed) {
                    waiting.lock().remove(&id);
                }
                tower::ServiceExt::oneshot(app.clone(), req)
            })
        };
        let service = TowerToHyperService::new(service);
        let metrics = metrics.clone();
        let shutdown = shutdown.clone();
        let waiting = waiting.clone();
        tracker.spawn(async move {
            let _permit = permit;
            let _open = metrics.opened();
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            let ended = tokio::select! {
                r = conn.as_mut() => r,
                // Shed at the limit before it sent a request: nothing of it is lost.
                _ = shed.cancelled() => Ok(()),
                _ = shutdown.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if !started.load(Ordering::Relaxed) {
                waiting.lock().remove(&id);
            }
            if let Err(e) = ended
                && e.is_timeout()
            {
                metrics.refused(Refusal::HeaderTimeout, None);
            }
        });
    }
    tracker.close();
    // Requests in flight finish; long ones (watches) are cut at the deadline.
    let _ = tokio::time::timeout(DRAIN, tracker.wait()).await;
    Ok(())
}

/// Reads the body within the size limit and the body read timeout, before the handler runs.
async fn read_body(State(s): State<BodyLimits>, req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > s.limits.max_body_bytes as u64) {
        s.metrics.refused(Refusal::BodyTooLarge, None);
        return too_large(s.limits.max_body_bytes);
    }
    let (parts, body) = req.into_parts();
    let read = tokio::time::timeout(
        s.limits.body_read_timeout,
        axum::body::to_bytes(body, s.limits.max_body_bytes),
    )
    .await;
    let bytes = match read {
        Err(_) => {
            s.metrics.refused(Refusal::BodyTimeout, None);
            return (
                StatusCode::REQUEST_TIMEOUT,
                [(header::CONNECTION, "close")],
                format!(
                    "the request body was not received within {:?}\n",
                    s.limits.body_read_timeout
                ),
            )
                .into_response();
        }
        Ok(Err(e)) if is_length_limit(&e) => {
            s.metrics.refused(Refusal::BodyTooLarge, None);
            return too_large(s.limits.max_body_bytes);
        }
        Ok(Err(e)) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("cannot read the request body: {e}\n"),
            )
                .into_response();
        }
        Ok(Ok(b)) => b,
    };
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

fn is_length_limit(e: &axum::Error) -> bool {
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = src {
        if s.to_string().contains("length limit exceeded") {
            return true;
        }
        src = s.source();
    }
    false
}

fn too_large(limit: usize) -> Response {
    (
        StatusCode::PAYLOAD_TOO_LARGE,
        [(header::CONNECTION, "close")],
        format!("the request body is larger than {limit} bytes\n"),
    )
        .into_response()
}

#[cfg(test)]
mod tests;
