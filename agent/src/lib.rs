//! `upsoak-agent`, the Monitor: SLO specs in PromQL judged per Wanderer transition against
//! recorded baselines.
//!
//! Inputs:
//! - [`spec`]: the SLO spec file, strictly parsed, every expression parsed as PromQL.
//! - [`criteria`]: absolute objectives and Keptn-style criteria relative to a baseline.
//! - [`prom`]: the Prometheus boundary (the [`prom::Querier`] trait and its HTTP client).
//! - [`wanderer`]: what the agent reads of the Wanderer: generation, configuration, live time.
//! - [`baseline`]: recording and storing baselines.
//! - [`baseline_by`]: which baseline a window is judged against (the recorded one, or one
//!   learned at the same configuration for an SLO with `baseline_by`).
//!
//! Deciding:
//! - [`stats`]: summaries and the Mann–Whitney U test.
//! - [`judge`]: the decision for one SLO over one window, with its evidence.
//! - [`eval`]: transitions detected from the Wanderer's generation and judged per group.
//! - [`disruption`]: each transition's disruption window (apply start → settle end), judged once.
//! - [`history`]: the persisted history of transitions and verdicts.
//!
//! Running:
//! - [`monitor`]: the loop of `run`, generic over the querier and the [`time::Clock`].
//! - [`slots`]: fixed evaluation slots per group, as Prometheus schedules rule groups.
//! - [`time`]: the clock and time helpers.
//! - [`events`]: every action as a typed event; the only place that logs and counts.
//! - [`server`]: `/metrics`, `/healthz`, `/readyz` and the Alertmanager webhook.
//! - [`probe`]: active probes of the Agones control plane through the Kubernetes API.
//!
//! Outputs:
//! - [`sinks`]: alerts to Alertmanager with a retry queue.
//! - [`grafana`]: annotations of transitions and verdict changes.
//! - [`webhook`]: the user's alerts from Alertmanager, folded into verdicts.
//! - [`report`]: the history as text, JSON or HTML.
//! - [`rules`]: Prometheus rules generated from the specs.
//! - [`export`]: a state directory as a tar on stdout.
//!
//! Command line:
//! - [`cli`]: the arguments and subcommands (`run`'s wiring in [`cli::monitor`]).
//! - [`exit`]: the documented exit codes.
//! - [`error`]: the crate's one error type.

pub mod baseline;
pub mod baseline_by;
pub mod budget;
pub mod chunks;
pub mod cli;
pub mod criteria;
pub mod disruption;
pub mod error;
pub mod eval;
pub mod events;
pub mod export;
pub mod grafana;
pub mod history;
pub mod http;
pub mod judge;
pub mod monitor;
pub mod probe;
pub mod prom;
pub mod report;
pub mod rules;
pub mod server;
pub mod sinks;
pub mod slots;
pub mod spec;
pub mod stats;
pub mod time;
pub mod vars;
pub mod wanderer;
pub mod webhook;

pub use error::{Error, Result};

/// Exit codes of `upsoak-agent`: the workspace's ([`upsoak_common::exit`]), with the agent's
/// name for success.
pub mod exit {
    pub use upsoak_common::exit::*;

    /// Every judged SLO passed (the workspace's [`OK`]).
    pub const PASS: u8 = OK;
}
