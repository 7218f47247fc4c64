//! The agent's HTTP server: `/metrics`, `/healthz`, `/readyz` (ready once Prometheus has
//! answered a query) and Alertmanager's webhook at `/api/v1/alertmanager`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

use crate::webhook::{self, Inbox};

/// Readiness, shared between the loop (which marks it) and `/readyz` (which reports it).
#[derive(Clone, Debug, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    /// Marks the agent ready; it stays ready.
    pub fn mark_ready(&self) {
        self.0.store(true, Ordering::Release);
    }

    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// Serves until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    registry: Registry,
    inbox: Inbox,
    ready: Readiness,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let registry = Arc::new(registry);
    let app = Router::new()
        .route(
            "/metrics",
            get(|State(r): State<Arc<Registry>>, h: HeaderMap| async move { metrics(&r, &h) }),
        )
        .with_state(registry)
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(|State(ready): State<Readiness>| async move {
                if ready.is_ready() {
                    (StatusCode::OK, "ok\n")
                } else {
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        "not ready: no Prometheus query has succeeded yet\n",
                    )
                }
            }),
        )
        .with_state(ready)
        .route("/api/v1/alertmanager", post(webhook::receive))
        .with_state(inbox);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

fn metrics(r: &Registry, h: &HeaderMap) -> Response {
    upsoak_common::exposition::response(r, h)
}
