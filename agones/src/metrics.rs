//! Metric names, label names and buckets as Agones exports them (controller and allocator).

/// Gauge: GameServers per state. Labels `type`, `fleet_name`, `namespace`.
pub const GAMESERVERS_COUNT: &str = "agones_gameservers_count";
/// Counter family `agones_gameservers` (samples `agones_gameservers_total`): state transitions.
pub const GAMESERVERS_TOTAL: &str = "agones_gameservers_total";
/// Counter: allocations per Fleet (Agones 1.59+). Labels `fleet_name`, `namespace`.
pub const GAMESERVERS_ALLOCATIONS_TOTAL: &str = "agones_gameservers_allocations_total";
/// Histogram: seconds spent in the previous state. Labels `type`, `fleet_name`, `namespace`.
pub const GAMESERVER_STATE_DURATION: &str = "agones_gameserver_state_duration";
/// Gauge: Fleet replicas by `type`. Labels `name`, `namespace`, `type`.
pub const FLEETS_REPLICAS_COUNT: &str = "agones_fleets_replicas_count";
/// Histogram: allocation latency. Labels `fleet_name`, `cluster_name`, `is_multicluster`,
/// `status`, `scheduling_strategy`.
pub const ALLOCATIONS_DURATION_SECONDS: &str = "agones_gameserver_allocations_duration_seconds";
/// Histogram: allocation retries, same labels as the duration.
pub const ALLOCATIONS_RETRY_TOTAL: &str = "agones_gameserver_allocations_retry_total";
/// Gauge: nodes, label `empty`.
pub const NODES_COUNT: &str = "agones_nodes_count";
/// Counter: Kubernetes client requests, labels `verb`, `status_code`.
pub const K8S_CLIENT_HTTP_REQUEST_TOTAL: &str = "agones_k8s_client_http_request_total";

/// `agones_fleets_replicas_count` `type` label values.
pub const FLEET_REPLICA_TYPES: [&str; 5] = ["total", "allocated", "ready", "desired", "reserved"];

/// Buckets of `agones_gameserver_allocations_duration_seconds`.
pub const ALLOCATION_DURATION_BUCKETS: [f64; 11] = [
    0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.0, 3.0,
];
/// Buckets of `agones_gameserver_allocations_retry_total`.
pub const ALLOCATION_RETRY_BUCKETS: [f64; 5] = [1.0, 2.0, 3.0, 4.0, 5.0];

/// Buckets of `agones_gameserver_state_duration`: 1, 2, 4 … 16384 seconds.
pub fn state_duration_buckets() -> impl Iterator<Item = f64> {
    (0..15).map(|i| f64::from(1u32 << i))
}

/// `fleet_name` of a GameServer outside any Fleet.
pub const NO_FLEET: &str = "none";
