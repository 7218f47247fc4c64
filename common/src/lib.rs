//! Plumbing the three upsoak binaries share.
//!
//! - [`exposition`]: encodes a `prometheus-client` registry as OpenMetrics or, for clients that
//!   do not ask for OpenMetrics (curl, `promtool check metrics`), the Prometheus text format.
//! - [`process`]: the standard `process_*` metrics, read from `/proc/self`.
//! - [`shutdown`]: one cancellation token, cancelled on SIGINT or SIGTERM.
//! - [`telemetry`]: tracing set-up (logs to stderr, stdout is for the program's own output).

pub mod exposition;
pub mod process;
pub mod shutdown;
pub mod telemetry;
