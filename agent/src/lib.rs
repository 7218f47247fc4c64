//! `upsoak-agent`, the Monitor: SLO specs in PromQL judged per Wanderer transition against
//! recorded baselines.
//!
//! - [`spec`]: the SLO spec file, strictly parsed, every expression parsed as PromQL.
//! - [`criteria`]: absolute objectives and Keptn-style criteria relative to a baseline.
//! - [`stats`]: summaries and the Mann–Whitney U test.
//! - [`judge`]: the decision for one SLO over one window, with its evidence.
//! - [`prom`]: the Prometheus boundary.
//! - [`baseline`]: recording and storing baselines.
//! - [`eval`]: transitions detected from the Wanderer's generation, judged, kept in a history.
//! - [`exit`]: the documented exit codes.
//! - [`error`]: the crate's one error type.

pub mod baseline;
pub mod cli;
pub mod criteria;
pub mod error;
pub mod eval;
pub mod grafana;
pub mod judge;
pub mod probe;
pub mod prom;
pub mod report;
pub mod rules;
pub mod run;
pub mod sinks;
pub mod slots;
pub mod spec;
pub mod stats;
pub mod webhook;

pub use error::{Error, Result};

/// Exit codes of `upsoak-agent`.
pub mod exit {
    /// Every judged SLO passed.
    pub const PASS: u8 = 0;
    /// At least one SLO failed.
    pub const FAIL: u8 = 1;
    /// Bad input: a file, flag or configuration.
    pub const BAD_INPUT: u8 = 2;
    /// Nothing failed, but something could not be judged.
    pub const INCONCLUSIVE: u8 = 3;
}
