//! The simulated cluster: Fleets, GameServers, the installed Agones version, the watch event
//! log, and the controllers that move them (lifecycle, Fleet reconciliation, allocation).
//!
//! The store lives in one [`World`] behind one mutex, never held across an `await`: the
//! simulator's consistency (resourceVersions, counts that match the metrics) comes from that
//! single lock, and its speed from keeping each critical section short and indexed. What
//! allocation needs lives beside it in an [`Allocator`] with locks of its own (one per Fleet),
//! so picks never wait for the world: lock order is the world's lock, then a Fleet pool's
//! (`ready.rs`). The struct is one; its parts live in child modules, each an `impl World`
//! that sees the fields:
//!
//! - [`watch`]: resourceVersions, the watch event log and its subscribers.
//! - [`install`]: what is installed, the upgrade window, fault conditions, the allocation plan.
//! - [`fleets`]: Fleet CRUD, naming and UIDs, Fleet reconciliation and status.
//! - [`gameservers`]: the GameServer store, timers and the state machine (each change also
//!   updates its Fleet's pool).
//! - [`allocation`]: the [`Allocator`] (plan and picks, without the world's lock) and the
//!   commit.
//! - [`ready`]: the allocation cache: each Fleet's candidates, holds and state counts.
//! - [`sdk`]: the game protocol's SDK calls and the UDP runtime that serves them.
//! - [`upgrade_faults`]: faults active only inside an install window (kills, stalls, dropped
//!   game traffic).

mod allocation;
mod fleets;
mod gameservers;
mod install;
mod ready;
mod sdk;
#[cfg(test)]
mod tests;
mod upgrade_faults;
mod watch;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use upsoak_agones::{FLEET_LABEL, Fleet, GameServer, metrics::NO_FLEET};

use upsoak_agones::release::to_query;

use crate::config::SimConfig;
use crate::events::{self, SimMetrics};
use crate::metrics::{GaugeSnapshot, GaugeSource, PlayerGauge};

pub use allocation::{Allocator, BATCH_WAIT_TUNABLE, BatchLoop, Grant, count_allocated};
pub use fleets::{OS_PICKED_PORTS, default_template};
pub use install::{InstallError, Installed};
use ready::FleetPool;
pub use ready::Hold;
use sdk::GameRuntime;
pub use upgrade_faults::TrafficGate;
pub use watch::{WatchEvent, Watched};

/// `(namespace, name)`.
pub type Key = (String, String);

/// The node every simulated GameServer runs on.
pub const NODE_NAME: &str = "upsoak-sim-node";
/// Resident memory of the simulated controller before any fault, and per GameServer.
const CONTROLLER_BASE_BYTES: f64 = 64.0 * 1024.0 * 1024.0;
const CONTROLLER_BYTES_PER_GS: f64 = 2048.0;

/// The kinds of object a watch can follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Fleet,
    GameServer,
}

struct GsRecord {
    /// Shared with the watch log and the Fleet's pool; changed copy-on-write.
    obj: Arc<GameServer>,
    /// The pool of the Fleet that made it.
    pool: Arc<FleetPool>,
    /// When it entered its current state.
    since: Instant,
    /// When the lifecycle moves it next, if it does by itself.
    due: Option<Instant>,
    port: Option<u16>,
    game: Option<CancellationToken>,
}

struct FleetRecord {
    obj: Fleet,
    allocations: i64,
    /// Its servers' candidates and state counts.
    pool: Arc<FleetPool>,
}

/// The simulated cluster.
pub struct World {
    cfg: Arc<SimConfig>,
    metrics: SimMetrics,
    rv: u64,
    fleets: BTreeMap<Key, FleetRecord>,
    gameservers: BTreeMap<Key, GsRecord>,
    /// Allocation's share: the plan, and each Fleet's candidates (Ready and Allocated), the
    /// servers held by an allocation between pick and commit, and state counts.
    alloc: Arc<Allocator>,
    /// GameServers of each Fleet, by (namespace, fleet).
    members: BTreeMap<Key, BTreeSet<String>>,
    /// When each GameServer moves next by itself, in time order.
    timers: BTreeSet<(Instant, Key)>,
    /// Fleets whose GameServers or spec changed since they were last reconciled.
    dirty: BTreeSet<Key>,
    events: watch::EventLog,
    tx: broadcast::Sender<Arc<WatchEvent>>,
    installed: Installed,
    upgrade: Option<(Instant, Installed)>,
    leaked_bytes: f64,
    last_tick: Instant,
    /// When the metrics controller last collected node counts (every
    /// [`METRIC_RESYNC_PERIOD`]); `None` before its first collection.
    last_collect: Option<Instant>,
    rng: StdRng,
    game: Option<GameRuntime>,
    /// Shut-downs an `upgrade_kills_allocated` fault planned for the open window, by time.
    upgrade_kills: Vec<(Instant, Key)>,
    /// Until when an `upgrade_drops_game_traffic` fault silences the game ports.
    traffic: TrafficGate,
}

impl std::fmt::Debug for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("World")
            .field("rv", &self.rv)
            .field("fleets", &self.fleets.len())
            .field("gameservers", &self.gameservers.len())
            .finish()
    }
}

/// How often Agones' metrics controller collects counts (`pkg/metrics/controller.go`,
/// `MetricResyncPeriod`).
const METRIC_RESYNC_PERIOD: std::time::Duration = std::time::Duration::from_secs(15);

fn now_ts() -> Time {
    Time(jiff::Timestamp::now())
}

fn fleet_of(gs: &GameServer) -> Option<&str> {
    gs.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(FLEET_LABEL))
        .map(String::as_str)
}

impl World {
    /// A world with what `cfg` installs and seeds; call [`World::attach_game_runtime`] to give
    /// GameServers UDP ports.
    pub fn new(cfg: Arc<SimConfig>, metrics: SimMetrics, seed: u64) -> World {
        let (tx, _) = broadcast::channel(65_536);
        let installed = Installed {
            gates: cfg.effective_gates(&cfg.initial),
            spec: cfg.initial.clone(),
            since: jiff::Timestamp::now(),
        };
        let alloc = Arc::new(Allocator::new(
            seed,
            cfg.allocation.pick_window,
            metrics.clone(),
        ));
        let mut w = World {
            cfg: cfg.clone(),
            metrics,
            rv: 1,
            fleets: BTreeMap::new(),
            gameservers: BTreeMap::new(),
            alloc,
            members: BTreeMap::new(),
            timers: BTreeSet::new(),
            dirty: BTreeSet::new(),
            events: watch::EventLog::default(),
            tx,
            installed,
            upgrade: None,
            leaked_bytes: 0.0,
            last_tick: Instant::now(),
            last_collect: None,
            rng: StdRng::seed_from_u64(seed),
            game: None,
            upgrade_kills: Vec::new(),
            traffic: TrafficGate::default(),
        };
        w.publish_allocation_plan();
        w.agones_pods_started();
        for seed in &cfg.fleets {
            let fleet = Fleet::new(&seed.name, seed.replicas, default_template());
            if let Err(e) = w.create_fleet(&cfg.namespace, fleet) {
                events::FleetSeedRefused {
                    fleet: &seed.name,
                    error: &e,
                }
                .emit();
            }
        }
        w
    }

    pub fn config(&self) -> &SimConfig {
        &self.cfg
    }

    /// The current resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.rv
    }

    // ----- controllers -----

    /// One pass of every controller: the upgrade window, lifecycle, faults, Fleets.
    pub fn tick(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.last_tick).as_secs_f64();
        self.last_tick = now;
        self.apply_upgrade_faults(now);
        self.close_upgrade_window(now);
        self.advance_lifecycle(now);
        self.inject_failures(now, dt);
        self.grow_memory(dt);
        self.collect_node_counts(now);
        if self.upgrade.is_none() && !self.reconcile_stalled() {
            self.reconcile_fleets(now);
        }
        self.publish_allocation_plan();
    }

    /// Everything the state gauges export, under this one lock.
    pub fn gauge_snapshot(&self) -> GaugeSnapshot {
        let mut gs_counts: BTreeMap<(String, String, String), i64> = BTreeMap::new();
        for ((ns, _), r) in &self.gameservers {
            if let Some(s) = r.obj.state() {
                *gs_counts
                    .entry((
                        s.as_str().to_owned(),
                        fleet_of(&r.obj).unwrap_or(NO_FLEET).to_owned(),
                        ns.clone(),
                    ))
                    .or_default() += 1;
            }
        }
        let mut fleet_replicas = Vec::new();
        let mut fleet_rollout = Vec::new();
        for ((ns, name), r) in &self.fleets {
            let st = r.obj.status.clone().unwrap_or_default();
            for (kind, v) in [
                ("current_replicas", st.replicas),
                ("desired_replicas", r.obj.spec.replicas),
            ] {
                fleet_rollout.push(((name.clone(), ns.clone(), kind), i64::from(v)));
            }
            for (kind, v) in [
                ("total", st.replicas),
                ("allocated", st.allocated_replicas),
                ("ready", st.ready_replicas),
                ("desired", r.obj.spec.replicas),
                ("reserved", st.reserved_replicas),
            ] {
                fleet_replicas.push(((name.clone(), ns.clone(), kind), i64::from(v)));
            }
        }
        let player_tracking = self
            .installed
            .gates
            .get("PlayerTracking")
            .copied()
            .unwrap_or(false);
        let players = self
            .gameservers
            .iter()
            .filter(|_| player_tracking)
            .filter_map(|((ns, name), r)| {
                let p = r.obj.status.as_ref()?.players.as_ref()?;
                Some(PlayerGauge {
                    fleet: fleet_of(&r.obj).unwrap_or(NO_FLEET).to_owned(),
                    name: name.clone(),
                    namespace: ns.clone(),
                    count: p.count,
                    capacity: p.capacity,
                })
            })
            .collect();
        GaugeSnapshot {
            gameservers: gs_counts.into_iter().collect(),
            fleet_replicas,
            fleet_rollout,
            players,
            gameservers_on_node: self
                .gameservers
                .values()
                .filter(|r| {
                    r.obj
                        .status
                        .as_ref()
                        .is_some_and(|s| !s.node_name.is_empty())
                })
                .count(),
            agones_up: self.metrics.agones_up(),
            version: self.installed.spec.version.clone(),
            feature_gates: to_query(&self.installed.gates),
            faults: self
                .cfg
                .faults
                .iter()
                .map(|f| (f.name.clone(), self.fault_active(f)))
                .collect(),
            upgrading: self.upgrade.is_some(),
            controller_memory_bytes: CONTROLLER_BASE_BYTES
                + CONTROLLER_BYTES_PER_GS * self.gameservers.len() as f64
                + self.leaked_bytes,
        }
    }
}

/// The state gauges read the world under its lock at scrape time.
impl GaugeSource for Mutex<World> {
    fn gauge_snapshot(&self) -> Option<GaugeSnapshot> {
        self.lock().ok().map(|w| w.gauge_snapshot())
    }
}
