//! What the server's limits refuse, as events: each is logged and counted in
//! `<prefix>_http_refused_total{reason}`, and the open connections are a gauge,
//! `<prefix>_http_connections_open`. A binary registers one [`ServerMetrics`] under its prefix.

use std::sync::Arc;
use std::sync::atomic::AtomicI64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Why the server refused a connection or a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The connection limit was reached: answered 503 and closed.
    TooManyConnections,
    /// The headers (or the next request on an idle connection) did not come in time: closed.
    HeaderTimeout,
    /// The body did not come in time: 408.
    BodyTimeout,
    /// The body is over the size limit: 413.
    BodyTooLarge,
    /// `accept` failed (e.g. out of file descriptors).
    AcceptFailed,
    /// At the connection limit, a connection that had not sent a whole request yet was closed
    /// to make room for a new one (a slow client cannot keep a probe out).
    Shed,
}

impl Refusal {
    /// The `reason` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::TooManyConnections => "too_many_connections",
            Refusal::HeaderTimeout => "header_timeout",
            Refusal::BodyTimeout => "body_timeout",
            Refusal::BodyTooLarge => "body_too_large",
            Refusal::AcceptFailed => "accept_failed",
            Refusal::Shed => "shed_waiting",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

/// The server's metrics; clones share them.
#[derive(Clone, Debug, Default)]
pub struct ServerMetrics {
    refused: Family<ReasonLabels, Counter>,
    open: Gauge<i64, AtomicI64>,
    component: Arc<str>,
}

impl ServerMetrics {
    /// Metrics logged as coming from `component` (e.g. `agent`).
    pub fn new(component: &str) -> ServerMetrics {
        ServerMetrics {
            component: component.into(),
            ..ServerMetrics::default()
        }
    }

    /// Registers `<prefix>_http_refused` and `<prefix>_http_connections_open`.
    pub fn register(&self, registry: &mut Registry, prefix: &str) {
        for r in [
            Refusal::TooManyConnections,
            Refusal::HeaderTimeout,
            Refusal::BodyTimeout,
            Refusal::BodyTooLarge,
            Refusal::AcceptFailed,
            Refusal::Shed,
        ] {
            // Every reason is exported from the start, at zero.
            let _ = self
                .refused
                .get_or_create(&ReasonLabels { reason: r.as_str() });
        }
        registry.register(
            format!("{prefix}_http_refused"),
            "Connections and requests the HTTP server refused, by reason",
            self.refused.clone(),
        );
        registry.register(
            format!("{prefix}_http_connections_open"),
            "HTTP connections open now",
            self.open.clone(),
        );
    }

    /// The server refused something: logged and counted.
    pub fn refused(&self, why: Refusal, error: Option<&std::io::Error>) {
        self.refused
            .get_or_create(&ReasonLabels {
                reason: why.as_str(),
            })
            .inc();
        match error {
            Some(e) => {
                tracing::warn!(component = %self.component, reason = why.as_str(), error = %e, "HTTP server refused")
            }
            None => {
                tracing::debug!(component = %self.component, reason = why.as_str(), "HTTP server refused")
            }
        }
    }

    /// A connection opened; it counts as open until the guard is dropped.
    pub fn opened(&self) -> OpenConnection {
        self.open.inc();
        OpenConnection(self.open.clone())
    }
}

/// One open connection in `<prefix>_http_connections_open`.
pub struct OpenConnection(Gauge<i64, AtomicI64>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.dec();
    }
}
