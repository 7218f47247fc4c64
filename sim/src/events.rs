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

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
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

/// Labels of `agones_gameserver_creation_duration`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CreationLabels {
    name: String,
    r#type: String,
    fleet_name: String,
    namespace: String,
}

fn retry_histogram() -> Histogram {
    Histogram::new(names::ALLOCATION_RETRY_BUCKETS)
}
/// `gameserver_creation_duration`'s buckets without OpenCensus' dropped 0 bound
/// (Agones `pkg/gameserversets/metrics.go`, `stateViews`).
fn creation_histogram() -> Histogram {
    Histogram::new(names::ALLOCATION_DURATION_BUCKETS)
}
/// `gameservers_node_count`'s buckets (Agones `pkg/metrics/controller_metrics.go`).
fn node_count_histogram() -> Histogram {
    let mut b = vec![0.00001];
    b.extend((1..=16).map(|i| f64::from(i) + 0.00001));
    b.extend(
        [
            32.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 100.0, 110.0, 120.0,
        ]
        .map(|v| v + 0.00001),
    );
    Histogram::new(b)
}

/// Whether the Agones pods whose metrics these are run, and what their version exports.
#[derive(Debug, Default)]
struct AgonesPods {
    /// The controller and extensions are being replaced (an upgrade window): they export
    /// nothing (`strategy: Recreate`, `install/helm/agones/templates/controller.yaml`,
    /// `extensions-deployment.yaml`).
    down: AtomicBool,
    /// `agones_gameservers_allocations_total` exists (Agones 1.59 and later).
    allocations_total: AtomicBool,
}

/// The metrics events update, with Agones' names, labels and buckets. Clones share the series.
/// Agones' own families are exported only while its pods run, and start from zero when they
/// are replaced, as a real controller's in-memory OpenCensus views do.
#[derive(Clone, Debug)]
pub struct SimMetrics {
    gameservers_total: Family<StateLabels, Counter>,
    allocations_total: Family<FleetLabels, Counter>,
    state_duration: HistogramFamily<StateLabels>,
    allocation_duration: HistogramFamily<AllocationLabels>,
    allocation_retries: HistogramFamily<AllocationLabels>,
    creation_duration: HistogramFamily<CreationLabels>,
    gameservers_per_node: Histogram,
    installs_total: Family<ResultLabels, Counter>,
    pods: Arc<AgonesPods>,
}

impl Default for SimMetrics {
    fn default() -> Self {
        SimMetrics {
            gameservers_total: Family::default(),
            allocations_total: Family::default(),
            state_duration: Family::new_with_constructor(state_duration_histogram),
            allocation_duration: Family::new_with_constructor(allocation_histogram),
            allocation_retries: Family::new_with_constructor(retry_histogram),
            creation_duration: Family::new_with_constructor(creation_histogram),
            gameservers_per_node: node_count_histogram(),
            installs_total: Family::default(),
            pods: Arc::default(),
        }
    }
}

impl SimMetrics {
    /// Registers the event metrics; Agones' counter names end in `_total` only on the wire.
    pub fn register(&self, registry: &mut Registry) {
        registry.register_collector(Box::new(AgonesFamilies(self.clone())));
        registry.register(
            "upsoak_sim_installs",
            "Install requests to the simulator's control endpoint, by result",
            self.installs_total.clone(),
        );
    }

    /// True while Agones' pods run and export metrics (false in an upgrade window).
    pub fn agones_up(&self) -> bool {
        !self.pods.down.load(Ordering::Relaxed)
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

    /// The replaced pods start with empty views.
    fn reset_agones(&self) {
        self.gameservers_total.clear();
        self.allocations_total.clear();
        self.state_duration.clear();
        self.allocation_duration.clear();
        self.allocation_retries.clear();
        self.creation_duration.clear();
    }
}

/// Agones' event-driven families, exported only while its pods run.
#[derive(Debug)]
struct AgonesFamilies(SimMetrics);

fn encode_family<M: EncodeMetric>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    m: &M,
) -> Result<(), std::fmt::Error> {
    m.encode(encoder.encode_descriptor(name, help, None, m.metric_type())?)
}

impl Collector for AgonesFamilies {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let m = &self.0;
        if !m.agones_up() {
            return Ok(());
        }
        let e = &mut e;
        encode_family(
            e,
            "agones_gameservers",
            "The total of gameservers",
            &m.gameservers_total,
        )?;
        if m.pods.allocations_total.load(Ordering::Relaxed) {
            encode_family(
                e,
                "agones_gameservers_allocations",
                "The total of allocated gameservers per fleet",
                &m.allocations_total,
            )?;
        }
        encode_family(
            e,
            names::GAMESERVER_STATE_DURATION,
            "The time gameserver exists in the current state in seconds",
            &m.state_duration,
        )?;
        encode_family(
            e,
            names::ALLOCATIONS_DURATION_SECONDS,
            "The distribution of gameserver allocation requests latencies.",
            &m.allocation_duration,
        )?;
        encode_family(
            e,
            names::ALLOCATIONS_RETRY_TOTAL,
            "The count of gameserver allocation retry until it succeeds",
            &m.allocation_retries,
        )?;
        encode_family(
            e,
            "agones_gameserver_creation_duration",
            "The time gameserver takes to be created in seconds",
            &m.creation_duration,
        )?;
        encode_family(
            e,
            "agones_gameservers_node_count",
            "The count of gameservers per node in the cluster",
            &m.gameservers_per_node,
        )
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
/// Labelled as Agones does (`pkg/gameserverallocations/metrics.go`): every tag starts at
/// `none` (`latencyTags`); `fleet_name` is set only for a local Allocated result, from the
/// GameServer's label (`setResponse`); `cluster_name` stays `none`.
pub struct AllocationFinished<'a> {
    /// The allocated server's Fleet; `none` when nothing was allocated.
    pub fleet: &'a str,
    pub status: &'a str,
    pub scheduling: &'a str,
    pub took: Duration,
    /// Attempts an Allocated result took, the first included (`allocator.go`,
    /// `allocateFromLocalCluster`: `recordAllocationRetrySuccess(ctx, retryCount)`).
    pub attempts: Option<u32>,
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
                cluster_name: "none".to_owned(),
                is_multicluster: "false".to_owned(),
                status: self.status.to_owned(),
                scheduling_strategy: self.scheduling.to_owned(),
            })
            .observe(self.took.as_secs_f64());
        if let Some(n) = self.attempts {
            // Recorded with the request's untagged context: only `status` is set, the other
            // tags export empty (`recordAllocationRetrySuccess`).
            m.allocation_retries
                .get_or_create(&AllocationLabels {
                    fleet_name: String::new(),
                    cluster_name: String::new(),
                    is_multicluster: String::new(),
                    status: "Success".to_owned(),
                    scheduling_strategy: String::new(),
                })
                .observe(f64::from(n));
        }
    }
}

/// A Fleet's controller created `count` GameServers in one pass, taking `took`
/// (Agones `pkg/gameserversets/controller.go`, `addMoreGameServers`: the count as `name`, the
/// other tags `none`, no namespace tag).
pub struct GameServersAdded {
    pub count: usize,
    pub took: Duration,
}

impl GameServersAdded {
    pub fn emit(self, m: &SimMetrics) {
        m.creation_duration
            .get_or_create(&CreationLabels {
                name: self.count.to_string(),
                r#type: "none".to_owned(),
                fleet_name: "none".to_owned(),
                namespace: String::new(),
            })
            .observe(self.took.as_secs_f64());
    }
}

/// The metrics controller's periodic collection (every 15 s, `MetricResyncPeriod`): one
/// observation of GameServers per node for each node (`pkg/metrics/controller.go`,
/// `collectNodeCounts`).
pub struct NodesCollected<'a> {
    pub gameservers_per_node: &'a [usize],
}

impl NodesCollected<'_> {
    pub fn emit(self, m: &SimMetrics) {
        for n in self.gameservers_per_node {
            m.gameservers_per_node.observe(*n as f64);
        }
    }
}

/// An install's upgrade window opened: Agones' controller and extensions pods are being
/// replaced, and export nothing until the window closes.
pub struct AgonesPodsReplacing;

impl AgonesPodsReplacing {
    pub fn emit(self, m: &SimMetrics) {
        tracing::debug!("agones pods replacing: agones metrics absent");
        m.pods.down.store(true, Ordering::Relaxed);
    }
}

/// Agones' pods (re)started: their metrics start from zero; `agones_gameservers_allocations_total`
/// exists from 1.59 (`pkg/metrics/controller_metrics.go`).
pub struct AgonesPodsStarted<'a> {
    pub version: &'a str,
    pub allocations_total: bool,
}

impl AgonesPodsStarted<'_> {
    pub fn emit(self, m: &SimMetrics) {
        tracing::debug!(version = %self.version, "agones pods started: agones metrics from zero");
        m.reset_agones();
        m.pods
            .allocations_total
            .store(self.allocations_total, Ordering::Relaxed);
        m.pods.down.store(false, Ordering::Relaxed);
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
