//! Plumbing the three upsoak binaries share, and the names and formats that cross a process
//! boundary between them.
//!
//! - [`change`]: what changed between two configurations, in one line ([`change::describe`]).
//! - [`cli`]: [`cli::CliError`] (exit code, headline, cause, hint) and [`cli::print_error`],
//!   which writes `error: …`, `  caused by: …` lines and `hint: …`.
//! - [`exit`]: the exit codes of every binary (0 ok, 1 regression, 2 bad input, 3 inconclusive,
//!   4 runtime failure).
//! - [`exposition`]: encodes a `prometheus-client` registry as OpenMetrics or, for clients that
//!   do not ask for OpenMetrics (curl, `promtool check metrics`), the Prometheus text format.
//! - [`fnv`]: FNV-1a 64, the hash journals and baselines use to recognise their input.
//! - [`names`]: the sidecar's metric names that the agent queries, registration and series name.
//! - [`ops`]: the `/metrics`, `/healthz`, `/readyz` router and the [`ops::Health`] flags behind it.
//! - [`problems`]: every problem of an input with its path ([`problems::Problems`]), and a
//!   file's error built from them ([`problems::Invalid`]).
//! - [`process`]: the standard `process_*` metrics, read from `/proc/self`.
//! - [`redact`]: URLs with their credentials (userinfo, a token in the query) hidden, for logs.
//! - [`server`]: the HTTP server with header and body read timeouts, a body size limit and a
//!   connection limit.
//! - [`shutdown`]: one cancellation token, cancelled on SIGINT or SIGTERM.
//! - [`state`]: one writer per state directory (a lock file naming its pid) and atomic,
//!   durable file replacement (temporary file, fsync, rename, directory fsync).
//! - [`tasks`]: supervised tasks (an early end or a panic is reported, fails health and stops
//!   the process).
//! - [`telemetry`]: tracing set-up (logs to stderr, stdout is for the program's own output).
//! - [`yaml`]: the bounds (size, nesting, alias expansion) every YAML document passes before it
//!   is parsed.

pub mod change;
pub mod cli;
pub mod exit;
pub mod exposition;
pub mod fnv;
pub mod names;
pub mod ops;
pub mod problems;
pub mod process;
pub mod redact;
pub mod server;
pub mod shutdown;
pub mod state;
pub mod tasks;
pub mod telemetry;
pub mod yaml;
