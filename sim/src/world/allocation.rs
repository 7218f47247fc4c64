//! Allocation: the [`Allocator`] that the API's handler (`api/allocation.rs`) uses without the
//! world's lock (the plan, and picks from each Fleet's pool in `ready.rs`), and the commit,
//! the one step that takes the world's lock, for as long as one GameServer's update takes.
//!
//! Agones does the same in three steps (`pkg/gameserverallocations/allocator.go`):
//! `ListenAndAllocate` picks from the allocation cache and removes the pick from it,
//! `allocationUpdateWorkers` runs `applyAllocationToGameServer`, an update of that one
//! GameServer that the API server refuses with a conflict when it changed since the cache saw
//! it; the allocation then retries, and answers Contention when retries run out.
//!
//! Before any of that a request waits for the allocator's batch loop: `ListenAndAllocate`
//! (and the batch and processor variants beside it in `allocator.go`) reads requests from
//! `pendingRequests` until the channel is empty, then `time.Sleep(c.batchWaitTime)` in its
//! `default:` case. At the rates a soak allocates, the loop is asleep when a request arrives, so
//! each request (and each retry, which is queued again) waits for the loop's next wake: 0 to
//! `allocationBatchWaitTime`, 500ms by the chart's default. [`BatchLoop`] models the wakes.

use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use upsoak_agones::release::TunableValue;
use upsoak_agones::{GameServer, GameServerAllocation, GameServerState};

use crate::config::FaultKind;
use crate::events::{self, SimMetrics};
use crate::selector::Selector;
use crate::status::ApiError;

use super::ready::{Hold, Pools};
use super::{Key, World, fleet_of};

/// The chart tunable that sets the allocator's batch wait, in milliseconds
/// (`agones.allocator.allocationBatchWaitTime`, `agones.extensions.allocationBatchWaitTime`).
pub const BATCH_WAIT_TUNABLE: &str = "allocationBatchWaitTime";

/// What an allocation needs to know of the world before it picks, published by the world
/// whenever it may change (each tick, and when an install opens the upgrade window).
#[derive(Clone, Copy, Debug)]
struct Plan {
    /// The allocator is down during an upgrade window.
    down: bool,
    latency: Duration,
    fail_rate: f64,
    retries: u32,
    batch: BatchLoop,
}

/// The allocator's batch loop: asleep for `wait`, awake for an instant to take every queued
/// request, asleep again. Taking a batch costs microseconds against a wait of milliseconds, so
/// the loop wakes at `started + k × wait`; it starts again when the allocator's pods do (after
/// an upgrade window) and when its wait changes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchLoop {
    pub wait: Duration,
    pub started: Instant,
}

impl BatchLoop {
    /// How long a request that arrives at `now` waits for the loop's next wake.
    pub fn until_wake(&self, now: Instant) -> Duration {
        let wait = self.wait.as_nanos();
        if wait == 0 {
            return Duration::ZERO;
        }
        let into = now.saturating_duration_since(self.started).as_nanos() % wait;
        if into == 0 {
            return Duration::ZERO;
        }
        // At most `wait` nanoseconds, which came from a Duration: it fits in u64.
        Duration::from_nanos(u64::try_from(wait - into).unwrap_or(u64::MAX))
    }
}

/// What one allocation is granted: the batch loop it queues for (before each pick), the
/// pick-to-commit latency (faults included), and the retries allowed.
#[derive(Clone, Copy, Debug)]
pub struct Grant {
    pub batch: BatchLoop,
    pub latency: Duration,
    pub retries: u32,
}

/// Allocation's share of the world, usable without the world's lock: the plan, each Fleet's
/// pool of candidates, and the event metrics.
pub struct Allocator {
    pub(super) pools: Pools,
    plan: RwLock<Plan>,
    /// Draws the failures of an `allocation_failures` fault.
    rng: Mutex<StdRng>,
    pick_window: usize,
    metrics: SimMetrics,
}

impl std::fmt::Debug for Allocator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Allocator").finish_non_exhaustive()
    }
}

impl Allocator {
    pub(super) fn new(seed: u64, pick_window: usize, metrics: SimMetrics) -> Allocator {
        Allocator {
            pools: Pools::new(seed),
            plan: RwLock::new(Plan {
                down: false,
                latency: Duration::ZERO,
                fail_rate: 0.0,
                retries: 0,
                batch: BatchLoop {
                    wait: Duration::ZERO,
                    started: Instant::now(),
                },
            }),
            rng: Mutex::new(StdRng::seed_from_u64(seed.rotate_left(17))),
            pick_window,
            metrics,
        }
    }

    /// The event metrics, to record without the world's lock.
    pub fn metrics(&self) -> &SimMetrics {
        &self.metrics
    }

    /// For one allocation: what it is granted, or the error the allocator answers with (down,
    /// or a failure fault).
    pub fn plan(&self) -> Result<Grant, ApiError> {
        let p = *self.plan.read().unwrap_or_else(PoisonError::into_inner);
        if p.down {
            return Err(ApiError::allocator_unavailable());
        }
        if p.fail_rate > 0.0
            && self
                .rng
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .random::<f64>()
                < p.fail_rate
        {
            return Err(ApiError::internal(
                "error allocating gameserver: simulated allocator failure",
            ));
        }
        Ok(Grant {
            batch: p.batch,
            latency: p.latency,
            retries: p.retries,
        })
    }

    /// Servers held by allocations between their pick and their commit.
    pub fn holds(&self) -> usize {
        self.pools.holds()
    }

    /// Picks a candidate for `gsa` and holds it for this allocation until
    /// [`World::commit_allocation`] or until the [`Hold`] drops: the first selector with a
    /// match wins; Packed picks among the first `pick_window` matches, Distributed among all.
    pub fn pick(
        &self,
        ns: &str,
        gsa: &GameServerAllocation,
        selectors: &[(Selector, GameServerState)],
    ) -> Option<Hold> {
        let window = if gsa.spec.scheduling.as_deref() == Some("Distributed") {
            usize::MAX
        } else {
            self.pick_window
        };
        self.pools.pick(ns, selectors, window)
    }
}

/// Counts one allocation in `agones_gameservers_allocations_total` (after the world's lock is
/// released, for allocations through the API).
pub fn count_allocated(metrics: &SimMetrics, ns: &str, fleet: &str) {
    events::GameServerAllocated {
        namespace: ns,
        fleet,
    }
    .emit(metrics);
}

impl World {
    /// The allocation side of the world, shared with the API's handlers.
    pub fn allocator(&self) -> &Arc<Allocator> {
        &self.alloc
    }

    /// Publishes what allocations need to know of the install and the faults.
    pub(super) fn publish_allocation_plan(&self) {
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
        let down = self.upgrade.is_some();
        let wait = self.batch_wait();
        let mut plan = self
            .alloc
            .plan
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        // New pods after a window, or a new wait: the loop starts again now.
        let batch = if (plan.down && !down) || plan.batch.wait != wait {
            BatchLoop {
                wait,
                started: Instant::now(),
            }
        } else {
            plan.batch
        };
        *plan = Plan {
            // The Kubernetes API path (`v1.allocation.agones.dev`) is served by
            // `agones-controller-service`, which selects the `extensions` pods
            // (`templates/extensions.yaml`, `APIService`; `templates/service.yaml`), a `Recreate`
            // Deployment: down for the window, while the allocator's own Service rolls and keeps
            // serving (`api/deployments.rs`).
            down,
            latency,
            fail_rate,
            retries: self.cfg.allocation.retries,
            batch,
        };
    }

    /// The installed release's batch wait: its `allocationBatchWaitTime` tunable (milliseconds,
    /// as the Wanderer's space and the chart's duration `"500ms"` carry it), else the
    /// configured default.
    fn batch_wait(&self) -> Duration {
        match self.installed.spec.tunables.get(BATCH_WAIT_TUNABLE) {
            Some(TunableValue::Int(ms)) => Duration::from_millis(u64::try_from(*ms).unwrap_or(0)),
            _ => self.cfg.allocation.batch_wait,
        }
    }

    /// Counts an allocation made through the SDK, in its Fleet's status and the metric.
    pub(super) fn count_allocation(&mut self, key: &Key) {
        if let Some(fleet) = self.note_allocation(key) {
            count_allocated(&self.metrics, &key.0, &fleet);
        }
    }

    /// Counts an allocation in its Fleet's status; returns the Fleet, for the metric.
    fn note_allocation(&mut self, key: &Key) -> Option<String> {
        let fleet = fleet_of(&self.gameservers.get(key)?.obj)?.to_owned();
        if let Some(f) = self.fleets.get_mut(&(key.0.clone(), fleet.clone())) {
            f.allocations += 1;
        }
        Some(fleet)
    }

    /// Takes a held candidate if it is still in the state it was picked in; `None` when it
    /// changed (deleted, failed, allocated through its SDK) since the pick, and the hold is
    /// released. Returns the allocated server and its Fleet, for the caller to count.
    pub fn commit_allocation(
        &mut self,
        hold: Hold,
        gsa: &GameServerAllocation,
    ) -> Option<(Arc<GameServer>, Option<String>)> {
        let key = hold.key().clone();
        let state = self.gameservers.get(&key)?.obj.state()?;
        if state != hold.expected() {
            return None;
        }
        hold.commit();
        if let Some(meta) = &gsa.spec.metadata
            && (meta.labels.as_ref().is_some_and(|l| !l.is_empty())
                || meta.annotations.as_ref().is_some_and(|a| !a.is_empty()))
            && let Some(rec) = self.gameservers.get_mut(&key)
        {
            let obj = Arc::make_mut(&mut rec.obj);
            for (k, v) in meta.labels.iter().flatten() {
                obj.metadata
                    .labels
                    .get_or_insert_default()
                    .insert(k.clone(), v.clone());
            }
            for (k, v) in meta.annotations.iter().flatten() {
                obj.metadata
                    .annotations
                    .get_or_insert_default()
                    .insert(k.clone(), v.clone());
            }
        }
        if state == GameServerState::Allocated {
            self.touch_gameserver(&key);
        } else {
            self.set_state(&key, GameServerState::Allocated, Instant::now());
        }
        let fleet = self.note_allocation(&key);
        self.gameservers.get(&key).map(|r| (r.obj.clone(), fleet))
    }
}
