//! How many servers the Producer keeps busy on each Fleet, and whether the Fleet holds them.
//!
//! A server the load allocated is busy for its session, and its slot in the Fleet stays out of
//! reach until the server that replaces it is Ready: Agones' GameServerSet stops counting a
//! server once it is Shutdown and creates its replacement then
//! (`pkg/gameserversets/controller.go`, `computeReconciliationAction`: servers being deleted,
//! Shutdown included, are not counted), and the replacement is Ready only after its pod is
//! scheduled, its container started and the game called SDK `Ready`
//! (`examples/simple-game-server/main.go`). By Little's law an open load then holds
//! `rate × (mean session + replace_time)` servers on average; the count is random (Poisson for
//! an open load with independent sessions, M/G/∞), hence `headroom`. Each canary holds one
//! server all the time:
//!
//! ```text
//! need = canaries + ⌈rate × (mean session + replace_time) × headroom⌉
//! ```
//!
//! The Producer spreads its load round-robin over its Fleets (allocation `n` from
//! `fleets[n % k]`, [`super::allocation_loop`]) and canary slot `i` on `fleets[i % k]`
//! ([`super::canary`]), so each Fleet needs its own share: `rate / k` and its canary slots.
//!
//! A Fleet smaller than its need answers `UnAllocated` because every server is busy, which is
//! the load's doing and not Agones': the Producer counts those `FleetFull` ([`classify_unallocated`]).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use upsoak_agones::Fleet;
use upsoak_common::problems::Problems;

use super::{ProducerConfig, SessionMode};

/// Default time from a session's end until its server's replacement is Ready. About 5 s from
/// creation to Ready on a cluster with the image cached (pod scheduling, container start, the
/// game's SDK `Ready`; the simulator's realistic lifecycle, `sim/src/config.rs` `Lifecycle`,
/// takes 5.1 s), plus the EXIT → Shutdown hop and the GameServerSet controller's next pass,
/// doubled for a busy cluster: 10 s. The pod's own termination (Shutdown → deleted, 3 s in the
/// simulator) does not hold a slot, as the replacement is created at Shutdown.
pub const DEFAULT_REPLACE_TIME: Duration = Duration::from_secs(10);
/// Default factor on the load's servers. The busy count of an open load is about Poisson:
/// around the shipped load's mean of 10.5 servers, 1.5 × is 1.6 standard deviations above it.
pub const DEFAULT_HEADROOM: f64 = 1.5;

/// The `result` of an allocation answered `UnAllocated` while its Fleet was full.
pub const FLEET_FULL: &str = "FleetFull";

/// What the Producer's load needs of its Fleets.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CapacityConfig {
    /// Time from a session's end (EXIT) until the Fleet's replacement for its server is Ready.
    #[serde(with = "humantime_serde")]
    pub replace_time: Duration,
    /// Factor on the load's servers for its randomness; at least 1.
    pub headroom: f64,
    /// A Fleet whose `min_replicas` is below its need: `refuse` to start (exit 2, naming the
    /// numbers), or `warn` (log them and start).
    pub on_short: OnShort,
}

impl Default for CapacityConfig {
    fn default() -> Self {
        CapacityConfig {
            replace_time: DEFAULT_REPLACE_TIME,
            headroom: DEFAULT_HEADROOM,
            on_short: OnShort::Refuse,
        }
    }
}

/// What a Fleet too small for the load does to the sidecar's start.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OnShort {
    /// The configuration is refused (exit 2).
    Refuse,
    /// The shortfall is logged and the sidecar starts.
    Warn,
}

impl CapacityConfig {
    /// Every problem of the section itself, with its path below it.
    pub fn problems(&self) -> Problems {
        let mut p = Problems::new();
        if !(self.headroom.is_finite() && self.headroom >= 1.0) {
            p.push(
                "headroom",
                format!("{} is not a factor >= 1", self.headroom),
            );
        }
        p
    }
}

/// What one Fleet must hold for the Producer's load.
#[derive(Clone, Debug, PartialEq)]
pub struct FleetNeed {
    /// Index in `producer.fleets`.
    pub index: usize,
    /// The Fleet's name.
    pub fleet: String,
    /// Canary slots held on it.
    pub canaries: usize,
    /// Allocations per second it gets.
    pub rate: f64,
    /// Mean session length in seconds (0 with `sessions: exit`, or a script without `WAIT`).
    pub session_s: f64,
    /// `capacity.replace_time` in seconds.
    pub replace_s: f64,
    /// `capacity.headroom`.
    pub headroom: f64,
    /// Servers it must hold.
    pub need: i64,
}

impl FleetNeed {
    /// Servers the load keeps starting on average (replacements not Ready yet):
    /// `rate × replace_time`.
    pub fn starting(&self) -> f64 {
        self.rate * self.replace_s
    }

    /// How `need` was reached, in numbers.
    pub fn arithmetic(&self) -> String {
        format!(
            "{} canaries + ⌈{}/s × ({} s mean session + {} s replace_time) × {} headroom⌉ = {}",
            self.canaries,
            round(self.rate),
            round(self.session_s),
            round(self.replace_s),
            round(self.headroom),
            self.need
        )
    }
}

/// `x` with at most three decimals, without trailing zeros.
fn round(x: f64) -> String {
    let s = format!("{x:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// Each Fleet's need, in the order of `p.fleets`; `None` when the load keeps every server it
/// allocates (`sessions: keep` drains the Fleets on purpose, so no size holds it).
pub fn needs(p: &ProducerConfig) -> Option<Vec<FleetNeed>> {
    if p.sessions == SessionMode::Keep && p.allocation_rate > 0.0 {
        return None;
    }
    let k = p.fleets.len();
    if k == 0 {
        return Some(Vec::new());
    }
    let session_s = match p.sessions {
        SessionMode::Play if p.session.steps().contains(&super::script::Step::Wait) => {
            (p.session.min_length + p.session.max_length).as_secs_f64() / 2.0
        }
        _ => 0.0,
    };
    let c = &p.capacity;
    let rate = p.allocation_rate.max(0.0) / k as f64;
    Some(
        p.fleets
            .iter()
            .enumerate()
            .map(|(j, f)| {
                // Slots i < count with i % k == j.
                let canaries = p.canaries.count.saturating_sub(j).div_ceil(k);
                let load = rate * (session_s + c.replace_time.as_secs_f64()) * c.headroom;
                let need = canaries as f64 + load.ceil();
                FleetNeed {
                    index: j,
                    fleet: f.name.clone(),
                    canaries,
                    rate,
                    session_s,
                    replace_s: c.replace_time.as_secs_f64(),
                    headroom: c.headroom,
                    need: if need.is_finite() {
                        need as i64
                    } else {
                        i64::MAX
                    },
                }
            })
            .collect(),
    )
}

/// The Fleets whose `min_replicas` is below their need, each as (its need, a sentence with
/// the numbers and the fix). Fleets the Producer does not scale (`scale_every_max: 0`) are
/// left out: their replicas are the cluster's, which preflight's `capacity` check reads.
pub fn short_fleets(p: &ProducerConfig) -> Vec<(FleetNeed, String)> {
    let Some(needs) = needs(p) else {
        return Vec::new();
    };
    needs
        .into_iter()
        .filter_map(|n| {
            let f = &p.fleets[n.index];
            if f.scale_every_max.is_zero() || i64::from(f.min_replicas) >= n.need {
                return None;
            }
            let why = format!(
                "{} cannot hold the load: Fleet `{}` needs {} servers ({}), and the Producer may scale it down to min_replicas {}; raise min_replicas (and the Fleet's replicas) to at least {}, or lower allocation_rate, the session length or canaries.count (`producer.capacity` holds replace_time and headroom; `on_short: warn` starts anyway)",
                f.min_replicas,
                n.fleet,
                n.need,
                n.arithmetic(),
                f.min_replicas,
                n.need
            );
            Some((n, why))
        })
        .collect()
}

/// The `result` of an allocation that answered `UnAllocated`, given its Fleet read at that
/// moment: `FleetFull` when every replica the Fleet asked for is busy (status
/// `allocatedReplicas + reservedReplicas >= spec.replicas`), else `UnAllocated`. Agones answers
/// `UnAllocated` when no Ready server matched the request
/// (`pkg/gameserverallocations/allocator.go`, `allocateFromLocalCluster`: `ErrNoGameServer`,
/// "Could not find an Allocatable GameServer"); with every replica busy that is the load
/// exceeding the Fleet, not Agones failing. A Fleet that cannot be read leaves `UnAllocated`.
pub fn classify_unallocated(fleet: Option<&Fleet>) -> &'static str {
    let Some(f) = fleet else {
        return "UnAllocated";
    };
    let Some(st) = &f.status else {
        return "UnAllocated";
    };
    let busy = i64::from(st.allocated_replicas) + i64::from(st.reserved_replicas);
    if busy >= i64::from(f.spec.replicas) {
        FLEET_FULL
    } else {
        "UnAllocated"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::producer::FleetLoad;
    use crate::producer::canary::CanaryConfig;
    use crate::producer::session::SessionConfig;
    use upsoak_agones::fleet::FleetStatus;

    fn fleet(replicas: i32, allocated: i32, reserved: i32, status: bool) -> Fleet {
        let mut f = Fleet::new("f", replicas, Default::default());
        f.status = status.then(|| FleetStatus {
            replicas,
            ready_replicas: replicas - allocated - reserved,
            reserved_replicas: reserved,
            allocated_replicas: allocated,
            ..FleetStatus::default()
        });
        f
    }

    #[test]
    fn unallocated_from_a_full_fleet_is_fleet_full_and_otherwise_stays_unallocated() {
        assert_eq!(
            classify_unallocated(Some(&fleet(5, 5, 0, true))),
            "FleetFull"
        );
        assert_eq!(
            classify_unallocated(Some(&fleet(5, 3, 2, true))),
            "FleetFull"
        );
        // Status lags a scale-down: more busy than asked for is full too.
        assert_eq!(
            classify_unallocated(Some(&fleet(4, 5, 0, true))),
            "FleetFull"
        );
        // A Fleet scaled to 0 has nothing to allocate: capacity.
        assert_eq!(
            classify_unallocated(Some(&fleet(0, 0, 0, true))),
            "FleetFull"
        );
        // A free replica (Ready or starting) makes UnAllocated Agones' answer to judge.
        assert_eq!(
            classify_unallocated(Some(&fleet(5, 4, 0, true))),
            "UnAllocated"
        );
        // Unknown: no status yet, or the Fleet could not be read.
        assert_eq!(
            classify_unallocated(Some(&fleet(5, 0, 0, false))),
            "UnAllocated"
        );
        assert_eq!(classify_unallocated(None), "UnAllocated");
    }

    fn load(rate: f64, fleets: &[(i32, i32)], canaries: usize) -> ProducerConfig {
        ProducerConfig {
            fleets: fleets
                .iter()
                .enumerate()
                .map(|(i, (min, max))| FleetLoad {
                    name: format!("f{i}"),
                    min_replicas: *min,
                    max_replicas: *max,
                    ..FleetLoad::default()
                })
                .collect(),
            allocation_rate: rate,
            canaries: CanaryConfig {
                count: canaries,
                ..CanaryConfig::default()
            },
            ..ProducerConfig::default()
        }
    }

    #[test]
    fn the_need_is_canaries_plus_the_load_over_session_and_replacement_with_headroom() {
        // A load of 0.5/s, sessions 2-20 s (mean 11 s), 10 s to replace, 1.5 headroom:
        // 0.5 × 21 × 1.5 = 15.75 → 16, plus 4 canaries.
        let n = needs(&load(0.5, &[(40, 60)], 4)).unwrap();
        assert_eq!(n.len(), 1);
        assert_eq!(n[0].need, 20);
        assert_eq!(n[0].starting(), 5.0);
        assert_eq!(
            n[0].arithmetic(),
            "4 canaries + ⌈0.5/s × (11 s mean session + 10 s replace_time) × 1.5 headroom⌉ = 20"
        );
        assert!(short_fleets(&load(0.5, &[(40, 60)], 4)).is_empty());
        // Split as the Producer spreads it: rate / 2 each, canary slots 0, 2, 4 on the first.
        let n = needs(&load(1.0, &[(40, 60), (40, 60)], 5)).unwrap();
        assert_eq!((n[0].canaries, n[1].canaries), (3, 2));
        assert_eq!((n[0].need, n[1].need), (3 + 16, 2 + 16));
        // More Fleets than canaries: the last ones hold none.
        let n = needs(&load(0.0, &[(1, 1), (1, 1), (1, 1)], 2)).unwrap();
        assert_eq!(n.iter().map(|f| f.canaries).collect::<Vec<_>>(), [1, 1, 0]);
    }

    #[test]
    fn a_short_fleet_is_named_with_its_numbers_and_the_fix() {
        let p = load(2.0, &[(5, 20)], 4);
        let short = short_fleets(&p);
        assert_eq!(short.len(), 1);
        let (n, why) = &short[0];
        assert_eq!(n.need, 4 + 63);
        assert!(
            why.starts_with("5 cannot hold the load: Fleet `f0` needs 67 servers (4 canaries + ⌈2/s × (11 s mean session + 10 s replace_time) × 1.5 headroom⌉ = 67)"),
            "{why}"
        );
        assert!(why.contains("to at least 67"), "{why}");
        // Scaling off: the Fleet's own replicas count, which preflight reads.
        let mut off = p.clone();
        off.fleets[0].scale_every_max = Duration::ZERO;
        off.fleets[0].scale_every_min = Duration::ZERO;
        assert!(short_fleets(&off).is_empty());
    }

    #[test]
    fn sessions_without_waits_exit_at_once_and_kept_servers_have_no_size() {
        let mut p = load(1.0, &[(40, 60)], 0);
        p.session = SessionConfig {
            script: vec!["ECHO hi".into(), "EXIT".into()],
            ..SessionConfig::default()
        };
        // 1/s × (0 + 10) × 1.5 = 15.
        assert_eq!(needs(&p).unwrap()[0].need, 15);
        p.session = SessionConfig::default();
        p.sessions = SessionMode::Exit;
        assert_eq!(needs(&p).unwrap()[0].need, 15);
        p.sessions = SessionMode::Keep;
        assert_eq!(needs(&p), None);
        assert!(short_fleets(&p).is_empty());
    }

    #[test]
    fn headroom_below_one_is_refused() {
        let c = CapacityConfig {
            headroom: 0.5,
            ..CapacityConfig::default()
        };
        let text: Vec<String> = c.problems().iter().map(ToString::to_string).collect();
        assert_eq!(text, ["headroom: 0.5 is not a factor >= 1"]);
    }
}
