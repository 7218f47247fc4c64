//! The Producer's metrics and its typed events: each operation is one event whose `emit`
//! writes the log line and updates the metrics, so nothing is counted anywhere else.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hdrhistogram::Histogram as Hdr;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use upsoak_agones::metrics::ALLOCATION_DURATION_BUCKETS;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OpLabels {
    pub op: String,
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OpOnly {
    pub op: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QuantileLabels {
    pub quantile: String,
}

fn allocation_histogram() -> Histogram {
    Histogram::new(ALLOCATION_DURATION_BUCKETS)
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

/// Every metric the Producer exports.
#[derive(Clone)]
pub struct ProducerMetrics {
    pub allocations: Family<ResultLabels, Counter>,
    pub allocation_duration: Family<ResultLabels, Histogram, fn() -> Histogram>,
    pub fleet_scale: Family<ResultLabels, Counter>,
    pub session_ops: Family<OpLabels, Counter>,
    pub session_op_duration: Family<OpOnly, Histogram, fn() -> Histogram>,
    pub dropped: Counter,
    pub in_flight: Gauge,
    pub sessions_active: Gauge,
    pub window_latency: Family<QuantileLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    pub window: Arc<Mutex<Option<LatencyWindow>>>,
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
        }
    }
}

impl ProducerMetrics {
    pub fn register(&self, r: &mut Registry) {
        r.register(
            "upsoak_producer_allocations",
            "Allocations the producer started, by result (Allocated, UnAllocated, Contention or an error kind)",
            self.allocations.clone(),
        );
        r.register(
            "upsoak_producer_allocation_duration_seconds",
            "Allocation latency from the scheduled start (open model), by result",
            self.allocation_duration.clone(),
        );
        r.register(
            "upsoak_producer_fleet_scale",
            "Fleet scale requests, by result",
            self.fleet_scale.clone(),
        );
        r.register(
            "upsoak_producer_session_ops",
            "Game protocol commands sent in sessions, by command and result",
            self.session_ops.clone(),
        );
        r.register(
            "upsoak_producer_session_op_duration_seconds",
            "Round trip of game protocol commands, by command",
            self.session_op_duration.clone(),
        );
        r.register(
            "upsoak_producer_dropped",
            "Scheduled allocations not started because the in-flight limit was reached",
            self.dropped.clone(),
        );
        r.register(
            "upsoak_producer_in_flight",
            "Allocations in flight",
            self.in_flight.clone(),
        );
        r.register(
            "upsoak_producer_sessions_active",
            "Game sessions being played",
            self.sessions_active.clone(),
        );
        r.register(
            "upsoak_producer_allocation_window_latency_seconds",
            "Allocation latency percentiles of the last completed window (HdrHistogram)",
            self.window_latency.clone(),
        );
    }

    /// Closes the current latency window: exports its percentiles and returns them.
    pub fn rotate_window(&self) -> WindowStats {
        let stats = match self.window.lock() {
            Ok(mut w) => w.as_mut().map(LatencyWindow::rotate).unwrap_or_default(),
            Err(_) => WindowStats::default(),
        };
        for (q, v) in [
            ("0.5", stats.p50),
            ("0.9", stats.p90),
            ("0.99", stats.p99),
            ("0.999", stats.p999),
            ("1", stats.max),
        ] {
            self.window_latency
                .get_or_create(&QuantileLabels {
                    quantile: q.to_owned(),
                })
                .set(v);
        }
        stats
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
