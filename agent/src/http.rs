//! Timeouts of the agent's outbound HTTP clients (Prometheus, Alertmanager, Grafana): reqwest
//! sets none by default, so a peer that accepts the connection and never answers would hold a
//! request (and the loop awaiting it) forever.

use std::time::Duration;

/// Default time to establish a connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default time for a whole Prometheus query (connect, send, answer).
pub const DEFAULT_QUERY_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time for a whole Alertmanager or Grafana request.
pub const DEFAULT_SINK_TIMEOUT: Duration = Duration::from_secs(5);

/// A client's connect and whole-request timeouts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// Time to establish the connection.
    pub connect: Duration,
    /// Time for the whole request, answer included.
    pub request: Duration,
}

impl Timeouts {
    /// The defaults for Prometheus queries.
    pub const QUERY: Timeouts = Timeouts {
        connect: DEFAULT_CONNECT_TIMEOUT,
        request: DEFAULT_QUERY_TIMEOUT,
    };
    /// The defaults for Alertmanager and Grafana.
    pub const SINK: Timeouts = Timeouts {
        connect: DEFAULT_CONNECT_TIMEOUT,
        request: DEFAULT_SINK_TIMEOUT,
    };

    /// A client builder with these timeouts.
    pub fn builder(&self) -> reqwest::ClientBuilder {
        reqwest::Client::builder()
            .connect_timeout(self.connect)
            .timeout(self.request)
    }

    /// A client with these timeouts; should the builder fail (no TLS backend), a client without
    /// them, with a warning (it only fails where no client could be built at all).
    pub fn client(&self) -> reqwest::Client {
        match self.builder().build() {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "cannot build an HTTP client with timeouts; using one without");
                reqwest::Client::new()
            }
        }
    }
}
