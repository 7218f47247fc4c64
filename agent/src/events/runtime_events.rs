//! The agent's own runtime, as events (part of [`crate::events`]; the handles stay private to
//! it): supervised tasks that died, state writes that failed and are retried, the wall clock
//! stepping back, and the evaluation loop's progress that `/healthz` watches.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

use super::AgentMetrics;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TaskLabel {
    task: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FileLabel {
    file: String,
}

/// The metrics of the events below.
#[derive(Clone, Debug, Default)]
pub(super) struct RuntimeMetrics {
    task_deaths: Family<TaskLabel, Counter>,
    write_failures: Family<FileLabel, Counter>,
    unsaved: Family<FileLabel, Gauge>,
    clock_back: Counter,
    last_answered: Gauge<f64, AtomicU64>,
    pub(super) server: upsoak_common::server::ServerMetrics,
}

impl RuntimeMetrics {
    pub(super) fn register(&self, r: &mut Registry) {
        r.register(
            "upsoak_agent_task_deaths",
            "Supervised tasks that ended before the agent did (a death makes /healthz fail)",
            self.task_deaths.clone(),
        );
        r.register(
            "upsoak_agent_state_write_failures",
            "Failed writes of a state file (retried with backoff; shown on /healthz)",
            self.write_failures.clone(),
        );
        r.register(
            "upsoak_agent_state_unsaved",
            "1 while a state file holds changes not yet written (its last write failed)",
            self.unsaved.clone(),
        );
        r.register(
            "upsoak_agent_clock_steps_back",
            "Times the wall clock was seen going backwards (the slots were re-planned from it)",
            self.clock_back.clone(),
        );
        r.register(
            "upsoak_agent_last_answered_slot_timestamp_seconds",
            "When an evaluation slot last completed with Prometheus answering (unix seconds)",
            self.last_answered.clone(),
        );
        self.server.register(r, "upsoak_agent");
    }
}

impl AgentMetrics {
    /// The HTTP server's metrics (registered with the agent's).
    pub fn server(&self) -> upsoak_common::server::ServerMetrics {
        self.runtime.server.clone()
    }
}

/// A supervised task ended before the agent did (returned or panicked): the agent is unhealthy.
pub struct TaskDied<'a> {
    pub task: &'a str,
    pub reason: &'a str,
}

impl TaskDied<'_> {
    pub fn emit(&self, m: &AgentMetrics) {
        tracing::error!(
            task = self.task,
            reason = self.reason,
            "a task of the agent died"
        );
        m.runtime
            .task_deaths
            .get_or_create(&TaskLabel {
                task: self.task.to_owned(),
            })
            .inc();
    }
}

/// A state file could not be written; the agent keeps its state in memory and retries after
/// `retry_in`.
pub struct StateWriteFailed<'a> {
    pub file: &'static str,
    pub error: &'a (dyn std::error::Error + 'static),
    pub failures: u32,
    pub retry_in: std::time::Duration,
}

impl StateWriteFailed<'_> {
    pub fn emit(&self, m: &AgentMetrics) {
        tracing::warn!(
            file = self.file,
            error = %crate::error::chain(self.error),
            failures = self.failures,
            retry_in = ?self.retry_in,
            "cannot write a state file; kept in memory, retrying"
        );
        let l = FileLabel {
            file: self.file.to_owned(),
        };
        m.runtime.write_failures.get_or_create(&l).inc();
        m.runtime.unsaved.get_or_create(&l).set(1);
    }
}

/// A state file was written after earlier writes failed.
pub struct StateWriteRecovered {
    pub file: &'static str,
    pub failures: u32,
}

impl StateWriteRecovered {
    pub fn emit(&self, m: &AgentMetrics) {
        tracing::info!(
            file = self.file,
            failures = self.failures,
            "state file written again"
        );
        m.runtime
            .unsaved
            .get_or_create(&FileLabel {
                file: self.file.to_owned(),
            })
            .set(0);
    }
}

/// The wall clock went back by `by_ms`: the slots are planned again from the new time, so the
/// loop does not wait out the step.
pub struct ClockSteppedBack {
    pub by_ms: i64,
}

impl ClockSteppedBack {
    pub fn emit(&self, m: &AgentMetrics) {
        tracing::warn!(
            by_ms = self.by_ms,
            "the wall clock went backwards; slots planned again from now"
        );
        m.runtime.clock_back.inc();
    }
}

/// An evaluation slot completed with Prometheus answering (the watchdog of `/healthz` beats).
pub struct SlotAnswered {
    pub at_ms: i64,
}

impl SlotAnswered {
    pub fn emit(&self, m: &AgentMetrics) {
        m.runtime.last_answered.set(self.at_ms as f64 / 1000.0);
    }
}
