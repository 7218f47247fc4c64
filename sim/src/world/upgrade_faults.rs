//! Upgrade-time faults: active only inside an install window whose target matches their
//! `when` (`FaultKind::during_upgrade`). When a window opens, `upgrade_stalls` stretches it,
//! `upgrade_kills_allocated` picks the Allocated GameServers it will shut down (each at a
//! random moment in the window's first half) and `upgrade_drops_game_traffic` silences every
//! game port for its duration. None of this is Agones behaviour: these are regressions an
//! upgrade may bring, injected so the sidecar's canaries and the agent's disruption window can
//! be shown to catch them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::RngExt;
use rand::seq::SliceRandom;
use upsoak_agones::GameServerState;

use crate::config::FaultKind;
use crate::events;

use super::install::condition_holds;
use super::{Installed, Key, World};

/// Until when (unix ms) game ports drop every datagram; 0 when they answer. Shared with the
/// game protocol's tasks, which read it per datagram without the world's lock.
#[derive(Clone, Debug, Default)]
pub struct TrafficGate(Arc<AtomicU64>);

impl TrafficGate {
    /// True while game traffic is being dropped.
    pub fn dropped(&self) -> bool {
        unix_ms() < self.0.load(Ordering::Relaxed)
    }

    fn drop_until(&self, until_ms: u64) {
        self.0.fetch_max(until_ms, Ordering::Relaxed);
    }
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or_default()
}

impl World {
    /// The upgrade-time faults whose condition holds for `target`.
    fn upgrade_faults_for<'a>(
        &'a self,
        target: &'a Installed,
    ) -> impl Iterator<Item = (&'a str, &'a FaultKind)> + 'a {
        self.cfg
            .faults
            .iter()
            .filter(|f| f.kind.during_upgrade() && condition_holds(f, target))
            .map(|f| (f.name.as_str(), &f.kind))
    }

    /// How long installing `target` keeps the control plane unavailable: `upgrade_window`, ×
    /// the largest `upgrade_stalls` factor that applies.
    pub(super) fn upgrade_window_for(&self, target: &Installed) -> Duration {
        let factor = self
            .upgrade_faults_for(target)
            .filter_map(|(_, k)| match k {
                FaultKind::UpgradeStalls { factor } => Some(*factor),
                _ => None,
            })
            .fold(1.0_f64, f64::max);
        self.cfg.upgrade_window.mul_f64(factor)
    }

    /// The window just opened (`self.upgrade` holds its target): the upgrade-time faults that
    /// apply are switched on, the kills planned and game traffic silenced.
    pub(super) fn open_upgrade_faults(&mut self, now: Instant, window: Duration) {
        let Some((_, target)) = self.upgrade.clone() else {
            return;
        };
        let mut fraction: f64 = 0.0;
        let mut silence = Duration::ZERO;
        for (name, kind) in self.upgrade_faults_for(&target) {
            events::FaultChanged {
                name,
                kind: kind.name(),
                active: true,
            }
            .emit();
            match kind {
                FaultKind::UpgradeKillsAllocated { fraction: f } => fraction = fraction.max(*f),
                FaultKind::UpgradeDropsGameTraffic { duration } => silence = silence.max(*duration),
                _ => {}
            }
        }
        if !silence.is_zero() {
            let until = unix_ms().saturating_add(u64::try_from(silence.as_millis()).unwrap_or(0));
            self.traffic.drop_until(until);
            events::GameTrafficDropped {
                version: &target.spec.version,
                duration: silence,
            }
            .emit();
        }
        if fraction > 0.0 {
            let mut allocated: Vec<Key> = self
                .gameservers
                .iter()
                .filter(|(_, r)| r.obj.state() == Some(GameServerState::Allocated))
                .map(|(k, _)| k.clone())
                .collect();
            allocated.shuffle(&mut self.rng);
            let n = (fraction * allocated.len() as f64).ceil() as usize;
            let half = window / 2;
            for key in allocated.into_iter().take(n) {
                let at = now + half.mul_f64(self.rng.random::<f64>());
                self.upgrade_kills.push((at, key));
            }
            self.upgrade_kills.sort();
        }
    }

    /// Shuts down the planned victims whose time came, if still Allocated (as the SDK's
    /// `Shutdown` would: Shutdown, then deleted, and the Fleet replaces them).
    pub(super) fn apply_upgrade_faults(&mut self, now: Instant) {
        while self.upgrade_kills.first().is_some_and(|(at, _)| *at <= now) {
            let (_, key) = self.upgrade_kills.remove(0);
            let allocated = self
                .gameservers
                .get(&key)
                .is_some_and(|r| r.obj.state() == Some(GameServerState::Allocated));
            if allocated {
                events::UpgradeKilledGameServer {
                    namespace: &key.0,
                    name: &key.1,
                }
                .emit();
                self.set_state(&key, GameServerState::Shutdown, now);
            }
        }
    }

    /// The window closed on `target`: its upgrade-time faults are off. Planned kills not yet
    /// due are dropped (none are: they fall in the first half); a traffic drop longer than the
    /// window keeps its full duration.
    pub(super) fn close_upgrade_faults(&mut self, target: &Installed) {
        self.upgrade_kills.clear();
        for (name, kind) in self.upgrade_faults_for(target) {
            events::FaultChanged {
                name,
                kind: kind.name(),
                active: false,
            }
            .emit();
        }
    }

    /// The gate game ports consult before answering.
    pub(super) fn traffic_gate(&self) -> TrafficGate {
        self.traffic.clone()
    }
}
