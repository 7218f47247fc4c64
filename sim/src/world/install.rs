//! What is installed and what is being installed: the upgrade window an install opens, the
//! fault profiles whose condition holds for the installed version (the upgrade-time ones: for
//! the target of the open window, see `upgrade_faults.rs`), and the allocation plan (latency
//! and failures) they result in.

use std::collections::BTreeMap;
use std::time::Instant;

use jiff::Timestamp;

use upsoak_agones::release::{Install, parse_version, to_query};
use upsoak_common::problems::Problems;

use crate::config::{FaultKind, FaultProfile};
use crate::events::{self, Refusal, SimMetrics};
use crate::status::ApiError;

use super::World;

/// What is installed, or being installed.
#[derive(Clone, Debug, PartialEq)]
pub struct Installed {
    pub spec: Install,
    /// Every gate of the version with its effective value.
    pub gates: BTreeMap<String, bool>,
    pub since: Timestamp,
}

/// Why an install was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InstallError {
    /// Another install's upgrade window is open (409).
    #[error("another install is in progress; wait for its upgrade window to close")]
    InProgress,
    /// The chart would refuse it, for every reason listed, each at its field (422).
    #[error("the install is invalid: {}", one_line(.0))]
    Invalid(Problems),
}

impl World {
    // ----- install and upgrade window -----

    /// What is installed now.
    pub fn installed(&self) -> &Installed {
        &self.installed
    }

    /// The install in progress and when its window closes.
    pub fn upgrading(&self) -> Option<&Installed> {
        self.upgrade.as_ref().map(|(_, i)| i)
    }

    /// How far the open upgrade window has run, from 0 (just opened) towards 1; `None` outside
    /// a window. The allocator's rolling update follows it (`api/deployments.rs`).
    pub fn upgrade_progress(&self) -> Option<f64> {
        let (until, target) = self.upgrade.as_ref()?;
        let window = self.upgrade_window_for(target).as_secs_f64();
        let left = until
            .saturating_duration_since(Instant::now())
            .as_secs_f64();
        Some(if window > 0.0 {
            (1.0 - left / window).clamp(0.0, 1.0)
        } else {
            1.0
        })
    }

    /// True while an upgrade window keeps the control plane unavailable.
    pub fn in_upgrade_window(&self) -> bool {
        self.upgrade.is_some()
    }

    /// Starts installing `spec`: validated as the chart would, then an upgrade window opens.
    pub fn install(&mut self, spec: Install) -> Result<Installed, InstallError> {
        let refused = if self.upgrade.is_some() {
            Some((Refusal::InProgress, InstallError::InProgress))
        } else {
            self.cfg
                .check_install(&spec)
                .err()
                .map(|p| (Refusal::Invalid, InstallError::Invalid(p)))
        };
        if let Some((refusal, error)) = refused {
            events::InstallRefused {
                version: &spec.version,
                refusal,
                reasons: &error,
            }
            .emit(&self.metrics);
            return Err(error);
        }
        let target = Installed {
            gates: self.cfg.effective_gates(&spec),
            spec,
            since: Timestamp::now(),
        };
        let now = Instant::now();
        let window = self.upgrade_window_for(&target);
        events::InstallStarted {
            from: &self.installed.spec.version,
            to: &target.spec.version,
            gates: &to_query(&target.gates),
            window,
        }
        .emit(&self.metrics);
        self.upgrade = Some((now + window, target.clone()));
        self.open_upgrade_faults(now, window);
        // The controller and extensions (`strategy: Recreate`) are down for the window: no
        // Agones metrics until the new pods run.
        events::AgonesPodsReplacing.emit(&self.metrics);
        self.publish_allocation_plan();
        Ok(target)
    }

    /// True while fault `f` is active: its condition holds for what is installed or, for an
    /// upgrade-time kind, an install window is open and its condition holds for the target.
    pub fn fault_active(&self, f: &FaultProfile) -> bool {
        if f.kind.during_upgrade() {
            return self
                .upgrade
                .as_ref()
                .is_some_and(|(_, target)| condition_holds(f, target));
        }
        condition_holds(f, &self.installed)
    }

    pub(super) fn active_faults(&self) -> impl Iterator<Item = &FaultKind> {
        self.cfg
            .faults
            .iter()
            .filter(|f| self.fault_active(f))
            .map(|f| &f.kind)
    }

    /// The event metrics, to record without holding the world's lock.
    pub fn metrics(&self) -> &SimMetrics {
        &self.metrics
    }

    /// For one allocation: what it is granted (batch loop, pick-to-commit latency with faults,
    /// retries), or the error the allocator answers with (down, or a failure fault). The API
    /// asks the [`super::Allocator`] directly, without the world's lock.
    pub fn allocation_plan(&self) -> Result<super::allocation::Grant, ApiError> {
        self.publish_allocation_plan();
        self.alloc.plan()
    }

    /// Ends the upgrade window once its time is up: the target becomes what is installed.
    pub(super) fn close_upgrade_window(&mut self, now: Instant) {
        if let Some((until, _)) = &self.upgrade
            && *until <= now
            && let Some((_, target)) = self.upgrade.take()
        {
            let was_active: Vec<bool> = self
                .cfg
                .faults
                .iter()
                .map(|f| self.fault_active(f))
                .collect();
            events::InstallFinished {
                version: &target.spec.version,
                gates: &to_query(&target.gates),
            }
            .emit();
            self.close_upgrade_faults(&target);
            self.installed = target;
            self.agones_pods_started();
            for (f, was) in self.cfg.faults.iter().zip(was_active) {
                let active = self.fault_active(f);
                if active != was {
                    events::FaultChanged {
                        name: &f.name,
                        kind: f.kind.name(),
                        active,
                    }
                    .emit();
                }
            }
        }
    }

    /// Agones' pods of the installed version start: their metrics from zero.
    pub(super) fn agones_pods_started(&self) {
        let version = &self.installed.spec.version;
        events::AgonesPodsStarted {
            version,
            // `agones_gameservers_allocations_total` is registered from 1.59
            // (`pkg/metrics/controller_metrics.go`).
            allocations_total: parse_version(version).is_some_and(|v| v >= (1, 59, 0)),
        }
        .emit(&self.metrics);
    }

    /// The memory a `memory_growth` fault leaks over `dt` seconds.
    pub(super) fn grow_memory(&mut self, dt: f64) {
        let growth: f64 = self
            .active_faults()
            .map(|k| match k {
                FaultKind::MemoryGrowth { bytes_per_second } => *bytes_per_second,
                _ => 0.0,
            })
            .sum();
        self.leaked_bytes += growth * dt;
    }

    /// True while a `reconcile_stall` fault holds.
    pub(super) fn reconcile_stalled(&self) -> bool {
        self.active_faults()
            .any(|k| matches!(k, FaultKind::ReconcileStall))
    }
}

/// True when `f`'s `when` holds for `on`: its version, and its gate's effective value.
pub(super) fn condition_holds(f: &FaultProfile, on: &Installed) -> bool {
    let version_ok = f
        .when
        .version
        .as_ref()
        .is_none_or(|v| *v == on.spec.version);
    let gate_ok = f
        .when
        .gate
        .as_ref()
        .is_none_or(|g| on.gates.get(&g.name).copied().unwrap_or(false) == g.enabled);
    version_ok && gate_ok
}

/// Every problem on one line, as the log and the 422's message show them.
fn one_line(p: &Problems) -> String {
    p.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}
