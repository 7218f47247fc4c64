//! `upsoak-chaos`, the sidecar: the Wanderer walks valid Agones configurations, the Producer
//! keeps load on, and every action is exported as a metric.
//!
//! - [`wanderer`]: the Wanderer: its loop, walk, space, constraints, journal, appliers, events.
//! - [`producer`]: open-model allocations, sessions and Fleet scaling, with its events.
//! - [`sidecar`]: the process composed from its configuration, and its metrics server.
//! - [`config`]: the configuration file.
//! - [`plan`]: what `validate` and `plan` print.
//! - [`preflight`]: the checks `preflight` runs before a soak.
//! - [`cli`]: the subcommands; [`error`]: the crate's error and exit codes.

pub mod cli;
pub mod config;
pub mod error;
pub mod plan;
pub mod preflight;
pub mod producer;
pub mod sidecar;
pub mod wanderer;
