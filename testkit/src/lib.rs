//! Test support for every upsoak crate: a dev-dependency, never part of a binary.
//!
//! - [`wait`]: [`eventually`] and [`eventually_blocking`], which poll real state with a deadline
//!   instead of sleeping and hoping.
//! - [`dir`]: [`TempDir`], a scratch directory removed on drop.
//! - [`process`]: [`Proc`], a child process whose output goes to files, whose
//!   `listening on URL` line is read for its address, stopped with SIGTERM and a deadline and
//!   killed on drop; [`bin`] finds the workspace's own binaries; [`kubectl`] runs the real
//!   client against a server.
//! - [`prometheus`]: [`Prometheus`] and [`Alertmanager`] launched on `127.0.0.1:0`, their
//!   address read from their log, ready when returned.
//! - [`metrics`]: [`scrape`], [`sum_series`], [`sample`], [`promtool_check`] and
//!   [`serve_metrics`], a `/metrics` server whose text a test controls.
//!
//! Set-up failures are test failures, so the kit panics with the reason (and the process'
//! logs) rather than returning errors every test would unwrap; the modules that do so allow
//! `expect`/`panic` at module level.

pub mod dir;
pub mod metrics;
pub mod process;
pub mod prometheus;
pub mod wait;

pub use dir::TempDir;
pub use metrics::{MetricsServer, promtool_check, sample, scrape, serve_metrics, sum_series};
pub use process::{Announce, Proc, bin, free_port, kubectl};
pub use prometheus::{Alertmanager, Prometheus, scrape_config};
pub use wait::{POLL, TimedOut, eventually, eventually_blocking};

/// Unix time now, in seconds.
pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}
