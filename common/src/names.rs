//! The names of the metrics the sidecar exports and the Monitor (agent) queries: one home, so a
//! rename on one side cannot silently break the other.
//!
//! `prometheus-client` registers a counter under its bare name and appends `_total` when it
//! encodes, so every counter has two constants: the registration name (`TRANSITIONS`, given to
//! `Registry::register`) and the exposed series name (`TRANSITIONS_TOTAL`, what a PromQL query
//! names). Histograms are exposed as `<name>_bucket`, `<name>_sum` and `<name>_count`; gauges
//! under their registration name.

/// Declares a counter's registration name and its exposed `_total` series name.
macro_rules! counter {
    ($(#[$doc:meta])* $name:ident, $total:ident, $lit:literal) => {
        $(#[$doc])*
        ///
        /// The registration name; Prometheus sees the series
        #[doc = concat!("`", $lit, "_total`.")]
        pub const $name: &str = $lit;
        #[doc = concat!("The series `", $lit, "` is exposed as (a counter gets `_total` at encode time).")]
        pub const $total: &str = concat!($lit, "_total");
    };
}

/// The Wanderer's metrics (`upsoak-chaos run`, component `wanderer`).
pub mod wanderer {
    /// Gauge: steps of the walk taken so far. It changes at every transition, so the Monitor
    /// detects a transition by a change of this value, and a baseline window is steady only if
    /// it does not change inside it.
    pub const GENERATION: &str = "upsoak_wanderer_generation";

    /// Gauge, value 1: the configuration observed installed, as labels [`VERSION_LABEL`],
    /// [`FEATURE_GATES_LABEL`] and [`TUNABLES_LABEL`]. Cleared before it is set, so exactly one
    /// series exists at a time.
    pub const CONFIG_INFO: &str = "upsoak_wanderer_config_info";
    /// Label of [`CONFIG_INFO`]: the installed Agones release, e.g. `1.60.0`.
    pub const VERSION_LABEL: &str = "version";
    /// Label of [`CONFIG_INFO`]: every gate as Helm's query string, `A=true&B=false`.
    pub const FEATURE_GATES_LABEL: &str = "feature_gates";
    /// Label of [`CONFIG_INFO`]: every tunable as `name=value`, joined by `&`.
    pub const TUNABLES_LABEL: &str = "tunables";

    counter!(
        /// Counter: transitions by observed result (label `result`: `applied`, `failed`,
        /// `indeterminate`, `observed`) and failure kind (label `kind`: `none` or why it failed).
        TRANSITIONS,
        TRANSITIONS_TOTAL,
        "upsoak_wanderer_transitions"
    );

    /// Histogram: time from a transition's intent to its observed outcome.
    pub const TRANSITION_DURATION_SECONDS: &str = "upsoak_wanderer_transition_duration_seconds";

    /// Gauge: unix time of the last transition's outcome. The Monitor takes the `max` of it as
    /// the moment a transition went live.
    pub const LAST_TRANSITION_TIMESTAMP_SECONDS: &str =
        "upsoak_wanderer_last_transition_timestamp_seconds";

    /// Gauge: covered share of the pairs of each kind (label `kind`: `version_pairs`,
    /// `gate_version`, `gate_pairs`).
    pub const COVERAGE_RATIO: &str = "upsoak_wanderer_coverage_ratio";

    /// Gauge: unix time the next transition is scheduled for.
    pub const NEXT_TRANSITION_TIMESTAMP_SECONDS: &str =
        "upsoak_wanderer_next_transition_timestamp_seconds";

    /// Gauge: 1 while the Wanderer's loop runs, 0 once it stopped.
    pub const RUNNING: &str = "upsoak_wanderer_running";

    /// Gauge, value 1: the last failed transition's target (labels [`VERSION_LABEL`],
    /// [`FEATURE_GATES_LABEL`], [`TUNABLES_LABEL`]) and failure `kind`. Cleared before it is
    /// set, so one series at most.
    pub const LAST_FAILED_TARGET_INFO: &str = "upsoak_wanderer_last_failed_target_info";

    /// Gauge: the generation the two apply timestamps below describe: the value
    /// [`GENERATION`] takes when that transition goes live (it is set with the start, before
    /// the apply, while [`GENERATION`] still shows the previous one). No labels: one series
    /// over a week of transitions.
    pub const APPLY_GENERATION: &str = "upsoak_wanderer_apply_generation";

    /// Gauge: unix time the apply of transition [`APPLY_GENERATION`] started, set before helm
    /// or the simulator is called. The disruption window opens here.
    pub const APPLY_STARTED_TIMESTAMP_SECONDS: &str =
        "upsoak_wanderer_apply_started_timestamp_seconds";

    /// Gauge: unix time the apply of transition [`APPLY_GENERATION`] returned (helm exited,
    /// the simulator's install window closed, or the apply timed out). Until then it keeps the
    /// previous transition's value, so a value below [`APPLY_STARTED_TIMESTAMP_SECONDS`] means
    /// the apply is in progress. [`LAST_TRANSITION_TIMESTAMP_SECONDS`] stays the moment the
    /// result was observed live.
    pub const APPLY_FINISHED_TIMESTAMP_SECONDS: &str =
        "upsoak_wanderer_apply_finished_timestamp_seconds";

    counter!(
        /// Counter: torn journal lines dropped when the journal was opened.
        JOURNAL_LINES_DROPPED,
        JOURNAL_LINES_DROPPED_TOTAL,
        "upsoak_wanderer_journal_lines_dropped"
    );
}

/// The Producer's metrics (`upsoak-chaos run`, component `producer`).
pub mod producer {
    counter!(
        /// Counter: allocations the producer started, by `result` (`Allocated`, `FleetFull`:
        /// UnAllocated while every replica of the Fleet was busy, `UnAllocated`, `Contention`
        /// or an error kind). SLOs on allocation success and capacity query this.
        ALLOCATIONS,
        ALLOCATIONS_TOTAL,
        "upsoak_producer_allocations"
    );

    /// Histogram: allocation latency from the scheduled start (open model), by `result`.
    pub const ALLOCATION_DURATION_SECONDS: &str = "upsoak_producer_allocation_duration_seconds";

    counter!(
        /// Counter: allocations through the allocator service's mTLS endpoint (the matchmaker's
        /// path), by `result` (`Allocated`, `UnAllocated`, `Contention`, `error_tls`,
        /// `error_unavailable`, `error_timeout`, `error_other`). The allocator-service SLOs
        /// query this.
        ALLOCATOR_SERVICE_REQUESTS,
        ALLOCATOR_SERVICE_REQUESTS_TOTAL,
        "upsoak_producer_allocator_service_requests"
    );

    /// Histogram: latency of allocator-service allocations from the scheduled start, by `result`.
    pub const ALLOCATOR_SERVICE_DURATION_SECONDS: &str =
        "upsoak_producer_allocator_service_duration_seconds";

    /// Gauge: 1 when the producer allocates through the allocator service, else 0.
    pub const ALLOCATOR_SERVICE_CONFIGURED: &str = "upsoak_producer_allocator_service_configured";

    counter!(
        /// Counter: Fleet scale requests, by `result`.
        FLEET_SCALE,
        FLEET_SCALE_TOTAL,
        "upsoak_producer_fleet_scale"
    );

    counter!(
        /// Counter: game protocol commands sent in sessions, by `op` and `result`.
        SESSION_OPS,
        SESSION_OPS_TOTAL,
        "upsoak_producer_session_ops"
    );

    /// Histogram: round trip of game protocol commands, by `op`.
    pub const SESSION_OP_DURATION_SECONDS: &str = "upsoak_producer_session_op_duration_seconds";

    counter!(
        /// Counter: scheduled allocations not started because the in-flight limit was reached.
        DROPPED,
        DROPPED_TOTAL,
        "upsoak_producer_dropped"
    );

    /// Gauge: allocations in flight.
    pub const IN_FLIGHT: &str = "upsoak_producer_in_flight";

    /// Gauge: game sessions being played.
    pub const SESSIONS_ACTIVE: &str = "upsoak_producer_sessions_active";

    /// Gauge: allocation latency percentiles of the last completed window (HdrHistogram), by
    /// `quantile` (`0.5`, `0.9`, `0.99`, `0.999`, `1`).
    pub const ALLOCATION_WINDOW_LATENCY_SECONDS: &str =
        "upsoak_producer_allocation_window_latency_seconds";

    /// Gauge: canaries held now: GameServers kept Allocated with a live session across
    /// transitions (`producer.canaries`).
    pub const CANARIES_ACTIVE: &str = "upsoak_producer_canaries_active";

    counter!(
        /// Counter: canaries lost, by [`REASON_LABEL`]: `deleted` (gone, or Shutdown),
        /// `left_allocated` (another state), `timeout` (no heartbeat answered for
        /// `canaries.timeout`), `restarted` (its process changed identity), `orphaned` (held by
        /// a killed incarnation, reclaimed at start). Every reason's
        /// series exists from the start, at 0. Each loss is replaced.
        CANARIES_LOST,
        CANARIES_LOST_TOTAL,
        "upsoak_producer_canaries_lost"
    );
    /// Label of [`CANARIES_LOST`]: why the canary was lost.
    pub const REASON_LABEL: &str = "reason";
    /// The values of [`REASON_LABEL`].
    /// `orphaned`: held by an earlier incarnation of the Producer (killed without releasing
    /// it) and reclaimed by this one.
    pub const LOSS_REASONS: [&str; 5] = [
        "deleted",
        "left_allocated",
        "timeout",
        "restarted",
        "orphaned",
    ];

    counter!(
        /// Counter: GameServers left Allocated by an earlier incarnation of the Producer (or
        /// by this one, untracked) and released, by [`RECLAIM_REASON_LABEL`]: `exit` (told to
        /// `EXIT` over the game protocol, and it left Allocated) or `deleted` (it did not, and
        /// was deleted).
        RECLAIMED,
        RECLAIMED_TOTAL,
        "upsoak_producer_reclaimed"
    );
    /// Label of [`RECLAIMED`]: how the server was released.
    pub const RECLAIM_REASON_LABEL: &str = "reason";

    /// Histogram: time between two consecutive answered heartbeats of one canary; a gap
    /// longer than `canaries.interval` is a time players were cut off.
    pub const CANARY_HEARTBEAT_GAP_SECONDS: &str = "upsoak_producer_canary_heartbeat_gap_seconds";

    /// Gauge: the longest current silence among active canaries (time since their last
    /// answered heartbeat, or since they were allocated), updated every `canaries.interval`;
    /// `max_over_time` of it over a window is the longest gap in that window.
    pub const CANARY_LONGEST_SILENCE_SECONDS: &str =
        "upsoak_producer_canary_longest_silence_seconds";

    /// Gauge: the age of the oldest active canary, updated every `canaries.interval`; above the
    /// time since a transition's apply started, a canary lived through all of it.
    pub const CANARY_OLDEST_AGE_SECONDS: &str = "upsoak_producer_canary_oldest_age_seconds";

    counter!(
        /// Counter: allocations made for canaries, by `result` (as [`ALLOCATIONS`]'s); kept
        /// apart from the open-model load's.
        CANARY_ALLOCATIONS,
        CANARY_ALLOCATIONS_TOTAL,
        "upsoak_producer_canary_allocations"
    );
}
