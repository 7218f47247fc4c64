//! `upsoak-chaos`, the sidecar: the Wanderer walks valid Agones configurations, the Producer
//! keeps load on, and every action is exported as a metric.
//!
//! - [`space`], [`constraint`]: the configuration space file and its constraint language.
//! - [`walk`]: seeded walks (random, coverage) and pairwise coverage.
//! - [`runner`]: the Wanderer's loop, its metrics and events.
//! - [`journal`]: the crash-safe journal of transitions.
//! - [`apply`]: appliers (simulator, helm) that install and observe.
//! - [`producer`]: open-model allocations, sessions and Fleet scaling.
//! - [`sidecar`]: the configuration file and the metrics server.
//! - [`cli`]: the subcommands and exit codes.

pub mod apply;
pub mod cli;
pub mod constraint;
pub mod journal;
pub mod producer;
pub mod runner;
pub mod sidecar;
pub mod space;
pub mod walk;
