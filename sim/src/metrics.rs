//! The simulator's `/metrics`: Agones' own metric names, types, labels and buckets, plus
//! `upsoak_sim_*` metrics about what is installed and which faults are active.
//!
//! Counters and histograms are updated as things happen; gauges that describe the current
//! state (GameServers per state, Fleet replicas, the install) are computed from the world at
//! scrape time by [`WorldCollector`], so they can never drift from the API's answers.

use std::sync::{Arc, Mutex};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use upsoak_agones::metrics as names;

use crate::world::World;

/// Labels of per-GameServer-state metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    pub r#type: String,
    pub fleet_name: String,
    pub namespace: String,
}

/// Labels of `agones_gameservers_allocations_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FleetLabels {
    pub fleet_name: String,
    pub namespace: String,
}

/// Labels of `agones_gameserver_allocations_duration_seconds`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AllocationLabels {
    pub fleet_name: String,
    pub cluster_name: String,
    pub is_multicluster: String,
    pub status: String,
    pub scheduling_strategy: String,
}

/// Labels of `upsoak_sim_installs_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn state_duration_histogram() -> Histogram {
    Histogram::new(names::state_duration_buckets())
}
fn allocation_histogram() -> Histogram {
    Histogram::new(names::ALLOCATION_DURATION_BUCKETS)
}

/// Metrics updated as events happen.
#[derive(Clone)]
pub struct SimMetrics {
    pub gameservers_total: Family<StateLabels, Counter>,
    pub allocations_total: Family<FleetLabels, Counter>,
    pub state_duration: HistogramFamily<StateLabels>,
    pub allocation_duration: HistogramFamily<AllocationLabels>,
    pub installs_total: Family<ResultLabels, Counter>,
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
    /// Records an allocation's outcome and latency in Agones' histogram.
    pub fn observe_allocation(&self, fleet: &str, status: &str, scheduling: &str, secs: f64) {
        self.allocation_duration
            .get_or_create(&AllocationLabels {
                fleet_name: fleet.to_owned(),
                cluster_name: String::new(),
                is_multicluster: "false".to_owned(),
                status: status.to_owned(),
                scheduling_strategy: scheduling.to_owned(),
            })
            .observe(secs);
    }

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
}

/// Computes the state gauges from the world at each scrape.
#[derive(Debug)]
pub struct WorldCollector(pub Arc<Mutex<World>>);

impl Collector for WorldCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let snap = match self.0.lock() {
            Ok(w) => w.gauge_snapshot(),
            // A poisoned lock means a panic elsewhere; export nothing rather than stale data.
            Err(_) => return Ok(()),
        };
        let mut m = encoder.encode_descriptor(
            names::GAMESERVERS_COUNT,
            "The number of gameservers",
            None,
            MetricType::Gauge,
        )?;
        for ((state, fleet, ns), n) in &snap.gameservers {
            let labels = StateLabels {
                r#type: state.clone(),
                fleet_name: fleet.clone(),
                namespace: ns.clone(),
            };
            ConstGauge::new(*n).encode(m.encode_family(&labels)?)?;
        }
        let mut m = encoder.encode_descriptor(
            names::FLEETS_REPLICAS_COUNT,
            "The number of replicas per fleet",
            None,
            MetricType::Gauge,
        )?;
        for ((name, ns, kind), n) in &snap.fleet_replicas {
            let labels = [("name", name.as_str()), ("namespace", ns), ("type", kind)];
            ConstGauge::new(*n).encode(m.encode_family(&labels)?)?;
        }
        let mut m = encoder.encode_descriptor(
            "upsoak_sim_installed_info",
            "The Agones version and feature gates the simulator runs (value 1)",
            None,
            MetricType::Gauge,
        )?;
        let labels = [
            ("version", snap.version.as_str()),
            ("feature_gates", snap.feature_gates.as_str()),
        ];
        ConstGauge::new(1i64).encode(m.encode_family(&labels)?)?;
        let mut m = encoder.encode_descriptor(
            "upsoak_sim_fault_active",
            "1 while the named fault profile's condition holds",
            None,
            MetricType::Gauge,
        )?;
        for (fault, active) in &snap.faults {
            ConstGauge::new(i64::from(*active))
                .encode(m.encode_family(&[("fault", fault.as_str())])?)?;
        }
        let g = ConstGauge::new(i64::from(snap.upgrading));
        g.encode(encoder.encode_descriptor(
            "upsoak_sim_upgrade_in_progress",
            "1 while an install's upgrade window keeps the control plane unavailable",
            None,
            g.metric_type(),
        )?)?;
        let g = ConstGauge::new(snap.controller_memory_bytes);
        g.encode(encoder.encode_descriptor(
            "upsoak_sim_controller_resident_memory_bytes",
            "Resident memory of the simulated Agones controller; grows under a memory_growth fault",
            None,
            g.metric_type(),
        )?)?;
        Ok(())
    }
}

/// The values [`WorldCollector`] exports, taken under one lock.
#[derive(Debug, Default)]
pub struct GaugeSnapshot {
    /// (state, fleet_name, namespace) → count.
    pub gameservers: Vec<((String, String, String), i64)>,
    /// (fleet, namespace, type) → replicas.
    pub fleet_replicas: Vec<((String, String, &'static str), i64)>,
    pub version: String,
    pub feature_gates: String,
    pub faults: Vec<(String, bool)>,
    pub upgrading: bool,
    pub controller_memory_bytes: f64,
}
