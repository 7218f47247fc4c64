//! Every action the simulator counts or logs, as one typed event (vector's "internal events"):
//! each event's `emit` writes the log line and updates the metrics that go with it.
//!
//! The counters and histograms live in [`SimMetrics`], whose handles are private to this module:
//! code elsewhere builds an event from plain values and emits it, and cannot count by itself.
//! Gauges that describe the current state are not events; `metrics.rs` computes them from the
//! world at scrape time. This module imports nothing of the crate, so every other module may
//! use it.

use std::fmt::Display;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use upsoak_agones::GameServerState;
use upsoak_agones::metrics as names;

/// Labels of per-GameServer-state metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    r#type: String,
    fleet_name: String,
    namespace: String,
}

/// Labels of `agones_gameservers_allocations_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FleetLabels {
    fleet_name: String,
    namespace: String,
}

/// Labels of `agones_gameserver_allocations_duration_seconds`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AllocationLabels {
    fleet_name: String,
    cluster_name: String,
    is_multicluster: String,
    status: String,
    scheduling_strategy: String,
}

/// Labels of `upsoak_sim_installs_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn state_duration_histogram() -> Histogram {
    Histogram::new(names::state_duration_buckets())
}
fn allocation_histogram() -> Histogram {
    Histogram::new(names::ALLOCATION_DURATION_BUCKETS)
}

/// The metrics events update, with Agones' names, labels and buckets. Clones share the series.
#[derive(Clone, Debug)]
pub struct SimMetrics {
    gameservers_total: Family<StateLabels, Counter>,
    allocations_total: Family<FleetLabels, Counter>,
    state_duration: HistogramFamily<StateLabels>,
    allocation_duration: HistogramFamily<AllocationLabels>,
    installs_total: Family<ResultLabels, Counter>,
}

impl Default for SimMetrics {
    fn default() -> Self {
        SimMetrics {
            gameservers_total: Family::default(),
            allocations_total: Family::default(),
            state_duration: Family::new_with_constructor(state_duration_histogram),
            allocation_duration: Family::new_with_constructor(allocation_histogram),
            installs_total: Family::default(),
        }
    }
}

impl SimMetrics {
    /// Registers the event metrics; Agones' counter names end in `_total` only on the wire.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "agones_gameservers",
            "The total of gameservers per fleet and state transition",
            self.gameservers_total.clone(),
        );
        registry.register(
            "agones_gameservers_allocations",
            "The total of allocated gameservers per fleet",
            self.allocations_total.clone(),
        );
        registry.register(
            names::GAMESERVER_STATE_DURATION,
            "The time gameserver exists in the current state in seconds",
            self.state_duration.clone(),
        );
        registry.register(
            names::ALLOCATIONS_DURATION_SECONDS,
            "The distribution of gameserver allocation requests latencies",
            self.allocation_duration.clone(),
        );
        registry.register(
            "upsoak_sim_installs",
            "Install requests to the simulator's control endpoint, by result",
            self.installs_total.clone(),
        );
    }

    fn count_install(&self, result: &str) {
        self.installs_total
            .get_or_create(&ResultLabels {
                result: result.to_owned(),
            })
            .inc();
    }

    fn count_state(&self, namespace: &str, fleet: &str, state: GameServerState) {
        self.gameservers_total
            .get_or_create(&StateLabels {
                r#type: state.as_str().to_owned(),
                fleet_name: fleet.to_owned(),
                namespace: namespace.to_owned(),
            })
            .inc();
    }
}

// ----- installs, upgrade windows and faults -----

/// An install was accepted: its upgrade window opens.
pub struct InstallStarted<'a> {
    pub from: &'a str,
    pub to: &'a str,
    /// The target's gates as Helm's query string.
    pub gates: &'a str,
    pub window: Duration,
}

impl InstallStarted<'_> {
    pub fn emit(self, m: &SimMetrics) {
        tracing::info!(
            from = %self.from,
            to = %self.to,
            gates = %self.gates,
            window_ms = u64::try_from(self.window.as_millis()).unwrap_or(u64::MAX),
            "install started: upgrade window open"
        );
        m.count_install("started");
    }
}

/// Why an install was refused, as `upsoak_sim_installs_total{result}` says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Another install's upgrade window is open (`rejected`).
    InProgress,
    /// The chart would refuse it (`invalid`).
    Invalid,
}

/// An install was refused; nothing changed.
pub struct InstallRefused<'a> {
    pub version: &'a str,
    pub refusal: Refusal,
    /// Every reason, one per problem.
    pub reasons: &'a dyn Display,
}

impl InstallRefused<'_> {
    pub fn emit(self, m: &SimMetrics) {
        let result = match self.refusal {
            Refusal::InProgress => "rejected",
            Refusal::Invalid => "invalid",
        };
        tracing::info!(version = %self.version, result, reasons = %self.reasons, "install refused");
        m.count_install(result);
    }
}

/// An upgrade window closed: the target is what is installed now.
pub struct InstallFinished<'a> {
    pub version: &'a str,
    pub gates: &'a str,
}

impl InstallFinished<'_> {
    pub fn emit(self) {
        tracing::info!(
            version = %self.version,
            gates = %self.gates,
            "install complete: upgrade window closed"
        );
    }
}

/// A fault profile's condition started or stopped holding for what is installed
/// (`upsoak_sim_fault_active` follows at scrape time).
pub struct FaultChanged<'a> {
    pub name: &'a str,
    pub kind: &'a str,
    pub active: bool,
}

impl FaultChanged<'_> {
    pub fn emit(self) {
        if self.active {
            tracing::warn!(fault = %self.name, kind = %self.kind, "fault activated");
        } else {
            tracing::info!(fault = %self.name, kind = %self.kind, "fault deactivated");
        }
    }
}

/// A write was refused because the admission webhook it needs is down (an upgrade window).
pub struct WriteRefused {
    /// The webhook's name, `mutations.agones.dev` or `validations.agones.dev`.
    pub webhook: &'static str,
}

impl WriteRefused {
    pub fn emit(self) {
        tracing::debug!(webhook = %self.webhook, "write refused: admission webhook unavailable");
    }
}

/// An `upgrade_kills_allocated` fault shut down an Allocated GameServer inside an install
/// window (its state change is counted as any other).
pub struct UpgradeKilledGameServer<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
}

impl UpgradeKilledGameServer<'_> {
    pub fn emit(self) {
        tracing::warn!(
            namespace = %self.namespace,
            gameserver = %self.name,
            "upgrade fault: allocated gameserver shut down"
        );
    }
}

/// An `upgrade_drops_game_traffic` fault silenced every game port for `duration`.
pub struct GameTrafficDropped<'a> {
    /// The install's target version.
    pub version: &'a str,
    pub duration: Duration,
}

impl GameTrafficDropped<'_> {
    pub fn emit(self) {
        tracing::warn!(
            version = %self.version,
            duration_ms = u64::try_from(self.duration.as_millis()).unwrap_or(u64::MAX),
            "upgrade fault: game ports stop answering"
        );
    }
}

// ----- GameServers and Fleets -----

/// A Fleet created a GameServer (it starts `Creating`).
pub struct GameServerCreated<'a> {
    pub namespace: &'a str,
    pub fleet: &'a str,
    pub name: &'a str,
}

impl GameServerCreated<'_> {
    pub fn emit(self, m: &SimMetrics) {
        tracing::trace!(namespace = %self.namespace, gameserver = %self.name, "gameserver created");
        m.count_state(self.namespace, self.fleet, GameServerState::Creating);
    }
}

/// A GameServer moved from one state to another after `in_from` in the first.
pub struct GameServerStateChanged<'a> {
    pub namespace: &'a str,
    pub fleet: &'a str,
    pub name: &'a str,
    pub from: GameServerState,
    pub to: GameServerState,
    pub in_from: Duration,
}

impl GameServerStateChanged<'_> {
    pub fn emit(self, m: &SimMetrics) {
        tracing::trace!(
            namespace = %self.namespace,
            gameserver = %self.name,
            from = %self.from,
            to = %self.to,
            "gameserver state changed"
        );
        m.state_duration
            .get_or_create(&StateLabels {
                r#type: self.from.as_str().to_owned(),
                fleet_name: self.fleet.to_owned(),
                namespace: self.namespace.to_owned(),
            })
            .observe(self.in_from.as_secs_f64());
        m.count_state(self.namespace, self.fleet, self.to);
    }
}

/// A GameServer of a Fleet was allocated, through the API or its own SDK.
pub struct GameServerAllocated<'a> {
    pub namespace: &'a str,
    pub fleet: &'a str,
}

impl GameServerAllocated<'_> {
    pub fn emit(self, m: &SimMetrics) {
        m.allocations_total
            .get_or_create(&FleetLabels {
                fleet_name: self.fleet.to_owned(),
                namespace: self.namespace.to_owned(),
            })
            .inc();
    }
}

/// One allocation request was answered (Allocated, UnAllocated, Contention or error).
pub struct AllocationFinished<'a> {
    /// The allocated server's Fleet; the selectors' Fleet when nothing was allocated.
    pub fleet: &'a str,
    pub status: &'a str,
    pub scheduling: &'a str,
    pub took: Duration,
}

impl AllocationFinished<'_> {
    pub fn emit(self, m: &SimMetrics) {
        tracing::trace!(
            fleet = %self.fleet,
            status = %self.status,
            took_ms = self.took.as_secs_f64() * 1e3,
            "allocation finished"
        );
        m.allocation_duration
            .get_or_create(&AllocationLabels {
                fleet_name: self.fleet.to_owned(),
                cluster_name: String::new(),
                is_multicluster: "false".to_owned(),
                status: self.status.to_owned(),
                scheduling_strategy: self.scheduling.to_owned(),
            })
            .observe(self.took.as_secs_f64());
    }
}

/// The Fleet controller created or removed GameServers to reach a Fleet's replicas.
pub struct FleetReconciled<'a> {
    pub namespace: &'a str,
    pub fleet: &'a str,
    pub created: usize,
    pub removed: usize,
}

impl FleetReconciled<'_> {
    pub fn emit(self) {
        if self.created + self.removed > 0 {
            tracing::debug!(
                namespace = %self.namespace,
                fleet = %self.fleet,
                created = self.created,
                removed = self.removed,
                "fleet reconciled"
            );
        }
    }
}

/// A Fleet the configuration seeds could not be created.
pub struct FleetSeedRefused<'a> {
    pub fleet: &'a str,
    pub error: &'a dyn Display,
}

impl FleetSeedRefused<'_> {
    pub fn emit(self) {
        tracing::warn!(fleet = %self.fleet, error = %self.error, "cannot create configured fleet");
    }
}

/// A change could not be encoded for watchers; they miss it and should re-list.
pub struct WatchEventUnencodable<'a> {
    pub name: &'a str,
    pub error: &'a dyn Display,
}

impl WatchEventUnencodable<'_> {
    pub fn emit(self) {
        tracing::error!(object = %self.name, error = %self.error, "watch event not encodable");
    }
}

// ----- the game port -----

/// A GameServer got no UDP port; it stays Creating, as a pod without its node port.
pub struct GamePortUnavailable<'a> {
    pub name: &'a str,
    pub error: &'a dyn Display,
}

impl GamePortUnavailable<'_> {
    pub fn emit(self) {
        tracing::warn!(gameserver = %self.name, error = %self.error, "no game port");
    }
}

/// Reading one datagram failed (e.g. an ICMP error from an earlier peer); serving goes on.
pub struct GameReadFailed<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    pub error: &'a dyn Display,
}

impl GameReadFailed<'_> {
    pub fn emit(self) {
        tracing::debug!(namespace = %self.namespace, gameserver = %self.name, error = %self.error, "game port read failed");
    }
}

/// A reply could not be sent; the client loses it, the server goes on.
pub struct GameReplyFailed<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    pub peer: &'a dyn Display,
    pub error: &'a dyn Display,
}

impl GameReplyFailed<'_> {
    pub fn emit(self) {
        tracing::debug!(namespace = %self.namespace, gameserver = %self.name, peer = %self.peer, error = %self.error, "game reply failed");
    }
}

// ----- the process -----

/// The simulator serves: the world is built and the listener accepts.
pub struct Serving<'a> {
    pub addr: &'a dyn Display,
}

impl Serving<'_> {
    pub fn emit(self) {
        tracing::info!(addr = %self.addr, "serving");
    }
}

/// Serving stopped with an error after the listener was bound.
pub struct ServerFailed<'a> {
    pub error: &'a dyn Display,
}

impl ServerFailed<'_> {
    pub fn emit(self) {
        tracing::error!(error = %self.error, "server stopped");
    }
}

/// The controllers stopped because the world's lock is poisoned (a panic elsewhere).
pub struct ControllersStopped;

impl ControllersStopped {
    pub fn emit(self) {
        tracing::error!("world lock poisoned; controllers stop");
    }
}
