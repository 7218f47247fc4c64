//! The operational endpoints every binary serves: `/metrics` (OpenMetrics or Prometheus text,
//! see [`crate::exposition`]), `/healthz` (liveness) and `/readyz` (readiness), as an axum
//! [`Router`] a binary merges with its own routes.
//!
//! [`Health`] is the shared state behind the two probes. A process starts live and not ready:
//! it becomes ready only when its code says so ([`Health::mark_ready`], e.g. after the first
//! successful query or observation), and stops being live when something it cannot recover
//! from happens ([`Health::fail`]), so an orchestrator restarts it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::exposition;

/// Path of the metrics endpoint.
pub const METRICS_PATH: &str = "/metrics";
/// Path of the liveness probe.
pub const HEALTHZ_PATH: &str = "/healthz";
/// Path of the readiness probe.
pub const READYZ_PATH: &str = "/readyz";

#[derive(Debug, Default)]
struct HealthState {
    ready: AtomicBool,
    failure: Mutex<Option<String>>,
}

/// Liveness and readiness, shared by the code that knows and the probes that tell. Clones
/// share one state.
#[derive(Clone, Debug, Default)]
pub struct Health(Arc<HealthState>);

impl Health {
    /// Live and not ready.
    pub fn new() -> Health {
        Health::default()
    }

    /// From now on `/readyz` answers 200 (unless the process has failed).
    pub fn mark_ready(&self) {
        self.0.ready.store(true, Ordering::Release);
    }

    /// From now on `/readyz` answers 503 again, e.g. while a dependency is gone.
    pub fn mark_not_ready(&self) {
        self.0.ready.store(false, Ordering::Release);
    }

    /// Ready and not failed.
    pub fn is_ready(&self) -> bool {
        self.0.ready.load(Ordering::Acquire) && self.failure().is_none()
    }

    /// From now on `/healthz` (and `/readyz`) answer 503 with `reason`. The first reason is
    /// kept: later failures are usually consequences of it.
    pub fn fail(&self, reason: impl Into<String>) {
        // A poisoned lock only means another thread panicked while failing; the state is an
        // `Option<String>` and is still consistent.
        let mut failure = self.0.failure.lock().unwrap_or_else(|e| e.into_inner());
        if failure.is_none() {
            *failure = Some(reason.into());
        }
    }

    /// Why the process failed, if it did.
    pub fn failure(&self) -> Option<String> {
        self.0
            .failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Not failed.
    pub fn is_live(&self) -> bool {
        self.failure().is_none()
    }
}

#[derive(Clone)]
struct OpsState {
    registry: Arc<Registry>,
    health: Health,
}

/// `/metrics` for `registry`, `/healthz` and `/readyz` for `health`.
///
/// The router carries its own state, so it merges into a binary's router of any state type:
/// `ops::router(registry, health.clone()).merge(my_routes)` or
/// `my_routes.merge(ops::router(registry, health))`.
pub fn router<S>(registry: impl Into<Arc<Registry>>, health: Health) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route(METRICS_PATH, get(metrics))
        .route(HEALTHZ_PATH, get(healthz))
        .route(READYZ_PATH, get(readyz))
        .with_state(OpsState {
            registry: registry.into(),
            health,
        })
}

/// Serves `app` on `listener` until `shutdown` is cancelled, then lets requests in flight finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

async fn metrics(State(s): State<OpsState>, headers: HeaderMap) -> Response {
    exposition::response(&s.registry, &headers)
}

async fn healthz(State(s): State<OpsState>) -> Response {
    match s.health.failure() {
        None => (StatusCode::OK, "ok\n").into_response(),
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("failed: {reason}\n"),
        )
            .into_response(),
    }
}

async fn readyz(State(s): State<OpsState>) -> Response {
    if let Some(reason) = s.health.failure() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("failed: {reason}\n"),
        )
            .into_response()
    } else if s.health.is_ready() {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
    }
}
