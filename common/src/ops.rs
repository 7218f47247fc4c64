//! The operational endpoints every binary serves: `/metrics` (OpenMetrics or Prometheus text,
//! see [`crate::exposition`]), `/healthz` (liveness) and `/readyz` (readiness), as an axum
//! [`Router`] a binary merges with its own routes.
//!
//! [`Health`] is the shared state behind the two probes. A process starts live and not ready:
//! it becomes ready only when its code says so ([`Health::mark_ready`], e.g. after the first
//! successful query or observation), and stops being live when something it cannot recover
//! from happens ([`Health::fail`]), so an orchestrator restarts it. A loop that must make
//! progress holds a [`Heartbeat`] ([`Health::watchdog`]): while it has not beaten within its
//! limit both probes answer 503 with why, and they recover when it beats again. Warnings
//! ([`Health::warn`], e.g. state writes failing and being retried) are shown on `/healthz`
//! without failing it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::exposition;

/// Path of the metrics endpoint.
pub const METRICS_PATH: &str = "/metrics";
/// Path of the liveness probe.
pub const HEALTHZ_PATH: &str = "/healthz";
/// Path of the readiness probe.
pub const READYZ_PATH: &str = "/readyz";

#[derive(Debug, Default)]
struct HealthState {
    ready: AtomicBool,
    failure: Mutex<Option<String>>,
    watchdogs: Mutex<Vec<Watchdog>>,
    warnings: Mutex<BTreeMap<String, String>>,
}

/// A loop that must beat within `max_age`, and the last thing it said about itself.
#[derive(Debug)]
struct Watchdog {
    name: String,
    max_age: Duration,
    last: Instant,
    note: Option<String>,
}

/// Locks `m`; a poisoned lock only means another thread panicked while holding it, and the
/// health state (plain values) is still consistent.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The handle of a watchdog ([`Health::watchdog`]); clones beat the same one.
#[derive(Clone, Debug)]
pub struct Heartbeat {
    health: Health,
    index: usize,
}

impl Heartbeat {
    /// The loop made progress: the watchdog restarts and its note is cleared.
    pub fn beat(&self) {
        if let Some(w) = lock(&self.health.0.watchdogs).get_mut(self.index) {
            w.last = Instant::now();
            w.note = None;
        }
    }

    /// What the loop last failed at, shown with the stall (kept until the next beat).
    pub fn note(&self, note: impl Into<String>) {
        if let Some(w) = lock(&self.health.0.watchdogs).get_mut(self.index) {
            w.note = Some(note.into());
        }
    }

    /// The current limit, for a loop that must beat well within it.
    pub fn max_age(&self) -> Option<Duration> {
        lock(&self.health.0.watchdogs)
            .get(self.index)
            .map(|w| w.max_age)
    }

    /// A new limit (e.g. after a reload changed the loop's interval).
    pub fn set_max_age(&self, max_age: Duration) {
        if let Some(w) = lock(&self.health.0.watchdogs).get_mut(self.index) {
            w.max_age = max_age;
        }
    }
}

/// Liveness and readiness, shared by the code that knows and the probes that tell. Clones
/// share one state.
#[derive(Clone, Debug, Default)]
pub struct Health(Arc<HealthState>);

impl Health {
    /// Live and not ready.
    pub fn new() -> Health {
        Health::default()
    }

    /// From now on `/readyz` answers 200 (unless the process has failed).
    pub fn mark_ready(&self) {
        self.0.ready.store(true, Ordering::Release);
    }

    /// From now on `/readyz` answers 503 again, e.g. while a dependency is gone.
    pub fn mark_not_ready(&self) {
        self.0.ready.store(false, Ordering::Release);
    }

    /// Ready, not failed and not stalled.
    pub fn is_ready(&self) -> bool {
        self.0.ready.load(Ordering::Acquire) && self.failure().is_none() && self.stalled().is_none()
    }

    /// Whether [`Health::mark_ready`] was called (whatever the liveness).
    pub fn was_marked_ready(&self) -> bool {
        self.0.ready.load(Ordering::Acquire)
    }

    /// A watchdog named `name`, started now: the probes fail while it has not beaten for longer
    /// than `max_age`.
    pub fn watchdog(&self, name: impl Into<String>, max_age: Duration) -> Heartbeat {
        let mut w = lock(&self.0.watchdogs);
        w.push(Watchdog {
            name: name.into(),
            max_age,
            last: Instant::now(),
            note: None,
        });
        Heartbeat {
            health: self.clone(),
            index: w.len() - 1,
        }
    }

    /// Why a watchdog is overdue, if one is.
    pub fn stalled(&self) -> Option<String> {
        lock(&self.0.watchdogs).iter().find_map(|w| {
            let age = w.last.elapsed();
            (age > w.max_age).then(|| {
                let mut s = format!(
                    "{} has not made progress for {:.0?} (limit {:.0?})",
                    w.name, age, w.max_age
                );
                if let Some(n) = &w.note {
                    s.push_str(": ");
                    s.push_str(n);
                }
                s
            })
        })
    }

    /// Shows `warning` under `key` on `/healthz` (which still answers 200), or clears it.
    pub fn warn(&self, key: &str, warning: Option<String>) {
        let mut w = lock(&self.0.warnings);
        match warning {
            Some(text) => {
                w.insert(key.to_owned(), text);
            }
            None => {
                w.remove(key);
            }
        }
    }

    /// The warnings shown now, by key.
    pub fn warnings(&self) -> Vec<String> {
        lock(&self.0.warnings).values().cloned().collect()
    }

    /// From now on `/healthz` (and `/readyz`) answer 503 with `reason`. The first reason is
    /// kept: later failures are usually consequences of it.
    pub fn fail(&self, reason: impl Into<String>) {
        // A poisoned lock only means another thread panicked while failing; the state is an
        // `Option<String>` and is still consistent.
        let mut failure = lock(&self.0.failure);
        if failure.is_none() {
            *failure = Some(reason.into());
        }
    }

    /// Why the process failed, if it did.
    pub fn failure(&self) -> Option<String> {
        lock(&self.0.failure).clone()
    }

    /// Not failed and not stalled.
    pub fn is_live(&self) -> bool {
        self.failure().is_none() && self.stalled().is_none()
    }

    /// Why the process is not live: failed, else stalled.
    pub fn unhealthy(&self) -> Option<String> {
        self.failure()
            .map(|f| format!("failed: {f}"))
            .or_else(|| self.stalled().map(|s| format!("stalled: {s}")))
    }
}

#[derive(Clone)]
struct OpsState {
    registry: Arc<Registry>,
    health: Health,
}

/// `/metrics` for `registry`, `/healthz` and `/readyz` for `health`.
///
/// The router carries its own state, so it merges into a binary's router of any state type:
/// `ops::router(registry, health.clone()).merge(my_routes)` or
/// `my_routes.merge(ops::router(registry, health))`.
pub fn router<S>(registry: impl Into<Arc<Registry>>, health: Health) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route(METRICS_PATH, get(metrics))
        .route(HEALTHZ_PATH, get(healthz))
        .route(READYZ_PATH, get(readyz))
        .with_state(OpsState {
            registry: registry.into(),
            health,
        })
}

/// Serves `app` on `listener` until `shutdown` is cancelled, then lets requests in flight finish;
/// within the default [`crate::server::Limits`], refusals counted in unregistered metrics (a
/// binary that exports them calls [`crate::server::serve`]).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    crate::server::serve(
        listener,
        app,
        crate::server::Limits::default(),
        crate::server::ServerMetrics::default(),
        shutdown,
    )
    .await
}

async fn metrics(State(s): State<OpsState>, headers: HeaderMap) -> Response {
    exposition::response(&s.registry, &headers)
}

async fn healthz(State(s): State<OpsState>) -> Response {
    let mut body = match s.health.unhealthy() {
        Some(reason) => {
            return (StatusCode::SERVICE_UNAVAILABLE, format!("{reason}\n")).into_response();
        }
        None => String::from("ok\n"),
    };
    for w in s.health.warnings() {
        body.push_str("warning: ");
        body.push_str(&w);
        body.push('\n');
    }
    (StatusCode::OK, body).into_response()
}

async fn readyz(State(s): State<OpsState>) -> Response {
    if let Some(reason) = s.health.unhealthy() {
        (StatusCode::SERVICE_UNAVAILABLE, format!("{reason}\n")).into_response()
    } else if s.health.is_ready() {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
    }
}
