//! The agent's HTTP server: the workspace's `/metrics`, `/healthz` and `/readyz`
//! ([`upsoak_common::ops`]; ready once Prometheus has answered a query), and Alertmanager's
//! webhook at `/api/v1/alertmanager` ([`crate::webhook`]: credentials, body limit, inbox), and
//! the live HTML report at `/report` ([`crate::report::live`]), on the workspace's server with
//! its limits ([`upsoak_common::server`]). A write (the webhook) from a foreign `Origin`, or to a
//! loopback listener under a foreign `Host`, is refused 403 ([`upsoak_common::server::origin`]).

use axum::Router;
use axum::routing::post;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;
use upsoak_common::ops::{self, Health};
use upsoak_common::server::Limits;

use crate::webhook::{self, Webhook};

/// Path of the Alertmanager webhook (payload version 4).
pub const WEBHOOK_PATH: &str = "/api/v1/alertmanager";

/// The agent's routes.
pub fn router(
    registry: Registry,
    health: Health,
    webhook: Webhook,
    state_dir: std::path::PathBuf,
    loopback: bool,
) -> Router {
    let app = Router::new()
        .route(WEBHOOK_PATH, post(webhook::receive))
        .with_state(webhook)
        .merge(ops::router(registry, health))
        .merge(crate::report::live::router(state_dir));
    upsoak_common::server::origin::guard_writes(app, loopback)
}

/// Serves [`router`] until `shutdown`, within `limits` (header and body read timeouts, body
/// size, connections; refusals counted in `upsoak_agent_http_refused_total`).
pub async fn serve(
    listener: tokio::net::TcpListener,
    registry: Registry,
    webhook: Webhook,
    health: Health,
    state_dir: std::path::PathBuf,
    limits: Limits,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let metrics = webhook.metrics.server();
    let loopback = listener.local_addr()?.ip().is_loopback();
    upsoak_common::server::serve(
        listener,
        router(registry, health, webhook, state_dir, loopback),
        limits,
        metrics,
        shutdown,
    )
    .await
}
