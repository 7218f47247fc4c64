//! The agent's HTTP server: the workspace's `/metrics`, `/healthz` and `/readyz`
//! ([`upsoak_common::ops`]; ready once Prometheus has answered a query), and Alertmanager's
//! webhook at `/api/v1/alertmanager` ([`crate::webhook`]: credentials, body limit, inbox).

use axum::Router;
use axum::routing::post;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;
use upsoak_common::ops::{self, Health};

use crate::webhook::{self, Webhook};

/// Path of the Alertmanager webhook (payload version 4).
pub const WEBHOOK_PATH: &str = "/api/v1/alertmanager";

/// The agent's routes.
pub fn router(registry: Registry, health: Health, webhook: Webhook) -> Router {
    Router::new()
        .route(WEBHOOK_PATH, post(webhook::receive))
        .with_state(webhook)
        .merge(ops::router(registry, health))
}

/// Serves [`router`] until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    registry: Registry,
    webhook: Webhook,
    health: Health,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    ops::serve(listener, router(registry, health, webhook), shutdown).await
}
