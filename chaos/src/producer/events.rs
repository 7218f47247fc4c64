//! The Producer's events and the metrics they feed: each operation is one typed event whose
//! `emit` writes the log line and updates the metrics. The metric handles are private to this
//! module, so nothing else can count.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hdrhistogram::Histogram as Hdr;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use upsoak_common::names::producer as names;

use super::canary::LossReason;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpLabels {
    op: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpOnly {
    op: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QuantileLabels {
    quantile: String,
}

/// The first bucket edge of the Producer's allocation duration histogram, in seconds.
pub const ALLOCATION_BUCKET_START: f64 = 0.001;
/// Each bucket edge is this factor above the one before (10 % apart).
pub const ALLOCATION_BUCKET_FACTOR: f64 = 1.1;
/// Bucket edges: 1 ms to 1.1^108 ms ≈ 29.5 s, then `+Inf`.
pub const ALLOCATION_BUCKET_COUNT: u16 = 109;

/// The Producer's own allocation duration histogram, finer than Agones' (issue 24 item 5).
/// Agones' `agones_gameserver_allocations_duration_seconds` edges (…0.05, 0.075, 0.1, 0.25…)
/// make an interpolated p99 jump by up to 150 ms when the distribution's top sits near an
/// edge, so the judged latency moved with the arrival phase, not the change. Exponential
/// edges 10 % apart from 1 ms to ~30 s keep any quantile read from it within 10 % of the true
/// one, at 109 edges + `+Inf` + `_sum` + `_count` = 112 series per `result` label value
/// (Agones' own metric keeps its buckets: `upsoak_agones::metrics::ALLOCATION_DURATION_BUCKETS`).
fn allocation_histogram() -> Histogram {
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        ALLOCATION_BUCKET_START,
        ALLOCATION_BUCKET_FACTOR,
        ALLOCATION_BUCKET_COUNT,
    ))
}
fn gap_histogram() -> Histogram {
    Histogram::new([
        0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0,
    ])
}
fn rtt_histogram() -> Histogram {
    Histogram::new([
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    ])
}

/// Latencies of the current window, for percentiles a report can quote (HdrHistogram keeps
/// them exact to 3 significant digits from 1 µs to 1 h).
#[derive(Debug)]
pub struct LatencyWindow {
    current: Hdr<u64>,
}

impl LatencyWindow {
    fn new() -> Option<Self> {
        Hdr::new_with_bounds(1, 3_600_000_000, 3)
            .ok()
            .map(|current| LatencyWindow { current })
    }

    fn record(&mut self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1);
        // Values above the bound are clamped rather than lost.
        let _ = self.current.record(us.min(self.current.high()));
    }

    /// The window's (p50, p90, p99, p999, max, count) in seconds, and a fresh window.
    pub fn rotate(&mut self) -> WindowStats {
        let h = &self.current;
        let q = |p: f64| h.value_at_quantile(p) as f64 / 1e6;
        let stats = WindowStats {
            p50: q(0.5),
            p90: q(0.9),
            p99: q(0.99),
            p999: q(0.999),
            max: h.max() as f64 / 1e6,
            count: h.len(),
        };
        self.current.reset();
        stats
    }
}

/// Percentiles of one window.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct WindowStats {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub count: u64,
}

/// Every metric the Producer exports; only the events below touch them.
#[derive(Clone)]
pub struct ProducerMetrics {
    allocations: Family<ResultLabels, Counter>,
    allocation_duration: Family<ResultLabels, Histogram, fn() -> Histogram>,
    fleet_scale: Family<ResultLabels, Counter>,
    session_ops: Family<OpLabels, Counter>,
    session_op_duration: Family<OpOnly, Histogram, fn() -> Histogram>,
    dropped: Counter,
    in_flight: Gauge,
    sessions_active: Gauge,
    window_latency: Family<QuantileLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    window: Arc<Mutex<Option<LatencyWindow>>>,
    canaries_active: Gauge,
    canaries_lost: Family<ReasonLabels, Counter>,
    canary_gap: Histogram,
    canary_silence: Gauge<f64, std::sync::atomic::AtomicU64>,
    canary_oldest: Gauge<f64, std::sync::atomic::AtomicU64>,
    canary_allocations: Family<ResultLabels, Counter>,
    reclaimed: Family<ReasonLabels, Counter>,
    allocator_service: super::allocator_service::AllocatorServiceMetrics,
}

impl Default for ProducerMetrics {
    fn default() -> Self {
        ProducerMetrics {
            allocations: Family::default(),
            allocation_duration: Family::new_with_constructor(allocation_histogram),
            fleet_scale: Family::default(),
            session_ops: Family::default(),
            session_op_duration: Family::new_with_constructor(rtt_histogram),
            dropped: Counter::default(),
            in_flight: Gauge::default(),
            sessions_active: Gauge::default(),
            window_latency: Family::default(),
            window: Arc::new(Mutex::new(LatencyWindow::new())),
            canaries_active: Gauge::default(),
            canaries_lost: Family::default(),
            canary_gap: gap_histogram(),
            canary_silence: Gauge::default(),
            canary_oldest: Gauge::default(),
            canary_allocations: Family::default(),
            reclaimed: Family::default(),
            allocator_service: Default::default(),
        }
    }
}

impl ProducerMetrics {
    /// The allocator-service path's metrics ([`super::allocator_service`]).
    pub fn allocator_service(&self) -> &super::allocator_service::AllocatorServiceMetrics {
        &self.allocator_service
    }

    pub fn register(&self, r: &mut Registry) {
        self.allocator_service.register(r);
        r.register(
            names::ALLOCATIONS,
            "Allocations the producer started, by result (Allocated, FleetFull: UnAllocated while every replica of the Fleet was busy, UnAllocated, Contention or an error kind)",
            self.allocations.clone(),
        );
        r.register(
            names::ALLOCATION_DURATION_SECONDS,
            "Allocation latency from the scheduled start (open model), by result",
            self.allocation_duration.clone(),
        );
        r.register(
            names::FLEET_SCALE,
            "Fleet scale requests, by result",
            self.fleet_scale.clone(),
        );
        r.register(
            names::SESSION_OPS,
            "Game protocol commands sent in sessions, by command and result",
            self.session_ops.clone(),
        );
        r.register(
            names::SESSION_OP_DURATION_SECONDS,
            "Round trip of game protocol commands, by command",
            self.session_op_duration.clone(),
        );
        r.register(
            names::DROPPED,
            "Scheduled allocations not started because the in-flight limit was reached",
            self.dropped.clone(),
        );
        r.register(
            names::IN_FLIGHT,
            "Allocations in flight",
            self.in_flight.clone(),
        );
        r.register(
            names::SESSIONS_ACTIVE,
            "Game sessions being played",
            self.sessions_active.clone(),
        );
        r.register(
            names::ALLOCATION_WINDOW_LATENCY_SECONDS,
            "Allocation latency percentiles of the last completed window (HdrHistogram)",
            self.window_latency.clone(),
        );
        r.register(
            names::CANARIES_ACTIVE,
            "Canaries held: GameServers kept Allocated with a live session across transitions",
            self.canaries_active.clone(),
        );
        // Every reason from the start, so an increase is seen from 0.
        for reason in LossReason::ALL {
            let _ = self.canaries_lost.get_or_create(&ReasonLabels {
                reason: reason.as_str(),
            });
        }
        r.register(
            names::CANARIES_LOST,
            "Canaries lost, by reason (deleted, left_allocated, timeout, restarted, orphaned)",
            self.canaries_lost.clone(),
        );
        r.register(
            names::CANARY_HEARTBEAT_GAP_SECONDS,
            "Time between two consecutive answered heartbeats of one canary",
            self.canary_gap.clone(),
        );
        r.register(
            names::CANARY_LONGEST_SILENCE_SECONDS,
            "Longest current time since the last answered heartbeat among active canaries",
            self.canary_silence.clone(),
        );
        r.register(
            names::CANARY_OLDEST_AGE_SECONDS,
            "Age of the oldest active canary",
            self.canary_oldest.clone(),
        );
        for reason in RECLAIM_REASONS {
            let _ = self.reclaimed.get_or_create(&ReasonLabels { reason });
        }
        r.register(
            names::RECLAIMED,
            "GameServers left Allocated by a killed incarnation of the producer (or untracked by this one) and released, by reason (exit, deleted)",
            self.reclaimed.clone(),
        );
        r.register(
            names::CANARY_ALLOCATIONS,
            "Allocations made for canaries, by result",
            self.canary_allocations.clone(),
        );
    }

    /// Orphaned GameServers released with `reason` (`exit` or `deleted`) so far.
    pub fn reclaimed(&self, reason: &str) -> u64 {
        RECLAIM_REASONS
            .into_iter()
            .find(|r| *r == reason)
            .and_then(|reason| self.reclaimed.get(&ReasonLabels { reason }))
            .map(|c| c.get())
            .unwrap_or(0)
    }

    /// Canaries held now.
    pub fn canaries_active(&self) -> i64 {
        self.canaries_active.get()
    }

    /// Canaries lost with `reason` so far.
    pub fn canaries_lost(&self, reason: LossReason) -> u64 {
        self.canaries_lost
            .get(&ReasonLabels {
                reason: reason.as_str(),
            })
            .map(|c| c.get())
            .unwrap_or(0)
    }

    /// Closes the current latency window and returns its percentiles (exported by
    /// [`LatencyWindowClosed`]).
    pub fn rotate_window(&self) -> WindowStats {
        match self.window.lock() {
            Ok(mut w) => w.as_mut().map(LatencyWindow::rotate).unwrap_or_default(),
            Err(_) => WindowStats::default(),
        }
    }

    /// Allocations counted with `result` so far.
    pub fn allocations(&self, result: &str) -> u64 {
        self.allocations
            .get(&ResultLabels {
                result: result.to_owned(),
            })
            .map(|c| c.get())
            .unwrap_or(0)
    }

    /// Scheduled allocations dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.get()
    }
}

/// One allocation finished (or failed), timed from its scheduled start.
#[derive(Debug)]
pub struct AllocationFinished<'a> {
    pub fleet: &'a str,
    pub result: &'a str,
    pub latency: Duration,
}

impl AllocationFinished<'_> {
    pub fn emit(&self, m: &ProducerMetrics) {
        tracing::debug!(
            fleet = self.fleet,
            result = self.result,
            latency_ms = self.latency.as_secs_f64() * 1e3,
            "allocation"
        );
        let labels = ResultLabels {
            result: self.result.to_owned(),
        };
        m.allocations.get_or_create(&labels).inc();
        m.allocation_duration
            .get_or_create(&labels)
            .observe(self.latency.as_secs_f64());
        if let Ok(mut w) = m.window.lock()
            && let Some(w) = w.as_mut()
        {
            w.record(self.latency);
        }
    }
}

/// A scheduled allocation was skipped: the in-flight limit was reached.
#[derive(Debug)]
pub struct AllocationDropped;

impl AllocationDropped {
    pub fn emit(&self, m: &ProducerMetrics) {
        tracing::trace!("allocation dropped: in-flight limit reached");
        m.dropped.inc();
    }
}

/// A Fleet scale request finished.
#[derive(Debug)]
pub struct FleetScaled<'a> {
    pub fleet: &'a str,
    pub replicas: i32,
    pub result: &'a str,
}

impl FleetScaled<'_> {
    pub fn emit(&self, m: &ProducerMetrics) {
        tracing::info!(
            fleet = self.fleet,
            replicas = self.replicas,
            result = self.result,
            "fleet scaled"
        );
        m.fleet_scale
            .get_or_create(&ResultLabels {
                result: self.result.to_owned(),
            })
            .inc();
    }
}

/// One game protocol command of a session.
#[derive(Debug)]
pub struct SessionOp<'a> {
    pub op: &'a str,
    pub result: &'a str,
    pub rtt: Option<Duration>,
}

impl SessionOp<'_> {
    pub fn emit(&self, m: &ProducerMetrics) {
        tracing::trace!(op = self.op, result = self.result, "session op");
        m.session_ops
            .get_or_create(&OpLabels {
                op: self.op.to_owned(),
                result: self.result.to_owned(),
            })
            .inc();
        if let Some(rtt) = self.rtt {
            m.session_op_duration
                .get_or_create(&OpOnly {
                    op: self.op.to_owned(),
                })
                .observe(rtt.as_secs_f64());
        }
    }
}

/// The allocated server's player capacity was read, to know whether player steps may be played
/// (a log line only: it is not a game protocol command).
#[derive(Debug)]
pub struct PlayerCapacityRead<'a> {
    pub gameserver: &'a str,
    pub capacity: i64,
    pub result: &'a str,
}

impl PlayerCapacityRead<'_> {
    pub fn emit(&self) {
        tracing::trace!(
            gameserver = self.gameserver,
            capacity = self.capacity,
            result = self.result,
            "player capacity read"
        );
    }
}

/// A scheduled allocation started; it holds an in-flight slot until [`AllocationEnded`].
#[derive(Debug)]
pub struct AllocationStarted<'a> {
    pub fleet: &'a str,
}

impl AllocationStarted<'_> {
    pub fn emit(&self, m: &ProducerMetrics) {
        tracing::trace!(fleet = self.fleet, "allocation started");
        m.in_flight.inc();
    }
}

/// An allocation, and the session it led to, are over: its in-flight slot is free.
#[derive(Debug)]
pub struct AllocationEnded;

impl AllocationEnded {
    pub fn emit(&self, m: &ProducerMetrics) {
        tracing::trace!("allocation ended");
        m.in_flight.dec();
    }
}

/// A session started on an allocated server.
#[derive(Debug)]
pub struct SessionStarted {
    pub addr: SocketAddr,
}

impl SessionStarted {
    pub fn emit(&self, m: &ProducerMetrics) {
        tracing::trace!(addr = %self.addr, "session started");
        m.sessions_active.inc();
    }
}

/// A session ended (the server was told to EXIT).
#[derive(Debug)]
pub struct SessionEnded {
    pub addr: SocketAddr,
}

impl SessionEnded {
    pub fn emit(&self, m: &ProducerMetrics) {
        tracing::trace!(addr = %self.addr, "session ended");
        m.sessions_active.dec();
    }
}

/// A latency window closed: its percentiles are logged and exported together.
#[derive(Debug)]
pub struct LatencyWindowClosed {
    pub stats: WindowStats,
}

impl LatencyWindowClosed {
    pub fn emit(&self, m: &ProducerMetrics) {
        let s = &self.stats;
        tracing::info!(
            count = s.count,
            p50_ms = s.p50 * 1e3,
            p99_ms = s.p99 * 1e3,
            max_ms = s.max * 1e3,
            "allocation latency window"
        );
        for (q, v) in [
            ("0.5", s.p50),
            ("0.9", s.p90),
            ("0.99", s.p99),
            ("0.999", s.p999),
            ("1", s.max),
        ] {
            m.window_latency
                .get_or_create(&QuantileLabels {
                    quantile: q.to_owned(),
                })
                .set(v);
        }
    }
}

/// A canary slot asked for a server (the canary's own allocations, apart from the load's).
#[derive(Debug)]
pub struct CanaryAllocated<'a> {
    pub slot: usize,
    pub fleet: &'a str,
    pub result: &'a str,
}

impl CanaryAllocated<'_> {
    pub fn emit(&self, m: &ProducerMetrics) {
        tracing::debug!(
            slot = self.slot,
            fleet = self.fleet,
            result = self.result,
            "canary allocation"
        );
        m.canary_allocations
            .get_or_create(&ResultLabels {
                result: self.result.to_owned(),
            })
            .inc();
    }
}

/// A canary is held: its server is Allocated and its session starts.
#[derive(Debug)]
pub struct CanaryStarted<'a> {
    pub slot: usize,
    pub gameserver: &'a str,
    pub addr: SocketAddr,
}

impl CanaryStarted<'_> {
    pub fn emit(&self, m: &ProducerMetrics) {
        tracing::info!(
            slot = self.slot,
            gameserver = self.gameserver,
            addr = %self.addr,
            "canary started"
        );
        m.canaries_active.inc();
    }
}

/// A canary answered a heartbeat `gap` after its previous answer.
#[derive(Debug)]
pub struct CanaryHeartbeat {
    pub slot: usize,
    pub gap: Duration,
}

impl CanaryHeartbeat {
    pub fn emit(&self, m: &ProducerMetrics) {
        tracing::trace!(
            slot = self.slot,
            gap_s = self.gap.as_secs_f64(),
            "canary heartbeat"
        );
        m.canary_gap.observe(self.gap.as_secs_f64());
    }
}

/// A canary was lost; its slot allocates a replacement.
#[derive(Debug)]
pub struct CanaryLost<'a> {
    pub slot: usize,
    pub gameserver: &'a str,
    pub reason: LossReason,
    /// What was seen (the state, the silence, the other name).
    pub detail: &'a str,
    pub age: Duration,
}

impl CanaryLost<'_> {
    pub fn emit(&self, m: &ProducerMetrics) {
        tracing::warn!(
            slot = self.slot,
            gameserver = self.gameserver,
            reason = self.reason.as_str(),
            detail = self.detail,
            age_s = self.age.as_secs_f64(),
            "canary lost"
        );
        m.canaries_lost
            .get_or_create(&ReasonLabels {
                reason: self.reason.as_str(),
            })
            .inc();
        m.canaries_active.dec();
    }
}

/// A canary ended without being lost: at `max_age` after a transition, or on shutdown.
#[derive(Debug)]
pub struct CanaryEnded<'a> {
    pub slot: usize,
    pub gameserver: &'a str,
    /// `max_age` or `shutdown`.
    pub why: &'static str,
    pub age: Duration,
}

impl CanaryEnded<'_> {
    pub fn emit(&self, m: &ProducerMetrics) {
        tracing::info!(
            slot = self.slot,
            gameserver = self.gameserver,
            why = self.why,
            age_s = self.age.as_secs_f64(),
            "canary ended"
        );
        m.canaries_active.dec();
    }
}

/// A canary's server was released: told to `EXIT`, or deleted through the API (a log line).
#[derive(Debug)]
pub struct CanaryReleased<'a> {
    pub gameserver: &'a str,
    /// `exit` or `delete`.
    pub how: &'static str,
    pub result: &'a str,
}

impl CanaryReleased<'_> {
    pub fn emit(&self) {
        tracing::debug!(
            gameserver = self.gameserver,
            how = self.how,
            result = self.result,
            "canary released"
        );
    }
}

/// Every interval: the longest current silence and the oldest age among active canaries.
#[derive(Debug)]
pub struct CanariesObserved {
    pub longest_silence: Duration,
    pub oldest_age: Duration,
}

impl CanariesObserved {
    pub fn emit(&self, m: &ProducerMetrics) {
        tracing::trace!(
            longest_silence_s = self.longest_silence.as_secs_f64(),
            oldest_age_s = self.oldest_age.as_secs_f64(),
            "canaries observed"
        );
        m.canary_silence.set(self.longest_silence.as_secs_f64());
        m.canary_oldest.set(self.oldest_age.as_secs_f64());
    }
}

/// A Fleet's `min_replicas` is below what the load needs and `capacity.on_short` is `warn`:
/// the sidecar starts anyway (a log line; the allocations it costs count as `FleetFull`).
#[derive(Debug)]
pub struct CapacityShort<'a> {
    pub fleet: &'a str,
    pub min_replicas: i32,
    pub need: i64,
    /// The sentence with the numbers and the fix.
    pub why: &'a str,
}

impl CapacityShort<'_> {
    pub fn emit(&self) {
        tracing::warn!(
            fleet = self.fleet,
            min_replicas = self.min_replicas,
            need = self.need,
            "fleet too small for the load: {}",
            self.why
        );
    }
}

/// The `reason` values of `upsoak_producer_reclaimed_total`.
pub const RECLAIM_REASONS: [&str; 2] = ["exit", "deleted"];

/// An orphaned GameServer was released ([`super::owner`]); a canary among them is counted
/// lost (`orphaned`), so a kill's canary losses are not hidden by the dead process' counters.
#[derive(Debug)]
pub struct OrphanReclaimed<'a> {
    pub gameserver: &'a str,
    /// `session` or `canary`.
    pub role: &'static str,
    /// `exit` or `deleted`.
    pub reason: &'static str,
}

impl OrphanReclaimed<'_> {
    pub fn emit(&self, m: &ProducerMetrics) {
        tracing::info!(
            gameserver = self.gameserver,
            role = self.role,
            reason = self.reason,
            "orphaned GameServer reclaimed"
        );
        if let Some(reason) = RECLAIM_REASONS.into_iter().find(|r| *r == self.reason) {
            m.reclaimed.get_or_create(&ReasonLabels { reason }).inc();
        }
        if self.role == "canary" {
            m.canaries_lost
                .get_or_create(&ReasonLabels {
                    reason: LossReason::Orphaned.as_str(),
                })
                .inc();
        }
    }
}

/// One reclaim pass ended: at start (logged always, once per start) or in a sweep (logged
/// when it found something or failed).
#[derive(Debug)]
pub struct OrphansSwept<'a> {
    pub owner: &'a str,
    pub incarnation: &'a str,
    /// `start` or `sweep`.
    pub when: &'static str,
    /// What it did, or the kind of error listing the GameServers.
    pub result: Result<super::owner::Reclaimed, &'static str>,
}

impl OrphansSwept<'_> {
    pub fn emit(&self, _m: &ProducerMetrics) {
        match self.result {
            Ok(r) if self.when == "start" || r.found > 0 => tracing::info!(
                owner = self.owner,
                incarnation = self.incarnation,
                when = self.when,
                found = r.found,
                exited = r.exited,
                deleted = r.deleted,
                failed = r.failed,
                canaries = r.canaries,
                "orphaned GameServers reclaimed"
            ),
            Ok(_) => {}
            Err(kind) => tracing::warn!(
                owner = self.owner,
                when = self.when,
                error = kind,
                "cannot list GameServers to reclaim orphans; tried again at the next sweep"
            ),
        }
    }
}
