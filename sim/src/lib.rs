//! `upsoak-sim`: an embedded Agones control plane that speaks the Kubernetes API.
//!
//! - [`config`]: versions, gates, timings, port range and fault profiles, validated with paths.
//! - [`world`]: the simulated cluster and its controllers (lifecycle, Fleets, allocation).
//! - [`api`]: the Kubernetes API over HTTP (discovery, CRUD, patch, scale, watch, tables).
//! - [`game`]: the simple-game-server UDP protocol, one port per GameServer.
//! - [`events`]: every action counted or logged, as a typed event (the metric handles live there).
//! - [`metrics`]: the state gauges, computed from the world at scrape time.
//! - [`error`]: why the simulator could not start or stopped.
//! - [`selector`]: label and field selectors.
//! - [`status`]: errors as Kubernetes `Status` objects.
//! - [`validate`]: Fleet, name, gate-name and version rules.
//! - [`duration`]: the Go duration grammar of the game protocol and config durations.
//! - [`server`]: wiring, the control endpoint, `/metrics`, health.
//! - [`allocator_service`]: `agones-allocator`'s mTLS REST endpoint and its certificates.

pub mod allocator_service;
pub mod api;
pub mod config;
pub mod duration;
pub mod error;
pub mod events;
pub mod game;
pub mod metrics;
pub mod selector;
pub mod server;
pub mod status;
pub mod validate;
pub mod world;
