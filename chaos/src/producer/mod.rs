//! The Producer: continuous, open-model load on Agones through the Kubernetes API.
//!
//! - Allocations start at `allocation_rate` per second whatever the latency, at random
//!   (`arrivals: poisson`, the default: exponential gaps, as independent players' requests
//!   reach a matchmaker) or on a fixed schedule (`fixed`); at most `max_in_flight` run at once and a start with no room is counted as
//!   dropped, never hidden. Latency is measured from the scheduled start, so a slow server
//!   cannot hide behind a slowed client (coordinated omission).
//! - Each allocated server plays a session over UDP ([`session`]), ending in `EXIT`.
//! - Each Fleet is scaled at random within `[min_replicas, max_replicas]` at random intervals.
//! - `canaries.count` servers are held Allocated across transitions with a heartbeat each
//!   ([`canary`]); a lost one is counted with its reason and replaced.
//! - A failing operation is counted by kind ([`classify`]) and never stops a loop; an
//!   `UnAllocated` answer from a Fleet whose every replica is busy is counted `FleetFull`, the
//!   load exceeding the Fleet, not Agones failing ([`capacity`]).
//! - Every allocation names its owner and this incarnation on the server ([`owner`]): what a
//!   killed incarnation left Allocated is told to `EXIT` (or deleted) at start, and a periodic
//!   sweep releases this incarnation's servers that nothing holds any more.
//! - [`capacity`] computes what the load needs of each Fleet; the sidecar refuses to start
//!   when a Fleet's `min_replicas` cannot hold it.

pub mod address;
pub mod allocator_service;
pub mod canary;
pub mod capacity;
pub mod events;
pub mod owner;
pub mod script;
pub mod session;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use upsoak_agones::allocation::GameServerAllocationStatus;
use upsoak_agones::{AllocationState, Fleet, GameServer, GameServerAllocation};
use upsoak_common::problems::Problems;

pub use canary::{CanaryConfig, Generation};
pub use capacity::{CapacityConfig, OnShort};
use events::{
    AllocationDropped, AllocationEnded, AllocationFinished, AllocationStarted, FleetScaled,
    LatencyWindowClosed, PlayerCapacityRead, ProducerMetrics, SessionEnded, SessionOp,
    SessionStarted,
};
pub use owner::{Owner, ReclaimConfig, Role};
use script::Step;
pub use session::SessionConfig;

/// What the Producer does.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ProducerConfig {
    /// Namespace of the Fleets.
    pub namespace: String,
    /// Fleets to allocate from (in turn) and to scale.
    pub fleets: Vec<FleetLoad>,
    /// Allocations started per second (open model); 0 disables allocation.
    pub allocation_rate: f64,
    /// How starts are spaced: `poisson` (exponential gaps of mean 1/rate, the default) or
    /// `fixed` (exactly 1/rate apart). A fixed schedule phase-locks with Agones' batch loop,
    /// which wakes every `allocationBatchWaitTime` (pkg/gameserverallocations/allocator.go,
    /// `ListenAndAllocate`): at 1/s and the chart's 500 ms every start lands at the same
    /// point of the loop, so each upgrade (new pods, a new loop phase) draws a new constant
    /// wait between 0 and 500 ms, and the latency SLOs judge that draw instead of Agones.
    /// Random arrivals spread the waits over the whole loop, as real matchmakers' do.
    pub arrivals: Arrivals,
    /// Allocations in flight at most; a scheduled start beyond it is dropped and counted.
    pub max_in_flight: usize,
    /// Per-request timeout of an allocation.
    #[serde(with = "humantime_serde")]
    pub allocation_timeout: Duration,
    /// What happens to an allocated server: `play` a session, `exit` at once, or `keep` it
    /// allocated (capacity tests; the Fleet drains).
    pub sessions: SessionMode,
    /// How sessions are played (length, players, timeouts) when `sessions` is `play`.
    pub session: SessionConfig,
    /// Length of a latency window for the HdrHistogram percentiles.
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// Seed for the Producer's random choices.
    pub seed: u64,
    /// Canary sessions held across transitions (`count`, `interval`, `timeout`, `max_age`).
    pub canaries: CanaryConfig,
    /// What the load needs of its Fleets (`replace_time`, `headroom`) and what a Fleet too
    /// small does (`on_short`): see [`capacity`].
    pub capacity: CapacityConfig,
    /// Who owns the servers this Producer allocates (`owner`), and how a killed
    /// incarnation's are released (`exit_grace`, `sweep_every`, `orphan_after`): see [`owner`].
    pub reclaim: ReclaimConfig,
    /// Which of an allocated server's `status.addresses` to connect to after the one equal to
    /// `status.address`, by node address type ([`address`]); `status.address` itself last.
    pub address_types: Vec<address::AddressType>,
    /// Allocations as a matchmaker makes them, through the allocator service's mTLS
    /// endpoint; absent: none ([`allocator_service`]).
    pub allocator_service: Option<allocator_service::AllocatorServiceConfig>,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            namespace: "default".to_owned(),
            fleets: vec![FleetLoad::default()],
            // The shipped load (deploy/base/sidecar.yaml): with default sessions (2-20 s, mean
            // 11 s) and 4 canaries it needs 4 + ⌈1 × (11 + 10) × 1.5⌉ = 36 servers of the
            // default Fleet's 75-100 ([`capacity`]).
            allocation_rate: 1.0,
            arrivals: Arrivals::Poisson,
            max_in_flight: 256,
            allocation_timeout: Duration::from_secs(10),
            sessions: SessionMode::Play,
            session: SessionConfig::default(),
            window: Duration::from_secs(15),
            seed: 1,
            canaries: CanaryConfig::default(),
            capacity: CapacityConfig::default(),
            reclaim: ReclaimConfig::default(),
            address_types: address::default_order(),
            allocator_service: None,
        }
    }
}

/// How allocation starts are spaced in time.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Arrivals {
    /// Exponential gaps of mean `1 / allocation_rate` (a Poisson process), from `seed`.
    Poisson,
    /// Exactly `1 / allocation_rate` apart.
    Fixed,
}

/// What the Producer does with a server it allocated.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SessionMode {
    /// Players join and leave over the game protocol, then EXIT.
    Play,
    /// EXIT at once.
    Exit,
    /// Leave it allocated.
    Keep,
}

/// One Fleet's share of the load.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FleetLoad {
    /// The Fleet's name, in `namespace`.
    pub name: String,
    /// Fewest replicas a scale request asks for; at least what the load needs of this Fleet
    /// ([`capacity`]), or the configuration is refused (`capacity.on_short`).
    pub min_replicas: i32,
    /// Most replicas a scale request asks for.
    pub max_replicas: i32,
    /// Shortest time between two scale requests.
    #[serde(with = "humantime_serde")]
    pub scale_every_min: Duration,
    /// Longest time between two scale requests; 0 disables scaling.
    #[serde(with = "humantime_serde")]
    pub scale_every_max: Duration,
}

impl Default for FleetLoad {
    fn default() -> Self {
        FleetLoad {
            name: "simple-game-server".to_owned(),
            min_replicas: 75,
            max_replicas: 100,
            scale_every_min: Duration::from_secs(20),
            scale_every_max: Duration::from_secs(60),
        }
    }
}

impl ProducerConfig {
    /// Every problem, with its path below this section.
    pub fn problems(&self) -> Problems {
        let mut p = Problems::new();
        if !(self.allocation_rate.is_finite() && self.allocation_rate >= 0.0) {
            p.push(
                "allocation_rate",
                format!("{} is not a rate >= 0", self.allocation_rate),
            );
        }
        if self.allocation_rate > 0.0 && self.fleets.is_empty() {
            p.push("fleets", "at least one Fleet is needed to allocate from");
        }
        if self.max_in_flight == 0 {
            p.push("max_in_flight", "must be at least 1");
        }
        for (i, f) in self.fleets.iter().enumerate() {
            if f.name.is_empty() {
                p.push(format!("fleets[{i}].name"), "must not be empty");
            }
            if f.min_replicas < 0 || f.min_replicas > f.max_replicas {
                p.push(
                    format!("fleets[{i}]"),
                    format!(
                        "replicas range {}..={} is empty or negative",
                        f.min_replicas, f.max_replicas
                    ),
                );
            }
            if f.scale_every_min > f.scale_every_max {
                p.push(
                    format!("fleets[{i}]"),
                    "scale_every_min is above scale_every_max",
                );
            }
        }
        p.extend_under("session", self.session.problems());
        p.extend_under("canaries", self.canaries.problems(&self.fleets));
        let capacity = self.capacity.problems();
        let sized = capacity.is_empty();
        p.extend_under("capacity", capacity);
        if sized && self.capacity.on_short == OnShort::Refuse {
            for (n, why) in capacity::short_fleets(self) {
                p.push(format!("fleets[{}].min_replicas", n.index), why);
            }
        }
        p.extend_under("reclaim", self.reclaim.problems());
        if let Some(a) = &self.allocator_service {
            p.extend_under("allocator_service", a.problems());
        }
        if self.window.is_zero() {
            p.push("window", "must be above zero");
        }
        p
    }
}

/// The kind of a failed Kubernetes call, as a bounded metric label.
pub fn classify(e: &kube::Error) -> &'static str {
    match e {
        kube::Error::Api(s) => match s.code {
            503 => "error_unavailable",
            409 => "error_conflict",
            429 => "error_throttled",
            404 => "error_not_found",
            400..=499 => "error_rejected",
            _ => "error_server",
        },
        kube::Error::SerdeError(_) => "error_decode",
        kube::Error::HyperError(_) | kube::Error::Service(_) => "error_connection",
        _ => "error_other",
    }
}

/// Runs the Producer until `shutdown`: the allocation schedule, the Fleet scalers and the
/// window rotation. Returns when every loop has stopped and sessions were told to EXIT; the
/// first loop that panicked is an error. Without a Wanderer's generation, canaries never
/// reach their end of life (see [`run_with`]).
pub async fn run(
    client: kube::Client,
    cfg: ProducerConfig,
    metrics: ProducerMetrics,
    shutdown: CancellationToken,
) -> Result<(), tokio::task::JoinError> {
    run_with(client, cfg, metrics, None, shutdown).await
}

/// [`run`], with the Wanderer's `generation`: a canary ends at `canaries.max_age` only once
/// it changed during the canary's life.
pub async fn run_with(
    client: kube::Client,
    cfg: ProducerConfig,
    metrics: ProducerMetrics,
    generation: Option<Generation>,
    shutdown: CancellationToken,
) -> Result<(), tokio::task::JoinError> {
    let mut tasks = tokio::task::JoinSet::new();
    let owner = Owner::new(&cfg.reclaim.owner);
    tasks.spawn(owner::run(
        Api::namespaced(client.clone(), &cfg.namespace),
        owner.clone(),
        cfg.reclaim.clone(),
        // Kept servers are left Allocated on purpose: only a restart reclaims them.
        cfg.sessions != SessionMode::Keep,
        metrics.clone(),
        shutdown.clone(),
    ));
    if cfg.canaries.count > 0 {
        tasks.spawn(canary::run(
            client.clone(),
            owner.clone(),
            cfg.namespace.clone(),
            cfg.fleets.iter().map(|f| f.name.clone()).collect(),
            cfg.canaries.clone(),
            cfg.address_types.clone(),
            metrics.clone(),
            generation,
            shutdown.clone(),
        ));
    }
    for (i, f) in cfg.fleets.iter().enumerate() {
        if f.scale_every_max.is_zero() {
            continue;
        }
        let api: Api<Fleet> = Api::namespaced(client.clone(), &cfg.namespace);
        tasks.spawn(scale_loop(
            api,
            f.clone(),
            cfg.seed.wrapping_add(i as u64 + 1),
            metrics.clone(),
            shutdown.clone(),
        ));
    }
    if cfg.allocation_rate > 0.0 {
        tasks.spawn(allocation_loop(
            client.clone(),
            owner.clone(),
            cfg.clone(),
            metrics.clone(),
            shutdown.clone(),
        ));
    }
    if let Some(a) = &cfg.allocator_service {
        tasks.spawn(allocator_service::run(
            a.clone(),
            cfg.clone(),
            owner.clone(),
            metrics.clone(),
            shutdown.clone(),
        ));
    }
    tasks.spawn(window_loop(cfg.window, metrics, shutdown.clone()));
    let mut crashed = None;
    while let Some(r) = tasks.join_next().await {
        if let Err(e) = r {
            // A crashed loop is a bug, not load: stop everything so the sidecar exits with a
            // runtime failure instead of soaking on with part of its load gone.
            shutdown.cancel();
            crashed.get_or_insert(e);
        }
    }
    crashed.map_or(Ok(()), Err)
}

async fn window_loop(window: Duration, metrics: ProducerMetrics, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(window);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {
                LatencyWindowClosed { stats: metrics.rotate_window() }.emit(&metrics);
            }
        }
    }
}

async fn scale_loop(
    api: Api<Fleet>,
    f: FleetLoad,
    seed: u64,
    metrics: ProducerMetrics,
    shutdown: CancellationToken,
) {
    let mut rng = StdRng::seed_from_u64(seed);
    loop {
        let wait = rng.random_range(f.scale_every_min..=f.scale_every_max);
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        let replicas = rng.random_range(f.min_replicas..=f.max_replicas);
        let patch = Patch::Merge(serde_json::json!({"spec": {"replicas": replicas}}));
        let result = match api
            .patch_scale(&f.name, &PatchParams::default(), &patch)
            .await
        {
            Ok(_) => "ok",
            Err(e) => classify(&e),
        };
        FleetScaled {
            fleet: &f.name,
            replicas,
            result,
        }
        .emit(&metrics);
    }
}

async fn allocation_loop(
    client: kube::Client,
    owner: Owner,
    cfg: ProducerConfig,
    metrics: ProducerMetrics,
    shutdown: CancellationToken,
) {
    let api: Api<GameServerAllocation> = Api::namespaced(client.clone(), &cfg.namespace);
    let gameservers: Api<GameServer> = Api::namespaced(client.clone(), &cfg.namespace);
    let fleets: Api<Fleet> = Api::namespaced(client, &cfg.namespace);
    let steps = Arc::new(cfg.session.steps());
    let permits = Arc::new(Semaphore::new(cfg.max_in_flight));
    let sessions = Arc::new(Semaphore::new(cfg.session.max_sessions.max(1)));
    let mut gap = gaps(cfg.arrivals, cfg.allocation_rate, cfg.seed);
    let seq = Arc::new(AtomicU64::new(0));
    let cfg = Arc::new(cfg);
    let mut next = Instant::now();
    let mut in_flight = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep_until(next) => {}
        }
        // Every slot up to now starts now: a late wake-up catches up instead of thinning the load.
        let now = Instant::now();
        while next <= now {
            let scheduled = next;
            next += gap();
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                AllocationDropped.emit(&metrics);
                continue;
            };
            let n = seq.fetch_add(1, Ordering::Relaxed);
            let fleet = cfg.fleets[(n as usize) % cfg.fleets.len()].name.clone();
            let job = AllocationJob {
                api: api.clone(),
                gameservers: gameservers.clone(),
                fleets: fleets.clone(),
                owner: owner.clone(),
                steps: steps.clone(),
                cfg: cfg.clone(),
                metrics: metrics.clone(),
                sessions: sessions.clone(),
                shutdown: shutdown.clone(),
            };
            AllocationStarted { fleet: &fleet }.emit(&metrics);
            in_flight.spawn(async move {
                job.run(fleet, scheduled, n).await;
                AllocationEnded.emit(&job.metrics);
                drop(permit);
            });
        }
        // Reap finished tasks so the set does not grow without bound.
        while in_flight.try_join_next().is_some() {}
    }
    // Let allocations and sessions in flight finish (sessions send EXIT on shutdown).
    while in_flight.join_next().await.is_some() {}
}

/// The gaps between allocation starts at `rate` per second (> 0): exponential of mean 1/rate
/// from `seed` (Poisson arrivals) or exactly 1/rate (fixed).
fn gaps(arrivals: Arrivals, rate: f64, seed: u64) -> impl FnMut() -> Duration {
    let period = 1.0 / rate;
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed_a110c);
    move || match arrivals {
        Arrivals::Fixed => Duration::from_secs_f64(period),
        // Inverse transform of the exponential distribution; 1 - u is in (0, 1], so the gap
        // is finite and >= 0.
        Arrivals::Poisson => {
            let u: f64 = rng.random();
            Duration::from_secs_f64(-(1.0 - u).ln() * period)
        }
    }
}

struct AllocationJob {
    api: Api<GameServerAllocation>,
    gameservers: Api<GameServer>,
    fleets: Api<Fleet>,
    owner: Owner,
    steps: Arc<Vec<Step>>,
    cfg: Arc<ProducerConfig>,
    metrics: ProducerMetrics,
    sessions: Arc<Semaphore>,
    shutdown: CancellationToken,
}

impl AllocationJob {
    async fn run(&self, fleet: String, scheduled: Instant, n: u64) {
        let request = self.owner.allocation(&fleet, Role::Session);
        let sent = tokio::time::timeout(
            self.cfg.allocation_timeout,
            self.api.create(&PostParams::default(), &request),
        )
        .await;
        let latency = scheduled.elapsed();
        let (mut result, status) = match sent {
            Err(_) => ("error_timeout", None),
            Ok(Err(e)) => (classify(&e), None),
            Ok(Ok(gsa)) => match gsa.status {
                Some(st) => (st.state.as_str(), Some(st)),
                None => ("error_decode", None),
            },
        };
        if status
            .as_ref()
            .is_some_and(|s| s.state == AllocationState::UnAllocated)
        {
            result = self.unallocated_result(&fleet).await;
        }
        AllocationFinished {
            fleet: &fleet,
            result,
            latency,
        }
        .emit(&self.metrics);
        let Some(st) = status.filter(|s| s.state == AllocationState::Allocated) else {
            return;
        };
        if self.cfg.sessions == SessionMode::Keep {
            return;
        }
        // Held until the session's EXIT; a server left Allocated past it is swept.
        let _tracked = self.owner.track(&st.game_server_name);
        let Some(addr) = resolve(&st, &self.cfg.address_types).await else {
            SessionOp {
                op: "connect",
                result: "no_address",
                rtt: None,
            }
            .emit(&self.metrics);
            return;
        };
        // With no room for another session (or sessions off), the server is released at once.
        let permit = if self.cfg.sessions == SessionMode::Play {
            self.sessions.clone().try_acquire_owned().ok()
        } else {
            None
        };
        let (steps, capacity) = if permit.is_some() {
            let capacity = if self.cfg.session.player_tracking {
                self.player_capacity(&st.game_server_name).await
            } else {
                0
            };
            (self.steps.as_slice(), capacity)
        } else {
            (&[Step::Exit][..], 0)
        };
        SessionStarted { addr }.emit(&self.metrics);
        session::play(
            addr,
            &self.cfg.session,
            steps,
            capacity,
            self.cfg.seed ^ n.rotate_left(17),
            &self.metrics,
            &self.shutdown,
        )
        .await;
        SessionEnded { addr }.emit(&self.metrics);
        drop(permit);
    }
}

impl AllocationJob {
    /// `FleetFull` or `UnAllocated` for an `UnAllocated` answer from `fleet`, by the Fleet
    /// read now ([`capacity::classify_unallocated`]); the latency was taken before this read.
    async fn unallocated_result(&self, fleet: &str) -> &'static str {
        let read = tokio::time::timeout(self.cfg.allocation_timeout, self.fleets.get(fleet)).await;
        capacity::classify_unallocated(read.ok().and_then(Result::ok).as_ref())
    }

    /// The allocated server's `status.players.capacity` (0 without PlayerTracking, or when the
    /// GameServer cannot be read: its player steps are then skipped).
    async fn player_capacity(&self, name: &str) -> i64 {
        let read =
            tokio::time::timeout(self.cfg.allocation_timeout, self.gameservers.get(name)).await;
        let (capacity, result) = match read {
            Err(_) => (0, "error_timeout"),
            Ok(Err(e)) => (0, classify(&e)),
            Ok(Ok(gs)) => (
                gs.status
                    .and_then(|s| s.players)
                    .map_or(0, |p| p.capacity.max(0)),
                "ok",
            ),
        };
        PlayerCapacityRead {
            gameserver: name,
            capacity,
            result,
        }
        .emit();
        capacity
    }
}

/// Where to reach an allocated server: its first port at the address [`address::pick`]
/// chooses (`status.address`'s entry in `status.addresses`, then `order`'s types, then
/// `status.address` resolved); `None` without a port or an address that resolves.
pub(crate) async fn resolve(
    st: &GameServerAllocationStatus,
    order: &[address::AddressType],
) -> Option<SocketAddr> {
    let port = st.ports.first().and_then(|p| u16::try_from(p.port).ok())?;
    address::pick(&st.address, &st.addresses, order, port).await
}

/// Why the Producer could not build its Kubernetes client.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("`{0}` is not a URL")]
    BadUrl(String),
    #[error("no Kubernetes configuration found (kubeconfig or in-cluster)")]
    Infer(#[source] kube::config::InferConfigError),
    #[error("cannot build the Kubernetes client")]
    Build(#[source] kube::Error),
}

/// A kube client for the Producer: from `--kube-server URL`, else kubeconfig or in-cluster.
/// kube-rs' own retry of 503/429 is switched off so an upgrade window shows as errors.
pub async fn client(server: Option<&str>) -> Result<kube::Client, ClientError> {
    client_with_timeout(server, DEFAULT_KUBE_TIMEOUT).await
}

/// Default connect, read and write timeout of the Producer's Kubernetes requests.
pub const DEFAULT_KUBE_TIMEOUT: Duration = Duration::from_secs(10);

/// [`client`] whose every request is bounded by `timeout` (kube leaves the read timeout unset,
/// so a hung API server would hold a Fleet scaling call forever).
pub async fn client_with_timeout(
    server: Option<&str>,
    timeout: Duration,
) -> Result<kube::Client, ClientError> {
    // Built in one workspace with the agent, rustls has two crypto providers compiled in and
    // needs the process-wide one named. Installing twice is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut config = match server {
        Some(url) => kube::Config::new(
            url.parse()
                .map_err(|_| ClientError::BadUrl(url.to_owned()))?,
        ),
        None => kube::Config::infer().await.map_err(ClientError::Infer)?,
    };
    config.default_retry = false;
    config.connect_timeout = Some(timeout);
    config.read_timeout = Some(timeout);
    config.write_timeout = Some(timeout);
    kube::Client::try_from(config).map_err(ClientError::Build)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poisson_gaps_average_one_over_the_rate_and_spread_over_a_batch_loop() {
        let mut gap = gaps(Arrivals::Poisson, 1.0, 7);
        let g: Vec<f64> = (0..20_000).map(|_| gap().as_secs_f64()).collect();
        let mean = g.iter().sum::<f64>() / g.len() as f64;
        assert!((mean - 1.0).abs() < 0.03, "mean gap {mean}");
        // An exponential's standard deviation equals its mean: not a fixed schedule.
        let var = g.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / g.len() as f64;
        assert!((var.sqrt() - 1.0).abs() < 0.05, "sd {}", var.sqrt());
        // Start times land all over a 500 ms loop, not at one phase of it.
        let mut t = 0.0;
        let mut bins = [0usize; 5];
        for x in &g {
            t += x;
            bins[((t % 0.5) / 0.1) as usize % 5] += 1;
        }
        assert!(bins.iter().all(|&b| b > 3_000), "{bins:?}");
        let mut fixed = gaps(Arrivals::Fixed, 2.0, 7);
        assert!((0..10).all(|_| fixed() == Duration::from_millis(500)));
    }
    use upsoak_agones::gameserver::GameServerStatusPort;

    #[tokio::test]
    async fn the_first_port_at_the_picked_address_and_none_without_a_port() {
        let mut st = GameServerAllocationStatus {
            state: AllocationState::Allocated,
            game_server_name: "gs".into(),
            ports: vec![GameServerStatusPort {
                name: "default".into(),
                port: 7000,
            }],
            address: "10.0.0.7".into(),
            addresses: Vec::new(),
            node_name: "n".into(),
            source: "local".into(),
        };
        let order = address::default_order();
        assert_eq!(
            resolve(&st, &order).await,
            Some("10.0.0.7:7000".parse().unwrap())
        );
        st.ports.clear();
        assert_eq!(resolve(&st, &order).await, None);
    }
}
