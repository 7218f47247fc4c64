//! The simulated cluster: Fleets, GameServers, the installed Agones version, the watch event
//! log, and the controllers that move them (lifecycle, Fleet reconciliation, allocation).
//!
//! Everything lives in one [`World`] behind one mutex, never held across an `await`: the
//! simulator's consistency (resourceVersions, counts that match the metrics) comes from that
//! single lock, and its speed from keeping each critical section short and indexed.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use upsoak_agones::{
    FLEET_LABEL, Fleet, FleetStatus, GAMESERVERSET_LABEL, GameServer, GameServerAllocation,
    GameServerState, GameServerStatus, GameServerStatusPort, metrics::NO_FLEET,
};

use crate::config::{
    FailureState, FaultKind, FaultProfile, InstallSpec, SimConfig, gate_query, is_dns_label,
};
use crate::game::{self, PortPool, SdkCall, SdkHandle};
use crate::metrics::{FleetLabels, GaugeSnapshot, SimMetrics, StateLabels};
use crate::selector::Selector;
use crate::status::{ApiError, Cause};

/// `(namespace, name)`.
pub type Key = (String, String);

/// The node every simulated GameServer runs on.
pub const NODE_NAME: &str = "upsoak-sim-node";
/// Watch events kept for clients resuming from a resourceVersion.
const EVENT_LOG_LEN: usize = 20_000;
/// GameServers a Fleet creates per reconcile tick, so one big scale-up does not hold the lock.
const CREATE_BATCH: usize = 500;
/// Resident memory of the simulated controller before any fault, and per GameServer.
const CONTROLLER_BASE_BYTES: f64 = 64.0 * 1024.0 * 1024.0;
const CONTROLLER_BYTES_PER_GS: f64 = 2048.0;

/// The kinds of object a watch can follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Fleet,
    GameServer,
}

/// One change, as a watch sends it.
#[derive(Debug)]
pub struct WatchEvent {
    pub rv: u64,
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// GameServer state, for `fieldSelector=status.state=…`.
    pub state: Option<GameServerState>,
    /// `{"type":…,"object":…}\n`, encoded once for every watcher.
    pub line: Bytes,
}

/// What is installed, or being installed.
#[derive(Clone, Debug, PartialEq)]
pub struct Installed {
    pub spec: InstallSpec,
    /// Every gate of the version with its effective value.
    pub gates: BTreeMap<String, bool>,
    pub since: Timestamp,
}

/// Why an allocation did not happen, as the API reports it.
#[derive(Debug, PartialEq)]
pub enum AllocationError {
    Api(ApiError),
}

struct GsRecord {
    obj: GameServer,
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
}

/// Starts and stops game protocol servers; absent in model-only tests.
#[derive(Clone)]
struct GameRuntime {
    pool: Arc<PortPool>,
    sdk: Arc<dyn SdkHandle>,
    world: Weak<Mutex<World>>,
}

/// The simulated cluster.
pub struct World {
    cfg: Arc<SimConfig>,
    metrics: SimMetrics,
    rv: u64,
    fleets: BTreeMap<Key, FleetRecord>,
    gameservers: BTreeMap<Key, GsRecord>,
    /// Ready GameServers by (namespace, fleet name or `none`), for allocation.
    ready: BTreeMap<Key, BTreeSet<String>>,
    /// Servers picked by an allocation that has not committed yet. Like Agones' allocation
    /// cache, a picked server leaves the candidate list, so concurrent allocations never pick
    /// the same one; a server that changes before the commit makes that allocation retry.
    in_flight: BTreeSet<Key>,
    /// GameServers of each Fleet, by (namespace, fleet).
    members: BTreeMap<Key, BTreeSet<String>>,
    /// When each GameServer moves next by itself, in time order.
    timers: BTreeSet<(Instant, Key)>,
    /// Fleets whose GameServers or spec changed since they were last reconciled.
    dirty: BTreeSet<Key>,
    events: VecDeque<Arc<WatchEvent>>,
    tx: broadcast::Sender<Arc<WatchEvent>>,
    installed: Installed,
    upgrade: Option<(Instant, Installed)>,
    leaked_bytes: f64,
    last_tick: Instant,
    rng: StdRng,
    game: Option<GameRuntime>,
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

fn now_ts() -> Time {
    Time(Timestamp::now())
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
            since: Timestamp::now(),
        };
        let mut w = World {
            cfg: cfg.clone(),
            metrics,
            rv: 1,
            fleets: BTreeMap::new(),
            gameservers: BTreeMap::new(),
            ready: BTreeMap::new(),
            in_flight: BTreeSet::new(),
            members: BTreeMap::new(),
            timers: BTreeSet::new(),
            dirty: BTreeSet::new(),
            events: VecDeque::new(),
            tx,
            installed,
            upgrade: None,
            leaked_bytes: 0.0,
            last_tick: Instant::now(),
            rng: StdRng::seed_from_u64(seed),
            game: None,
        };
        for seed in &cfg.fleets {
            let fleet = Fleet::new(&seed.name, seed.replicas, default_template());
            if let Err(e) = w.create_fleet(&cfg.namespace, fleet) {
                tracing::warn!(fleet = %seed.name, error = %e, "cannot create configured fleet");
            }
        }
        w
    }

    /// Lets GameServers bind UDP ports from `pool` and speak the game protocol.
    pub fn attach_game_runtime(world: &Arc<Mutex<World>>, pool: Arc<PortPool>) {
        let sdk: Arc<dyn SdkHandle> = Arc::new(SdkBridge(Arc::downgrade(world)));
        if let Ok(mut w) = world.lock() {
            w.game = Some(GameRuntime {
                pool,
                sdk,
                world: Arc::downgrade(world),
            });
        }
    }

    pub fn config(&self) -> &SimConfig {
        &self.cfg
    }

    /// The current resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.rv
    }

    /// A receiver of every future event.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<WatchEvent>> {
        self.tx.subscribe()
    }

    /// Events after `rv`, or `None` when the log no longer reaches back that far (410 Gone).
    pub fn events_since(&self, rv: u64) -> Option<Vec<Arc<WatchEvent>>> {
        if rv >= self.rv {
            return Some(Vec::new());
        }
        match self.events.front() {
            Some(first) if first.rv <= rv + 1 => {
                Some(self.events.iter().filter(|e| e.rv > rv).cloned().collect())
            }
            // Nothing has happened since the world began: every rv up to now is current.
            None => Some(Vec::new()),
            Some(_) => None,
        }
    }

    fn next_rv(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    fn emit(
        &mut self,
        kind: Kind,
        type_: &str,
        meta: &ObjectMeta,
        state: Option<GameServerState>,
        object: &impl serde::Serialize,
    ) {
        let rv = meta
            .resource_version
            .as_deref()
            .and_then(|r| r.parse().ok())
            .unwrap_or(self.rv);
        let body = serde_json::to_string(object).unwrap_or_else(|_| "{}".to_owned());
        let line = Bytes::from(format!("{{\"type\":\"{type_}\",\"object\":{body}}}\n"));
        let ev = Arc::new(WatchEvent {
            rv,
            kind,
            namespace: meta.namespace.clone().unwrap_or_default(),
            name: meta.name.clone().unwrap_or_default(),
            labels: meta.labels.clone().unwrap_or_default(),
            state,
            line,
        });
        if self.events.len() >= EVENT_LOG_LEN {
            self.events.pop_front();
        }
        self.events.push_back(ev.clone());
        // No receivers is normal: nobody is watching.
        let _ = self.tx.send(ev);
    }

    // ----- install and upgrade window -----

    /// What is installed now.
    pub fn installed(&self) -> &Installed {
        &self.installed
    }

    /// The install in progress and when its window closes.
    pub fn upgrading(&self) -> Option<&Installed> {
        self.upgrade.as_ref().map(|(_, i)| i)
    }

    /// True while an upgrade window keeps the control plane unavailable.
    pub fn in_upgrade_window(&self) -> bool {
        self.upgrade.is_some()
    }

    /// Starts installing `spec`: validated as the chart would, then an upgrade window opens.
    pub fn install(&mut self, spec: InstallSpec) -> Result<Installed, Vec<String>> {
        if self.upgrade.is_some() {
            self.count_install("rejected");
            return Err(vec![
                "another install is in progress; wait for its upgrade window to close".to_owned(),
            ]);
        }
        if let Err(e) = self.cfg.check_install(&spec) {
            self.count_install("invalid");
            return Err(e);
        }
        let target = Installed {
            gates: self.cfg.effective_gates(&spec),
            spec,
            since: Timestamp::now(),
        };
        tracing::info!(
            from = %self.installed.spec.version,
            to = %target.spec.version,
            gates = %gate_query(&target.gates),
            window_ms = self.cfg.upgrade_window.as_millis() as u64,
            "install started: upgrade window open"
        );
        self.count_install("started");
        self.upgrade = Some((Instant::now() + self.cfg.upgrade_window, target.clone()));
        Ok(target)
    }

    fn count_install(&self, result: &str) {
        self.metrics
            .installs_total
            .get_or_create(&crate::metrics::ResultLabels {
                result: result.to_owned(),
            })
            .inc();
    }

    /// True while fault `f`'s condition holds for what is installed.
    pub fn fault_active(&self, f: &FaultProfile) -> bool {
        let version_ok = f
            .when
            .version
            .as_ref()
            .is_none_or(|v| *v == self.installed.spec.version);
        let gate_ok = f.when.gate.as_ref().is_none_or(|g| {
            self.installed.gates.get(&g.name).copied().unwrap_or(false) == g.enabled
        });
        version_ok && gate_ok
    }

    fn active_faults(&self) -> impl Iterator<Item = &FaultKind> {
        self.cfg
            .faults
            .iter()
            .filter(|f| self.fault_active(f))
            .map(|f| &f.kind)
    }

    /// The event metrics, to record without holding the world's lock.
    pub fn metrics(&self) -> &SimMetrics {
        &self.metrics
    }

    /// For one allocation: the pick-to-commit latency (faults included) and the retries
    /// allowed, or the error the allocator answers with (down, or a failure fault).
    pub fn allocation_plan(&mut self) -> Result<(Duration, u32), ApiError> {
        if self.upgrade.is_some() {
            return Err(ApiError::allocator_unavailable());
        }
        let mut latency = self.cfg.allocation.latency;
        let mut fail_rate: f64 = 0.0;
        for kind in self.active_faults() {
            match kind {
                FaultKind::AllocationLatency { multiplier, added } => {
                    latency = latency.mul_f64(*multiplier) + *added;
                }
                FaultKind::AllocationFailures { rate } => {
                    fail_rate = 1.0 - (1.0 - fail_rate) * (1.0 - rate);
                }
                _ => {}
            }
        }
        if fail_rate > 0.0 && self.rng.random::<f64>() < fail_rate {
            return Err(ApiError::internal(
                "error allocating gameserver: simulated allocator failure",
            ));
        }
        Ok((latency, self.cfg.allocation.retries))
    }

    // ----- Fleets -----

    pub fn get_fleet(&self, ns: &str, name: &str) -> Result<Fleet, ApiError> {
        self.fleets
            .get(&(ns.to_owned(), name.to_owned()))
            .map(|r| r.obj.clone())
            .ok_or_else(|| ApiError::not_found("fleets.agones.dev", name))
    }

    /// Fleets in `ns` (or every namespace) matching `sel`.
    pub fn list_fleets(&self, ns: Option<&str>, sel: &Selector) -> Vec<Fleet> {
        self.fleets
            .iter()
            .filter(|((n, _), _)| ns.is_none_or(|x| x == n))
            .filter(|(_, r)| sel.matches(r.obj.metadata.labels.as_ref()))
            .map(|(_, r)| r.obj.clone())
            .collect()
    }

    /// Creates a Fleet; its GameServers follow on the next reconcile.
    pub fn create_fleet(&mut self, ns: &str, mut fleet: Fleet) -> Result<Fleet, ApiError> {
        self.require_writable()?;
        let name = self.assign_name(ns, &mut fleet.metadata, |w, k| w.fleets.contains_key(k))?;
        validate_fleet(&fleet, &name)?;
        let key = (ns.to_owned(), name.clone());
        if self.fleets.contains_key(&key) {
            return Err(ApiError::already_exists("fleets.agones.dev", &name));
        }
        let rv = self.next_rv();
        let m = &mut fleet.metadata;
        m.namespace = Some(ns.to_owned());
        m.uid = Some(self.new_uid());
        m.resource_version = Some(rv.to_string());
        m.generation = Some(1);
        m.creation_timestamp = Some(now_ts());
        fleet.api_version = "agones.dev/v1".to_owned();
        fleet.kind = "Fleet".to_owned();
        fleet.status = Some(FleetStatus {
            label_selector: Some(format!("{FLEET_LABEL}={name}")),
            ..FleetStatus::default()
        });
        self.emit(Kind::Fleet, "ADDED", &fleet.metadata, None, &fleet);
        self.dirty.insert(key.clone());
        self.fleets.insert(
            key,
            FleetRecord {
                obj: fleet.clone(),
                allocations: 0,
            },
        );
        Ok(fleet)
    }

    /// Replaces a Fleet's spec, metadata labels and annotations (PUT, and the result of a patch).
    /// A `resourceVersion` that is not the current one is a conflict; status is ignored, as the
    /// status subresource is enabled for Fleets.
    pub fn update_fleet(
        &mut self,
        ns: &str,
        name: &str,
        mut new: Fleet,
    ) -> Result<Fleet, ApiError> {
        self.require_writable()?;
        let key = (ns.to_owned(), name.to_owned());
        let current = self
            .fleets
            .get(&key)
            .ok_or_else(|| ApiError::not_found("fleets.agones.dev", name))?;
        match new.metadata.resource_version.as_deref() {
            None | Some("") => {
                return Err(ApiError::invalid(
                    "fleets",
                    name,
                    vec![Cause {
                        field: "metadata.resourceVersion".into(),
                        message: "Invalid value: 0x0: must be specified for an update".into(),
                    }],
                ));
            }
            Some(rv) if Some(rv) != current.obj.metadata.resource_version.as_deref() => {
                return Err(ApiError::conflict("fleets.agones.dev", name));
            }
            Some(_) => {}
        }
        if let Some(n) = &new.metadata.name
            && n != name
        {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({n}) does not match the name on the URL ({name})"
            )));
        }
        validate_fleet(&new, name)?;
        let old = current.obj.clone();
        let spec_changed = old.spec != new.spec;
        let rv = self.next_rv();
        // Server-owned metadata stays the server's.
        let mut meta = old.metadata.clone();
        meta.labels = new.metadata.labels.take();
        meta.annotations = new.metadata.annotations.take();
        meta.resource_version = Some(rv.to_string());
        if spec_changed {
            meta.generation = Some(meta.generation.unwrap_or(1) + 1);
        }
        let fleet = Fleet {
            api_version: old.api_version.clone(),
            kind: old.kind.clone(),
            metadata: meta,
            spec: new.spec,
            status: old.status.clone(),
        };
        self.emit(Kind::Fleet, "MODIFIED", &fleet.metadata, None, &fleet);
        if let Some(rec) = self.fleets.get_mut(&key) {
            rec.obj = fleet.clone();
        }
        self.dirty.insert(key);
        Ok(fleet)
    }

    /// Deletes a Fleet and, as its owner, its GameServers.
    pub fn delete_fleet(&mut self, ns: &str, name: &str) -> Result<Fleet, ApiError> {
        self.require_writable()?;
        let key = (ns.to_owned(), name.to_owned());
        let rec = self
            .fleets
            .remove(&key)
            .ok_or_else(|| ApiError::not_found("fleets.agones.dev", name))?;
        let mut fleet = rec.obj;
        fleet.metadata.resource_version = Some(self.next_rv().to_string());
        self.emit(Kind::Fleet, "DELETED", &fleet.metadata, None, &fleet);
        let owned: Vec<Key> = self
            .members
            .get(&key)
            .into_iter()
            .flatten()
            .map(|n| (ns.to_owned(), n.clone()))
            .collect();
        for k in owned {
            self.remove_gameserver(&k);
        }
        self.members.remove(&key);
        self.dirty.remove(&key);
        Ok(fleet)
    }

    fn require_writable(&self) -> Result<(), ApiError> {
        if self.upgrade.is_some() {
            Err(ApiError::webhook_unavailable())
        } else {
            Ok(())
        }
    }

    /// Resolves `name` or `generateName`; 422 when neither is usable.
    fn assign_name(
        &mut self,
        ns: &str,
        meta: &mut ObjectMeta,
        exists: impl Fn(&World, &Key) -> bool,
    ) -> Result<String, ApiError> {
        if let Some(n) = meta.name.clone().filter(|n| !n.is_empty()) {
            return Ok(n);
        }
        let Some(prefix) = meta.generate_name.clone().filter(|p| !p.is_empty()) else {
            return Err(ApiError::invalid(
                "fleets",
                "",
                vec![Cause {
                    field: "metadata.name".into(),
                    message: "Required value: name or generateName is required".into(),
                }],
            ));
        };
        loop {
            let candidate = format!("{prefix}{}", self.random_suffix());
            if !exists(self, &(ns.to_owned(), candidate.clone())) {
                meta.name = Some(candidate.clone());
                return Ok(candidate);
            }
        }
    }

    fn random_suffix(&mut self) -> String {
        const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        (0..5)
            .map(|_| ALPHABET[self.rng.random_range(0..ALPHABET.len())] as char)
            .collect()
    }

    fn new_uid(&mut self) -> String {
        let a: u128 = self.rng.random();
        let h = format!("{a:032x}");
        format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }

    // ----- GameServers -----

    pub fn get_gameserver(&self, ns: &str, name: &str) -> Result<GameServer, ApiError> {
        self.gameservers
            .get(&(ns.to_owned(), name.to_owned()))
            .map(|r| r.obj.clone())
            .ok_or_else(|| ApiError::not_found("gameservers.agones.dev", name))
    }

    /// GameServers in `ns` (or every namespace) matching `sel` and `keep`.
    pub fn list_gameservers(
        &self,
        ns: Option<&str>,
        sel: &Selector,
        keep: impl Fn(&GameServer) -> bool,
    ) -> Vec<GameServer> {
        self.gameservers
            .iter()
            .filter(|((n, _), _)| ns.is_none_or(|x| x == n))
            .filter(|(_, r)| sel.matches(r.obj.metadata.labels.as_ref()) && keep(&r.obj))
            .map(|(_, r)| r.obj.clone())
            .collect()
    }

    /// Deletes a GameServer (its Fleet, if any, replaces it).
    pub fn delete_gameserver(&mut self, ns: &str, name: &str) -> Result<GameServer, ApiError> {
        let key = (ns.to_owned(), name.to_owned());
        self.remove_gameserver(&key)
            .ok_or_else(|| ApiError::not_found("gameservers.agones.dev", name))
    }

    fn remove_gameserver(&mut self, key: &Key) -> Option<GameServer> {
        let rec = self.gameservers.remove(key)?;
        self.unindex_ready(key, &rec.obj);
        if let Some(d) = rec.due {
            self.timers.remove(&(d, key.clone()));
        }
        self.in_flight.remove(key);
        if let Some(f) = fleet_of(&rec.obj) {
            let fk = (key.0.clone(), f.to_owned());
            if let Some(m) = self.members.get_mut(&fk) {
                m.remove(&key.1);
            }
            self.dirty.insert(fk);
        }
        if let Some(token) = &rec.game {
            token.cancel();
        }
        let mut gs = rec.obj;
        gs.metadata.resource_version = Some(self.next_rv().to_string());
        let state = gs.state();
        self.emit(Kind::GameServer, "DELETED", &gs.metadata, state, &gs);
        Some(gs)
    }

    fn ready_key(key: &Key, gs: &GameServer) -> Key {
        (key.0.clone(), fleet_of(gs).unwrap_or(NO_FLEET).to_owned())
    }

    fn unindex_ready(&mut self, key: &Key, gs: &GameServer) {
        let rk = Self::ready_key(key, gs);
        if let Some(set) = self.ready.get_mut(&rk) {
            set.remove(&key.1);
            if set.is_empty() {
                self.ready.remove(&rk);
            }
        }
    }

    /// Creates a GameServer for `fleet` from its template.
    fn spawn_gameserver(&mut self, ns: &str, fleet: &Fleet, now: Instant) {
        let fleet_name = fleet.metadata.name.clone().unwrap_or_default();
        let name = loop {
            let n = format!("{fleet_name}-{}", self.random_suffix());
            if !self.gameservers.contains_key(&(ns.to_owned(), n.clone())) {
                break n;
            }
        };
        let tmeta = fleet.spec.template.metadata.clone().unwrap_or_default();
        let mut labels = tmeta.labels.unwrap_or_default();
        labels.insert(FLEET_LABEL.to_owned(), fleet_name.clone());
        labels.insert(GAMESERVERSET_LABEL.to_owned(), format!("{fleet_name}-set"));
        let rv = self.next_rv();
        let meta = ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(ns.to_owned()),
            uid: Some(self.new_uid()),
            resource_version: Some(rv.to_string()),
            generation: Some(1),
            creation_timestamp: Some(now_ts()),
            labels: Some(labels),
            annotations: tmeta.annotations,
            owner_references: Some(vec![OwnerReference {
                api_version: "agones.dev/v1".to_owned(),
                kind: "Fleet".to_owned(),
                name: fleet_name.clone(),
                uid: fleet.metadata.uid.clone().unwrap_or_default(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]),
            ..ObjectMeta::default()
        };
        let mut gs = GameServer::new(meta, fleet.spec.template.spec.clone());
        gs.status = Some(GameServerStatus {
            state: GameServerState::Creating,
            ports: Vec::new(),
            address: String::new(),
            addresses: Vec::new(),
            node_name: String::new(),
            reserved_until: None,
            players: None,
        });
        let key = (ns.to_owned(), name);
        self.count_state(&gs, GameServerState::Creating);
        self.emit(
            Kind::GameServer,
            "ADDED",
            &gs.metadata,
            Some(GameServerState::Creating),
            &gs,
        );
        let game = self.game.clone().map(|rt| self.start_game(rt, key.clone()));
        self.members
            .entry((key.0.clone(), fleet_name))
            .or_default()
            .insert(key.1.clone());
        self.gameservers.insert(
            key.clone(),
            GsRecord {
                obj: gs,
                since: now,
                due: None,
                port: None,
                game,
            },
        );
        self.set_due(&key, Some(now + self.cfg.lifecycle.scheduled_after));
    }

    /// Sets when a GameServer moves next by itself, keeping the timer index in step.
    fn set_due(&mut self, key: &Key, due: Option<Instant>) {
        let Some(rec) = self.gameservers.get_mut(key) else {
            return;
        };
        if let Some(old) = rec.due.take() {
            self.timers.remove(&(old, key.clone()));
        }
        rec.due = due;
        if let Some(d) = due {
            self.timers.insert((d, key.clone()));
        }
    }

    /// Marks the Fleet of a GameServer for reconciliation.
    fn mark_dirty(&mut self, ns: &str, gs: &GameServer) {
        if let Some(f) = fleet_of(gs) {
            self.dirty.insert((ns.to_owned(), f.to_owned()));
        }
    }

    /// Binds a UDP port and serves the game protocol for `key` until cancelled.
    fn start_game(&self, rt: GameRuntime, key: Key) -> CancellationToken {
        let token = CancellationToken::new();
        let stop = token.clone();
        let ip = self.cfg.game.ip;
        let world = rt.world.clone();
        tokio::spawn(async move {
            let (socket, port) = match rt.pool.bind(ip).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(gameserver = %key.1, error = %e, "no game port");
                    return;
                }
            };
            let alive = world
                .upgrade()
                .and_then(|w| w.lock().ok().map(|mut w| w.set_port(&key, port)))
                .unwrap_or(false);
            if alive {
                game::serve(socket, key.0.clone(), key.1.clone(), rt.sdk.clone(), stop).await;
            }
            rt.pool.release(port);
        });
        token
    }

    /// Records the bound port; false when the GameServer is gone.
    fn set_port(&mut self, key: &Key, port: u16) -> bool {
        match self.gameservers.get_mut(key) {
            Some(r) => {
                r.port = Some(port);
                true
            }
            None => false,
        }
    }

    fn count_state(&self, gs: &GameServer, state: GameServerState) {
        let labels = StateLabels {
            r#type: state.as_str().to_owned(),
            fleet_name: fleet_of(gs).unwrap_or(NO_FLEET).to_owned(),
            namespace: gs.metadata.namespace.clone().unwrap_or_default(),
        };
        self.metrics.gameservers_total.get_or_create(&labels).inc();
    }

    /// Moves a GameServer to `to`, with the metrics, index and event that go with it.
    fn set_state(&mut self, key: &Key, to: GameServerState, now: Instant) {
        let lifecycle = self.cfg.lifecycle.clone();
        let ip = self.cfg.game.ip.to_string();
        let Some(rec) = self.gameservers.get_mut(key) else {
            return;
        };
        let Some(from) = rec.obj.state() else { return };
        if from == to {
            return;
        }
        let elapsed = now.saturating_duration_since(rec.since).as_secs_f64();
        rec.since = now;
        let due = match to {
            GameServerState::Scheduled => Some(now + lifecycle.request_ready_after),
            GameServerState::RequestReady => Some(now + lifecycle.ready_after),
            GameServerState::Shutdown => Some(now + lifecycle.delete_after_shutdown),
            GameServerState::Error | GameServerState::Unhealthy => {
                Some(now + lifecycle.delete_after_failure)
            }
            _ => None,
        };
        let port = rec.port;
        let gs = &mut rec.obj;
        if let Some(st) = gs.status.as_mut() {
            st.state = to;
            if to == GameServerState::Scheduled {
                st.node_name = NODE_NAME.to_owned();
                st.address = ip.clone();
                st.addresses = vec![upsoak_agones::gameserver::NodeAddress {
                    address: ip,
                    type_: "InternalIP".to_owned(),
                }];
                let port_name = gs
                    .spec
                    .ports
                    .first()
                    .map(|p| p.name.clone())
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| "default".to_owned());
                st.ports = port
                    .map(|p| {
                        vec![GameServerStatusPort {
                            name: port_name,
                            port: i32::from(p),
                        }]
                    })
                    .unwrap_or_default();
            }
            if to != GameServerState::Reserved {
                st.reserved_until = None;
            }
        }
        let gs = gs.clone();
        let labels = StateLabels {
            r#type: from.as_str().to_owned(),
            fleet_name: fleet_of(&gs).unwrap_or(NO_FLEET).to_owned(),
            namespace: key.0.clone(),
        };
        self.metrics
            .state_duration
            .get_or_create(&labels)
            .observe(elapsed);
        self.count_state(&gs, to);
        if from == GameServerState::Ready {
            self.unindex_ready(key, &gs);
        }
        if to == GameServerState::Ready {
            self.ready
                .entry(Self::ready_key(key, &gs))
                .or_default()
                .insert(key.1.clone());
        }
        self.set_due(key, due);
        self.mark_dirty(&key.0, &gs);
        self.touch_gameserver(key, Some(to));
    }

    /// Bumps the resourceVersion of a changed GameServer and emits MODIFIED.
    fn touch_gameserver(&mut self, key: &Key, state: Option<GameServerState>) {
        let rv = self.next_rv();
        let Some(rec) = self.gameservers.get_mut(key) else {
            return;
        };
        rec.obj.metadata.resource_version = Some(rv.to_string());
        let gs = rec.obj.clone();
        self.emit(
            Kind::GameServer,
            "MODIFIED",
            &gs.metadata,
            state.or(gs.state()),
            &gs,
        );
    }

    /// Applies an SDK call from a game server process.
    pub fn sdk(&mut self, ns: &str, name: &str, call: SdkCall) -> Result<(), String> {
        let key = (ns.to_owned(), name.to_owned());
        let now = Instant::now();
        let state = self
            .gameservers
            .get(&key)
            .and_then(|r| r.obj.state())
            .ok_or_else(|| format!("gameserver {ns}/{name} not found"))?;
        match call {
            SdkCall::Ready => match state {
                GameServerState::Scheduled | GameServerState::RequestReady => {
                    self.set_state(&key, GameServerState::Ready, now)
                }
                // Agones lets an Allocated or Reserved server mark itself Ready again.
                GameServerState::Allocated | GameServerState::Reserved => {
                    self.set_state(&key, GameServerState::Ready, now)
                }
                GameServerState::Ready => {}
                other => return Err(format!("cannot mark a {other} gameserver Ready")),
            },
            SdkCall::Allocate => match state {
                GameServerState::Ready | GameServerState::Reserved => {
                    self.set_state(&key, GameServerState::Allocated, now);
                    self.count_allocation(&key);
                }
                GameServerState::Allocated => {}
                other => return Err(format!("cannot allocate a {other} gameserver")),
            },
            SdkCall::Shutdown => self.set_state(&key, GameServerState::Shutdown, now),
            SdkCall::Unhealthy => self.set_state(&key, GameServerState::Unhealthy, now),
            SdkCall::Reserve(d) => {
                if let Some(rec) = self.gameservers.get_mut(&key)
                    && let Some(st) = rec.obj.status.as_mut()
                {
                    let until = Timestamp::now()
                        .checked_add(jiff::SignedDuration::try_from(d).map_err(|e| e.to_string())?)
                        .map_err(|e| e.to_string())?;
                    st.reserved_until = Some(until.to_string());
                }
                self.set_state(&key, GameServerState::Reserved, now);
                self.set_due(&key, Some(now + d));
            }
            SdkCall::Label(k, v) | SdkCall::Annotation(k, v) if k.is_empty() => {
                let _ = v;
                return Err("empty key".to_owned());
            }
            SdkCall::Label(k, v) => {
                if let Some(rec) = self.gameservers.get_mut(&key) {
                    rec.obj
                        .metadata
                        .labels
                        .get_or_insert_default()
                        .insert(format!("agones.dev/sdk-{k}"), v);
                }
                self.touch_gameserver(&key, None);
            }
            SdkCall::Annotation(k, v) => {
                if let Some(rec) = self.gameservers.get_mut(&key) {
                    rec.obj
                        .metadata
                        .annotations
                        .get_or_insert_default()
                        .insert(format!("agones.dev/sdk-{k}"), v);
                }
                self.touch_gameserver(&key, None);
            }
            SdkCall::Players {
                count,
                capacity,
                ids,
            } => {
                if let Some(rec) = self.gameservers.get_mut(&key)
                    && let Some(st) = rec.obj.status.as_mut()
                {
                    st.players = Some(upsoak_agones::gameserver::PlayerStatus {
                        count,
                        capacity,
                        ids,
                    });
                }
                self.touch_gameserver(&key, None);
            }
        }
        Ok(())
    }

    fn count_allocation(&mut self, key: &Key) {
        let Some(fleet) = self
            .gameservers
            .get(key)
            .and_then(|r| fleet_of(&r.obj).map(str::to_owned))
        else {
            return;
        };
        self.metrics
            .allocations_total
            .get_or_create(&FleetLabels {
                fleet_name: fleet.clone(),
                namespace: key.0.clone(),
            })
            .inc();
        if let Some(f) = self.fleets.get_mut(&(key.0.clone(), fleet)) {
            f.allocations += 1;
        }
    }

    // ----- allocation -----

    /// Picks a candidate for `gsa` and holds it for this allocation until
    /// [`World::commit_allocation`]: the first selector with a match wins; Packed picks among
    /// the first `pick_window` matches, Distributed among all.
    pub fn pick_for_allocation(
        &mut self,
        ns: &str,
        gsa: &GameServerAllocation,
        selectors: &[(Selector, GameServerState)],
    ) -> Option<(Key, GameServerState)> {
        let distributed = gsa.spec.scheduling.as_deref() == Some("Distributed");
        let window = if distributed {
            usize::MAX
        } else {
            self.cfg.allocation.pick_window
        };
        for (sel, state) in selectors {
            let mut found: Vec<&String> = Vec::new();
            if *state == GameServerState::Ready {
                let pools: Vec<&BTreeSet<String>> = match sel.equality(FLEET_LABEL) {
                    Some(f) => self
                        .ready
                        .get(&(ns.to_owned(), f.to_owned()))
                        .into_iter()
                        .collect(),
                    None => self
                        .ready
                        .iter()
                        .filter(|((n, _), _)| n == ns)
                        .map(|(_, s)| s)
                        .collect(),
                };
                'pools: for pool in pools {
                    for name in pool {
                        let k = (ns.to_owned(), name.clone());
                        if !self.in_flight.contains(&k)
                            && let Some(r) = self.gameservers.get(&k)
                            && sel.matches(r.obj.metadata.labels.as_ref())
                        {
                            found.push(name);
                            if found.len() >= window {
                                break 'pools;
                            }
                        }
                    }
                }
            } else {
                for ((n, name), r) in &self.gameservers {
                    if n == ns
                        && r.obj.state() == Some(*state)
                        && !self.in_flight.contains(&(n.clone(), name.clone()))
                        && sel.matches(r.obj.metadata.labels.as_ref())
                    {
                        found.push(name);
                        if found.len() >= window {
                            break;
                        }
                    }
                }
            }
            if !found.is_empty() {
                let i = self.rng.random_range(0..found.len());
                let key = (ns.to_owned(), found[i].clone());
                self.in_flight.insert(key.clone());
                return Some((key, *state));
            }
        }
        None
    }

    /// Takes a picked candidate if it is still in `expected` state; `None` when it changed
    /// (deleted, failed, allocated through its SDK) since the pick.
    pub fn commit_allocation(
        &mut self,
        key: &Key,
        expected: GameServerState,
        gsa: &GameServerAllocation,
    ) -> Option<GameServer> {
        self.in_flight.remove(key);
        let state = self.gameservers.get(key)?.obj.state()?;
        if state != expected {
            return None;
        }
        if let Some(meta) = &gsa.spec.metadata
            && let Some(rec) = self.gameservers.get_mut(key)
        {
            for (k, v) in meta.labels.iter().flatten() {
                rec.obj
                    .metadata
                    .labels
                    .get_or_insert_default()
                    .insert(k.clone(), v.clone());
            }
            for (k, v) in meta.annotations.iter().flatten() {
                rec.obj
                    .metadata
                    .annotations
                    .get_or_insert_default()
                    .insert(k.clone(), v.clone());
            }
        }
        let now = Instant::now();
        if state == GameServerState::Allocated {
            self.touch_gameserver(key, None);
        } else {
            self.set_state(key, GameServerState::Allocated, now);
        }
        self.count_allocation(key);
        self.gameservers.get(key).map(|r| r.obj.clone())
    }

    // ----- controllers -----

    /// One pass of every controller: the upgrade window, lifecycle, faults, Fleets.
    pub fn tick(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.last_tick).as_secs_f64();
        self.last_tick = now;
        if let Some((until, _)) = &self.upgrade
            && *until <= now
            && let Some((_, target)) = self.upgrade.take()
        {
            tracing::info!(
                version = %target.spec.version,
                gates = %gate_query(&target.gates),
                "install complete: upgrade window closed"
            );
            self.installed = target;
        }
        self.advance_lifecycle(now);
        self.inject_failures(now, dt);
        let growth: f64 = self
            .active_faults()
            .map(|k| match k {
                FaultKind::MemoryGrowth { bytes_per_second } => *bytes_per_second,
                _ => 0.0,
            })
            .sum();
        self.leaked_bytes += growth * dt;
        let stalled = self
            .active_faults()
            .any(|k| matches!(k, FaultKind::ReconcileStall));
        if self.upgrade.is_none() && !stalled {
            self.reconcile_fleets(now);
        }
    }

    fn advance_lifecycle(&mut self, now: Instant) {
        let has_game = self.game.is_some();
        let tick = self.cfg.lifecycle.tick;
        while let Some((due, key)) = self.timers.first().cloned() {
            if due > now {
                break;
            }
            self.timers.remove(&(due, key.clone()));
            let Some(rec) = self.gameservers.get_mut(&key) else {
                continue;
            };
            rec.due = None;
            let Some(state) = rec.obj.state() else {
                continue;
            };
            // Scheduling waits for the game port, as a pod waits for its node port.
            if has_game && state == GameServerState::Creating && rec.port.is_none() {
                self.set_due(&key, Some(now + tick));
                continue;
            }
            match state {
                GameServerState::Creating => self.set_state(&key, GameServerState::Scheduled, now),
                GameServerState::Scheduled => {
                    self.set_state(&key, GameServerState::RequestReady, now)
                }
                GameServerState::RequestReady => self.set_state(&key, GameServerState::Ready, now),
                GameServerState::Reserved => self.set_state(&key, GameServerState::Ready, now),
                GameServerState::Shutdown | GameServerState::Error | GameServerState::Unhealthy => {
                    self.remove_gameserver(&key);
                }
                _ => {}
            }
        }
    }

    fn inject_failures(&mut self, now: Instant, dt: f64) {
        let failures: Vec<(f64, FailureState)> = self
            .active_faults()
            .filter_map(|k| match k {
                FaultKind::GameServerFailures { per_second, state } => Some((*per_second, *state)),
                _ => None,
            })
            .collect();
        for (per_second, state) in failures {
            let p = (per_second * dt).min(1.0);
            let victims: Vec<Key> = self
                .gameservers
                .iter()
                .filter(|(_, r)| {
                    matches!(
                        r.obj.state(),
                        Some(GameServerState::Ready | GameServerState::Allocated)
                    )
                })
                .map(|(k, _)| k.clone())
                .collect::<Vec<_>>()
                .into_iter()
                .filter(|_| self.rng.random::<f64>() < p)
                .collect();
            let to = match state {
                FailureState::Error => GameServerState::Error,
                FailureState::Unhealthy => GameServerState::Unhealthy,
            };
            for key in victims {
                self.set_state(&key, to, now);
            }
        }
    }

    fn reconcile_fleets(&mut self, now: Instant) {
        let dirty = std::mem::take(&mut self.dirty);
        for key in dirty {
            let Some(fleet) = self.fleets.get(&key).map(|r| r.obj.clone()) else {
                continue;
            };
            let list: Vec<(String, GameServerState)> = self
                .members
                .get(&key)
                .into_iter()
                .flatten()
                .filter_map(|n| {
                    let r = self.gameservers.get(&(key.0.clone(), n.clone()))?;
                    Some((n.clone(), r.obj.state()?))
                })
                .collect();
            // Failed and finished servers no longer count: they are replaced at once.
            let alive: Vec<&(String, GameServerState)> = list
                .iter()
                .filter(|(_, s)| {
                    !matches!(
                        s,
                        GameServerState::Shutdown
                            | GameServerState::Error
                            | GameServerState::Unhealthy
                    )
                })
                .collect();
            let want = usize::try_from(fleet.spec.replicas).unwrap_or(0);
            let mut more_to_create = false;
            if alive.len() < want {
                let missing = want - alive.len();
                for _ in 0..missing.min(CREATE_BATCH) {
                    self.spawn_gameserver(&key.0, &fleet, now);
                }
                more_to_create = missing > CREATE_BATCH;
            } else if alive.len() > want {
                // Remove servers not yet Ready first, then Ready ones; never Allocated or Reserved.
                let mut removable: Vec<&(String, GameServerState)> = alive
                    .iter()
                    .copied()
                    .filter(|(_, s)| s.is_before_ready() || *s == GameServerState::Ready)
                    .collect();
                removable.sort_by_key(|(_, s)| *s == GameServerState::Ready);
                let excess = alive.len() - want;
                let doomed: Vec<Key> = removable
                    .iter()
                    .take(excess)
                    .map(|(n, _)| (key.0.clone(), n.clone()))
                    .collect();
                for k in doomed {
                    self.remove_gameserver(&k);
                }
            }
            self.update_fleet_status(&key);
            // Removing servers marked the Fleet again, though it is settled; a big scale-up
            // continues on the next tick, so it never holds the lock for long.
            if more_to_create {
                self.dirty.insert(key.clone());
            } else {
                self.dirty.remove(&key);
            }
        }
    }

    /// Recomputes a Fleet's status from its GameServers; emits MODIFIED only on change.
    fn update_fleet_status(&mut self, key: &Key) {
        let mut st = FleetStatus::default();
        for n in self.members.get(key).into_iter().flatten() {
            let Some(r) = self.gameservers.get(&(key.0.clone(), n.clone())) else {
                continue;
            };
            let Some(state) = r.obj.state() else { continue };
            if matches!(
                state,
                GameServerState::Shutdown | GameServerState::Error | GameServerState::Unhealthy
            ) {
                continue;
            }
            st.replicas += 1;
            match state {
                GameServerState::Ready => st.ready_replicas += 1,
                GameServerState::Allocated => st.allocated_replicas += 1,
                GameServerState::Reserved => st.reserved_replicas += 1,
                _ => {}
            }
        }
        let Some(rec) = self.fleets.get(key) else {
            return;
        };
        st.allocations = Some(rec.allocations);
        st.label_selector = Some(format!("{FLEET_LABEL}={}", key.1));
        if rec.obj.status.as_ref() == Some(&st) {
            return;
        }
        let rv = self.next_rv();
        let Some(rec) = self.fleets.get_mut(key) else {
            return;
        };
        rec.obj.status = Some(st);
        rec.obj.metadata.resource_version = Some(rv.to_string());
        let fleet = rec.obj.clone();
        self.emit(Kind::Fleet, "MODIFIED", &fleet.metadata, None, &fleet);
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
        for ((ns, name), r) in &self.fleets {
            let st = r.obj.status.clone().unwrap_or_default();
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
        GaugeSnapshot {
            gameservers: gs_counts.into_iter().collect(),
            fleet_replicas,
            version: self.installed.spec.version.clone(),
            feature_gates: gate_query(&self.installed.gates),
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

/// The template of Fleets the config seeds: one UDP port, as Agones' simple-game-server.
pub fn default_template() -> upsoak_agones::GameServerTemplateSpec {
    upsoak_agones::GameServerTemplateSpec {
        metadata: None,
        spec: upsoak_agones::GameServerSpec {
            ports: vec![upsoak_agones::GameServerPort {
                name: "default".to_owned(),
                port_policy: Some("Dynamic".to_owned()),
                container_port: Some(7654),
                host_port: None,
                protocol: Some("UDP".to_owned()),
                range: None,
            }],
            template: serde_json::json!({
                "spec": {"containers": [{"name": "simple-game-server",
                    "image": "us-docker.pkg.dev/agones-images/examples/simple-game-server:0.39"}]}
            }),
            ..upsoak_agones::GameServerSpec::default()
        },
    }
}

/// Checks a Fleet the way its CRD schema and Agones' webhook would; 422 with every cause.
pub fn validate_fleet(f: &Fleet, name: &str) -> Result<(), ApiError> {
    let mut causes = Vec::new();
    let mut bad = |field: &str, message: String| {
        causes.push(Cause {
            field: field.to_owned(),
            message,
        })
    };
    if !is_dns_subdomain(name) {
        bad(
            "metadata.name",
            format!(
                "Invalid value: \"{name}\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'"
            ),
        );
    }
    if f.spec.replicas < 0 {
        bad(
            "spec.replicas",
            format!(
                "Invalid value: {}: spec.replicas in body should be greater than or equal to 0",
                f.spec.replicas
            ),
        );
    }
    if let Some(s) = &f.spec.scheduling
        && !matches!(s.as_str(), "Packed" | "Distributed")
    {
        bad(
            "spec.scheduling",
            format!("Unsupported value: \"{s}\": supported values: \"Packed\", \"Distributed\""),
        );
    }
    if let Some(t) = f
        .spec
        .strategy
        .as_ref()
        .and_then(|s| s.get("type"))
        .and_then(|t| t.as_str())
        && !matches!(t, "RollingUpdate" | "Recreate")
    {
        bad(
            "spec.strategy.type",
            format!(
                "Unsupported value: \"{t}\": supported values: \"RollingUpdate\", \"Recreate\""
            ),
        );
    }
    let spec = &f.spec.template.spec;
    if let Some(c) = &spec.container
        && !is_dns_label(c)
    {
        bad(
            "spec.template.spec.container",
            format!("Invalid value: \"{c}\": must match ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"),
        );
    }
    for (i, p) in spec.ports.iter().enumerate() {
        let at = format!("spec.template.spec.ports[{i}]");
        if let Some(pp) = &p.port_policy
            && !matches!(pp.as_str(), "Dynamic" | "Static" | "Passthrough" | "None")
        {
            bad(
                &format!("{at}.portPolicy"),
                format!(
                    "Unsupported value: \"{pp}\": supported values: \"Dynamic\", \"Static\", \"Passthrough\", \"None\""
                ),
            );
        }
        if let Some(pr) = &p.protocol
            && !matches!(pr.as_str(), "UDP" | "TCP" | "TCPUDP")
        {
            bad(
                &format!("{at}.protocol"),
                format!(
                    "Unsupported value: \"{pr}\": supported values: \"UDP\", \"TCP\", \"TCPUDP\""
                ),
            );
        }
        for (field, v) in [
            ("containerPort", p.container_port),
            ("hostPort", p.host_port),
        ] {
            if let Some(v) = v
                && !(1..=65535).contains(&v)
            {
                bad(
                    &format!("{at}.{field}"),
                    format!("Invalid value: {v}: must be between 1 and 65535, inclusive"),
                );
            }
        }
        if p.port_policy.as_deref() == Some("Static") && p.host_port.is_none() {
            bad(
                &format!("{at}.hostPort"),
                "Required value: hostPort is required with portPolicy Static".to_owned(),
            );
        }
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid("fleets", name, causes))
    }
}

/// RFC 1123 subdomain: what Kubernetes accepts as an object name.
pub fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns_label)
}

/// The game protocol's way into the world; holds it weakly so the world can be dropped.
struct SdkBridge(Weak<Mutex<World>>);

impl SdkHandle for SdkBridge {
    fn sdk(&self, namespace: &str, name: &str, call: SdkCall) -> Result<(), String> {
        let world = self
            .0
            .upgrade()
            .ok_or_else(|| "the simulator is shutting down".to_owned())?;
        let mut w = world
            .lock()
            .map_err(|_| "the simulator's state is unavailable".to_owned())?;
        w.sdk(namespace, name, call)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn world(extra: &str) -> World {
        let yaml = format!("{}\n{extra}\n", crate::config::DEFAULT_CONFIG_YAML);
        let cfg = SimConfig::parse(&yaml, "test").unwrap();
        World::new(Arc::new(cfg), SimMetrics::default(), 7)
    }

    /// Ticks until `now` has advanced past every lifecycle delay.
    fn settle(w: &mut World, now: &mut Instant) {
        for _ in 0..40 {
            *now += Duration::from_millis(250);
            w.tick(*now);
        }
    }

    fn states(w: &World) -> BTreeMap<String, GameServerState> {
        w.gameservers
            .iter()
            .filter_map(|((_, n), r)| r.obj.state().map(|s| (n.clone(), s)))
            .collect()
    }

    fn allocate(w: &mut World, fleet: &str) -> Option<String> {
        let gsa = GameServerAllocation::from_fleet(fleet);
        let sel = Selector::from_label_selector(&gsa.spec.selectors[0].selector).unwrap();
        let sels = [(sel, GameServerState::Ready)];
        let (key, _) = w.pick_for_allocation("default", &gsa, &sels)?;
        w.commit_allocation(&key, GameServerState::Ready, &gsa)
            .and_then(|g| g.metadata.name)
    }

    fn set_replicas(w: &mut World, n: i32) {
        let mut f = w.get_fleet("default", "f").unwrap();
        f.spec.replicas = n;
        w.update_fleet("default", "f", f).unwrap();
    }

    #[test]
    fn lifecycle_reaches_ready_and_fleet_status_follows() {
        let mut w = world("fleets: [ { name: f, replicas: 3 } ]");
        let mut now = Instant::now();
        settle(&mut w, &mut now);
        let st = states(&w);
        assert_eq!(st.len(), 3);
        assert!(st.values().all(|s| *s == GameServerState::Ready), "{st:?}");
        let fs = w.get_fleet("default", "f").unwrap().status.unwrap();
        assert_eq!((fs.replicas, fs.ready_replicas), (3, 3));
    }

    #[test]
    fn scale_down_removes_unallocated_first_and_never_an_allocated_one() {
        let mut w = world("fleets: [ { name: f, replicas: 4 } ]");
        let mut now = Instant::now();
        settle(&mut w, &mut now);
        let a = allocate(&mut w, "f").unwrap();
        let b = allocate(&mut w, "f").unwrap();
        set_replicas(&mut w, 0);
        settle(&mut w, &mut now);
        let st = states(&w);
        assert_eq!(st.len(), 2, "{st:?}");
        assert_eq!(st[&a], GameServerState::Allocated);
        assert_eq!(st[&b], GameServerState::Allocated);
        // When they end, they are deleted and not replaced beyond the desired count.
        w.sdk("default", &a, SdkCall::Shutdown).unwrap();
        settle(&mut w, &mut now);
        assert_eq!(states(&w).len(), 1);
    }

    #[test]
    fn a_reserved_server_returns_to_ready_when_its_time_is_up() {
        let mut w = world("fleets: [ { name: f, replicas: 1 } ]");
        let mut now = Instant::now();
        settle(&mut w, &mut now);
        let name = states(&w).into_keys().next().unwrap();
        // SDK calls use the real clock; the test's clock is ahead of it by `settle`.
        w.sdk("default", &name, SdkCall::Reserve(Duration::from_secs(30)))
            .unwrap();
        now += Duration::from_secs(1);
        w.tick(now);
        assert_eq!(states(&w)[&name], GameServerState::Reserved);
        now += Duration::from_secs(30);
        w.tick(now);
        assert_eq!(states(&w)[&name], GameServerState::Ready);
    }

    #[test]
    fn exited_allocated_servers_are_replaced() {
        let mut w = world("fleets: [ { name: f, replicas: 2 } ]");
        let mut now = Instant::now();
        settle(&mut w, &mut now);
        let a = allocate(&mut w, "f").unwrap();
        w.sdk("default", &a, SdkCall::Shutdown).unwrap();
        assert_eq!(states(&w)[&a], GameServerState::Shutdown);
        settle(&mut w, &mut now);
        let st = states(&w);
        assert!(!st.contains_key(&a));
        assert_eq!(st.len(), 2);
        assert!(st.values().all(|s| *s == GameServerState::Ready));
    }

    #[test]
    fn no_ready_server_means_unallocated_and_a_changed_pick_means_a_lost_race() {
        let mut w = world("fleets: [ { name: f, replicas: 1 } ]");
        let mut now = Instant::now();
        settle(&mut w, &mut now);
        let gsa = GameServerAllocation::from_fleet("f");
        let sel = Selector::from_label_selector(&gsa.spec.selectors[0].selector).unwrap();
        let sels = [(sel, GameServerState::Ready)];
        // A picked server is held: a concurrent allocation finds nothing.
        let (k1, _) = w.pick_for_allocation("default", &gsa, &sels).unwrap();
        assert!(w.pick_for_allocation("default", &gsa, &sels).is_none());
        // The game server allocates itself through the SDK before the commit: the race is lost.
        w.sdk("default", &k1.1, SdkCall::Allocate).unwrap();
        assert!(
            w.commit_allocation(&k1, GameServerState::Ready, &gsa)
                .is_none()
        );
        assert!(w.pick_for_allocation("default", &gsa, &sels).is_none());
        // Back to Ready (SDK Ready), it can be picked and committed again.
        w.sdk("default", &k1.1, SdkCall::Ready).unwrap();
        let (k2, _) = w.pick_for_allocation("default", &gsa, &sels).unwrap();
        assert!(
            w.commit_allocation(&k2, GameServerState::Ready, &gsa)
                .is_some()
        );
    }

    #[test]
    fn faults_follow_their_condition() {
        let mut w = world(
            "faults:\n  - { name: slow, kind: allocation_latency, multiplier: 4, added: 10ms, when: { version: 1.59.0 } }\n  - { name: stall, kind: reconcile_stall, when: { gate: { name: PlayerTracking, enabled: true } } }\n  - { name: leak, kind: memory_growth, bytes_per_second: 1000000 }\nupgrade_window: 0ms\nallocation: { latency: 5ms }\nfleets: [ { name: f, replicas: 1 } ]",
        );
        let mut now = Instant::now();
        assert_eq!(w.allocation_plan().unwrap().0, Duration::from_millis(5));
        let before = w.gauge_snapshot().controller_memory_bytes;
        settle(&mut w, &mut now);
        assert!(w.gauge_snapshot().controller_memory_bytes > before + 1_000_000.0);
        w.install(InstallSpec {
            version: "1.59.0".into(),
            feature_gates: BTreeMap::from([("PlayerTracking".into(), true)]),
            tunables: BTreeMap::new(),
        })
        .unwrap();
        now += Duration::from_millis(1);
        w.tick(now);
        assert_eq!(w.installed().spec.version, "1.59.0");
        assert_eq!(w.allocation_plan().unwrap().0, Duration::from_millis(30));
        let active: Vec<(String, bool)> = w.gauge_snapshot().faults;
        assert_eq!(
            active,
            vec![
                ("slow".into(), true),
                ("stall".into(), true),
                ("leak".into(), true)
            ]
        );
        // Reconciliation stalls: a scale-up creates nothing.
        set_replicas(&mut w, 3);
        settle(&mut w, &mut now);
        assert_eq!(states(&w).len(), 1);
    }

    #[test]
    fn failure_faults_move_servers_to_error_and_they_are_replaced() {
        let mut w = world(
            "faults: [ { name: err, kind: game_server_failures, per_second: 1.0, state: Error } ]\nfleets: [ { name: f, replicas: 3 } ]",
        );
        let mut now = Instant::now();
        for _ in 0..12 {
            now += Duration::from_millis(250);
            w.tick(now);
        }
        let snap = w.gauge_snapshot();
        let errors: i64 = snap
            .gameservers
            .iter()
            .filter(|((s, _, _), _)| s == "Error")
            .map(|(_, n)| *n)
            .sum();
        assert!(errors >= 1, "{:?}", snap.gameservers);
        let fs = w.get_fleet("default", "f").unwrap().status.unwrap();
        assert_eq!(fs.replicas, 3, "failed servers are replaced at once");
    }

    #[derive(Clone, Debug)]
    enum Op {
        Scale(i32),
        Allocate,
        Exit(usize),
        Tick(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0..12i32).prop_map(Op::Scale),
            Just(Op::Allocate),
            (0..16usize).prop_map(Op::Exit),
            (1..2000u64).prop_map(Op::Tick),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Whatever happens, an Allocated server disappears only after it ends, and the
        /// state gauges equal what the API lists.
        #[test]
        fn allocated_servers_survive_and_metrics_match_the_api(ops in prop::collection::vec(op(), 1..60)) {
            let mut w = world("fleets: [ { name: f, replicas: 3 } ]");
            let mut now = Instant::now();
            let mut allocated: BTreeSet<String> = BTreeSet::new();
            for op in ops {
                match op {
                    Op::Scale(n) => set_replicas(&mut w, n),
                    Op::Allocate => {
                        if let Some(n) = allocate(&mut w, "f") {
                            allocated.insert(n);
                        }
                    }
                    Op::Exit(i) => {
                        if let Some(n) = allocated.iter().nth(i % allocated.len().max(1)).cloned() {
                            w.sdk("default", &n, SdkCall::Shutdown).unwrap();
                            allocated.remove(&n);
                        }
                    }
                    Op::Tick(ms) => {
                        now += Duration::from_millis(ms);
                        w.tick(now);
                    }
                }
                let st = states(&w);
                for n in &allocated {
                    prop_assert_eq!(st.get(n), Some(&GameServerState::Allocated), "{} vanished", n);
                }
                let mut api: BTreeMap<String, i64> = BTreeMap::new();
                for s in st.values() {
                    *api.entry(s.as_str().to_owned()).or_default() += 1;
                }
                let metric: BTreeMap<String, i64> = w
                    .gauge_snapshot()
                    .gameservers
                    .into_iter()
                    .map(|((s, _, _), n)| (s, n))
                    .collect();
                prop_assert_eq!(api, metric);
            }
        }
    }
}
