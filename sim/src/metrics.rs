//! The simulator's state gauges: GameServers per state, Fleet replicas, what is installed, which
//! faults are active, computed at scrape time from a [`GaugeSource`] (the world), so they can
//! never drift from the API's answers. Counters and histograms are updated by the events in
//! `events.rs`. This module imports nothing of the crate: the world implements the trait.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::gauge::ConstGauge;
use upsoak_agones::metrics as names;

/// What the state gauges are computed from.
pub trait GaugeSource: Send + Sync + std::fmt::Debug {
    /// Every gauge's value, taken at once; `None` when the state is unavailable (a poisoned
    /// lock after a panic elsewhere), and then nothing is exported rather than stale data.
    fn gauge_snapshot(&self) -> Option<GaugeSnapshot>;
}

/// Computes the state gauges from its source at each scrape.
#[derive(Debug)]
pub struct GaugeCollector(pub Arc<dyn GaugeSource>);

impl Collector for GaugeCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(snap) = self.0.gauge_snapshot() else {
            return Ok(());
        };
        if snap.agones_up {
            encode_agones(&snap, &mut encoder)?;
        }
        encode_sim(&snap, &mut encoder)
    }
}

/// Agones' own gauges (`pkg/metrics/controller.go`), absent while its controller is replaced.
fn encode_agones(
    snap: &GaugeSnapshot,
    encoder: &mut DescriptorEncoder,
) -> Result<(), std::fmt::Error> {
    {
        let mut m = encoder.encode_descriptor(
            names::GAMESERVERS_COUNT,
            "The number of gameservers",
            None,
            MetricType::Gauge,
        )?;
        for ((state, fleet, ns), n) in &snap.gameservers {
            let labels = [
                ("type", state.as_str()),
                ("fleet_name", fleet),
                ("namespace", ns),
            ];
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
    }
    {
        // `recordFleetRolloutPercentage`: the active GameServerSet's replicas and the Fleet's
        // desired replicas (one GameServerSet per Fleet here).
        let mut m = encoder.encode_descriptor(
            "agones_fleet_rollout_percent",
            "The current fleet rollout percentage",
            None,
            MetricType::Gauge,
        )?;
        for ((name, ns, kind), n) in &snap.fleet_rollout {
            let labels = [("name", name.as_str()), ("namespace", ns), ("type", kind)];
            ConstGauge::new(*n).encode(m.encode_family(&labels)?)?;
        }
    }
    {
        // `collectNodeCounts`: one node; it is empty when no GameServer runs on it.
        let mut m = encoder.encode_descriptor(
            "agones_nodes_count",
            "The count of nodes in the cluster",
            None,
            MetricType::Gauge,
        )?;
        let busy = i64::from(snap.gameservers_on_node > 0);
        ConstGauge::new(1 - busy).encode(m.encode_family(&[("empty", "true")])?)?;
        ConstGauge::new(busy).encode(m.encode_family(&[("empty", "false")])?)?;
    }
    // `recordGameServerStatusChanges`, with PlayerTracking on: players connected and the
    // capacity left, per GameServer.
    for (name, help, value) in [
        (
            "agones_gameserver_player_connected_total",
            "The total number of players connected to gameservers",
            (|p: &PlayerGauge| p.count) as fn(&PlayerGauge) -> i64,
        ),
        (
            "agones_gameserver_player_capacity_total",
            "The available player capacity for gameservers",
            |p: &PlayerGauge| p.capacity - p.count,
        ),
    ] {
        if snap.players.is_empty() {
            break;
        }
        let mut m = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
        for p in &snap.players {
            let labels = [
                ("fleet_name", p.fleet.as_str()),
                ("name", p.name.as_str()),
                ("namespace", p.namespace.as_str()),
            ];
            ConstGauge::new(value(p)).encode(m.encode_family(&labels)?)?;
        }
    }
    Ok(())
}

/// The simulator's own gauges, always exported.
fn encode_sim(
    snap: &GaugeSnapshot,
    encoder: &mut DescriptorEncoder,
) -> Result<(), std::fmt::Error> {
    {
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
    }
    {
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
    }
    {
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
    }
    Ok(())
}

/// The values [`GaugeCollector`] exports, taken under one lock.
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
    /// Agones' controller runs (false while an upgrade window replaces it).
    pub agones_up: bool,
    /// (fleet, namespace, `current_replicas` | `desired_replicas`) → replicas.
    pub fleet_rollout: Vec<((String, String, &'static str), i64)>,
    /// GameServers placed on the simulated node.
    pub gameservers_on_node: usize,
    /// Players of each GameServer with `status.players`, while PlayerTracking is on.
    pub players: Vec<PlayerGauge>,
}

/// One GameServer's `status.players`.
#[derive(Debug, Default)]
pub struct PlayerGauge {
    pub fleet: String,
    pub name: String,
    pub namespace: String,
    pub count: i64,
    pub capacity: i64,
}
