//! The world's unit tests: lifecycle, scale, reservations, allocation races, faults, and a
//! proptest that the state gauges always equal what the API lists.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use upsoak_agones::{GameServerAllocation, GameServerState};

use super::World;
use upsoak_agones::release::Install;

use crate::config::SimConfig;
use crate::events::SimMetrics;
use crate::game::SdkCall;
use crate::selector::Selector;

fn world(extra: &str) -> World {
    // The fast timings these tests were written for (the defaults are realistic, slower).
    let yaml = format!(
        "{}\nlifecycle: {{ scheduled_after: 300ms, request_ready_after: 500ms, ready_after: 200ms, delete_after_shutdown: 500ms, delete_after_failure: 10s, tick: 50ms }}\n{extra}\n",
        crate::config::DEFAULT_CONFIG_YAML
    );
    let cfg = SimConfig::parse(&yaml, "test").unwrap();
    World::new(Arc::new(cfg), SimMetrics::default(), 7)
}

/// Ticks until `now` has advanced past every lifecycle delay.
fn settle(w: &mut World, now: &mut Instant) {
    for _ in 0..40 {
        *now += Duration::from_millis(250);
        w.tick(*now);
    }
}

fn states(w: &World) -> BTreeMap<String, GameServerState> {
    w.gameservers
        .iter()
        .filter_map(|((_, n), r)| r.obj.state().map(|s| (n.clone(), s)))
        .collect()
}

fn allocate(w: &mut World, fleet: &str) -> Option<String> {
    let gsa = GameServerAllocation::from_fleet(fleet);
    let sel = Selector::from_label_selector(&gsa.spec.selectors[0].selector).unwrap();
    let sels = [(sel, GameServerState::Ready)];
    let hold = w.allocator().pick("default", &gsa, &sels)?;
    w.commit_allocation(hold, &gsa)
        .and_then(|(g, _)| g.metadata.name.clone())
}

fn set_replicas(w: &mut World, n: i32) {
    let mut f = w.get_fleet("default", "f").unwrap();
    f.spec.replicas = n;
    w.update_fleet("default", "f", f).unwrap();
}

#[test]
fn lifecycle_reaches_ready_and_fleet_status_follows() {
    let mut w = world("fleets: [ { name: f, replicas: 3 } ]");
    let mut now = Instant::now();
    settle(&mut w, &mut now);
    let st = states(&w);
    assert_eq!(st.len(), 3);
    assert!(st.values().all(|s| *s == GameServerState::Ready), "{st:?}");
    let fs = w.get_fleet("default", "f").unwrap().status.unwrap();
    assert_eq!((fs.replicas, fs.ready_replicas), (3, 3));
}

#[test]
fn scale_down_removes_unallocated_first_and_never_an_allocated_one() {
    let mut w = world("fleets: [ { name: f, replicas: 4 } ]");
    let mut now = Instant::now();
    settle(&mut w, &mut now);
    let a = allocate(&mut w, "f").unwrap();
    let b = allocate(&mut w, "f").unwrap();
    set_replicas(&mut w, 0);
    settle(&mut w, &mut now);
    let st = states(&w);
    assert_eq!(st.len(), 2, "{st:?}");
    assert_eq!(st[&a], GameServerState::Allocated);
    assert_eq!(st[&b], GameServerState::Allocated);
    // When they end, they are deleted and not replaced beyond the desired count.
    w.sdk("default", &a, SdkCall::Shutdown).unwrap();
    settle(&mut w, &mut now);
    assert_eq!(states(&w).len(), 1);
}

#[test]
fn a_reserved_server_returns_to_ready_when_its_time_is_up() {
    let mut w = world("fleets: [ { name: f, replicas: 1 } ]");
    let mut now = Instant::now();
    settle(&mut w, &mut now);
    let name = states(&w).into_keys().next().unwrap();
    // SDK calls use the real clock; the test's clock is ahead of it by `settle`.
    w.sdk("default", &name, SdkCall::Reserve(Duration::from_secs(30)))
        .unwrap();
    now += Duration::from_secs(1);
    w.tick(now);
    assert_eq!(states(&w)[&name], GameServerState::Reserved);
    now += Duration::from_secs(30);
    w.tick(now);
    assert_eq!(states(&w)[&name], GameServerState::Ready);
}

#[test]
fn exited_allocated_servers_are_replaced() {
    let mut w = world("fleets: [ { name: f, replicas: 2 } ]");
    let mut now = Instant::now();
    settle(&mut w, &mut now);
    let a = allocate(&mut w, "f").unwrap();
    w.sdk("default", &a, SdkCall::Shutdown).unwrap();
    assert_eq!(states(&w)[&a], GameServerState::Shutdown);
    settle(&mut w, &mut now);
    let st = states(&w);
    assert!(!st.contains_key(&a));
    assert_eq!(st.len(), 2);
    assert!(st.values().all(|s| *s == GameServerState::Ready));
}

#[test]
fn no_ready_server_means_unallocated_and_a_changed_pick_means_a_lost_race() {
    let mut w = world("fleets: [ { name: f, replicas: 1 } ]");
    let mut now = Instant::now();
    settle(&mut w, &mut now);
    let gsa = GameServerAllocation::from_fleet("f");
    let sel = Selector::from_label_selector(&gsa.spec.selectors[0].selector).unwrap();
    let sels = [(sel, GameServerState::Ready)];
    // A picked server is held: a concurrent allocation finds nothing.
    let h1 = w.allocator().pick("default", &gsa, &sels).unwrap();
    let k1 = h1.key().clone();
    assert!(w.allocator().pick("default", &gsa, &sels).is_none());
    // The game server allocates itself through the SDK before the commit: the race is lost.
    w.sdk("default", &k1.1, SdkCall::Allocate).unwrap();
    assert!(w.commit_allocation(h1, &gsa).is_none());
    assert!(w.allocator().pick("default", &gsa, &sels).is_none());
    // Back to Ready (SDK Ready), it can be picked and committed again.
    w.sdk("default", &k1.1, SdkCall::Ready).unwrap();
    let h2 = w.allocator().pick("default", &gsa, &sels).unwrap();
    assert!(w.commit_allocation(h2, &gsa).is_some());
}

#[test]
fn faults_follow_their_condition() {
    let mut w = world(
        "faults:\n  - { name: slow, kind: allocation_latency, multiplier: 4, added: 10ms, when: { version: 1.59.0 } }\n  - { name: stall, kind: reconcile_stall, when: { gate: { name: PlayerTracking, enabled: true } } }\n  - { name: leak, kind: memory_growth, bytes_per_second: 1000000 }\nupgrade_window: 0ms\nallocation: { latency: 5ms }\nfleets: [ { name: f, replicas: 1 } ]",
    );
    let mut now = Instant::now();
    assert_eq!(
        w.allocation_plan().unwrap().latency,
        Duration::from_millis(5)
    );
    let before = w.gauge_snapshot().controller_memory_bytes;
    settle(&mut w, &mut now);
    assert!(w.gauge_snapshot().controller_memory_bytes > before + 1_000_000.0);
    w.install(Install {
        version: "1.59.0".into(),
        feature_gates: BTreeMap::from([("PlayerTracking".into(), true)]),
        tunables: BTreeMap::new(),
    })
    .unwrap();
    now += Duration::from_millis(1);
    w.tick(now);
    assert_eq!(w.installed().spec.version, "1.59.0");
    assert_eq!(
        w.allocation_plan().unwrap().latency,
        Duration::from_millis(30)
    );
    let active: Vec<(String, bool)> = w.gauge_snapshot().faults;
    assert_eq!(
        active,
        vec![
            ("slow".into(), true),
            ("stall".into(), true),
            ("leak".into(), true)
        ]
    );
    // Reconciliation stalls: a scale-up creates nothing.
    set_replicas(&mut w, 3);
    settle(&mut w, &mut now);
    assert_eq!(states(&w).len(), 1);
}

#[test]
fn failure_faults_move_servers_to_error_and_they_are_replaced() {
    let mut w = world(
        "faults: [ { name: err, kind: game_server_failures, per_second: 1.0, state: Error } ]\nfleets: [ { name: f, replicas: 3 } ]",
    );
    let mut now = Instant::now();
    for _ in 0..12 {
        now += Duration::from_millis(250);
        w.tick(now);
    }
    let snap = w.gauge_snapshot();
    let errors: i64 = snap
        .gameservers
        .iter()
        .filter(|((s, _, _), _)| s == "Error")
        .map(|(_, n)| *n)
        .sum();
    assert!(errors >= 1, "{:?}", snap.gameservers);
    let fs = w.get_fleet("default", "f").unwrap().status.unwrap();
    assert_eq!(fs.replicas, 3, "failed servers are replaced at once");
}

#[derive(Clone, Debug)]
enum Op {
    Scale(i32),
    Allocate,
    Exit(usize),
    Tick(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..12i32).prop_map(Op::Scale),
        Just(Op::Allocate),
        (0..16usize).prop_map(Op::Exit),
        (1..2000u64).prop_map(Op::Tick),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Whatever happens, an Allocated server disappears only after it ends, the state
    /// gauges equal what the API lists, and so does the Fleet's status after a reconcile.
    #[test]
    fn allocated_servers_survive_and_metrics_match_the_api(ops in prop::collection::vec(op(), 1..60)) {
        let mut w = world("fleets: [ { name: f, replicas: 3 } ]");
        let mut now = Instant::now();
        let mut allocated: BTreeSet<String> = BTreeSet::new();
        for op in ops {
            match op {
                Op::Scale(n) => set_replicas(&mut w, n),
                Op::Allocate => {
                    if let Some(n) = allocate(&mut w, "f") {
                        allocated.insert(n);
                    }
                }
                Op::Exit(i) => {
                    if let Some(n) = allocated.iter().nth(i % allocated.len().max(1)).cloned() {
                        w.sdk("default", &n, SdkCall::Shutdown).unwrap();
                        allocated.remove(&n);
                    }
                }
                Op::Tick(ms) => {
                    now += Duration::from_millis(ms);
                    w.tick(now);
                    // Reconciled just now: the status (from the pool's counts) is the list's.
                    let fs = w.get_fleet("default", "f").unwrap().status.unwrap();
                    let st = states(&w);
                    let n = |s: GameServerState| st.values().filter(|x| **x == s).count() as i32;
                    let alive = st.len() as i32
                        - n(GameServerState::Shutdown)
                        - n(GameServerState::Error)
                        - n(GameServerState::Unhealthy);
                    prop_assert_eq!(
                        (fs.replicas, fs.ready_replicas, fs.allocated_replicas, fs.reserved_replicas),
                        (alive, n(GameServerState::Ready), n(GameServerState::Allocated), n(GameServerState::Reserved))
                    );
                }
            }
            let st = states(&w);
            for n in &allocated {
                prop_assert_eq!(st.get(n), Some(&GameServerState::Allocated), "{} vanished", n);
            }
            let mut api: BTreeMap<String, i64> = BTreeMap::new();
            for s in st.values() {
                *api.entry(s.as_str().to_owned()).or_default() += 1;
            }
            let metric: BTreeMap<String, i64> = w
                .gauge_snapshot()
                .gameservers
                .into_iter()
                .map(|((s, _, _), n)| (s, n))
                .collect();
            prop_assert_eq!(api, metric);
        }
    }
}

#[test]
fn a_request_waits_for_the_batch_loops_next_wake() {
    let started = Instant::now();
    let ms = Duration::from_millis;
    let lp = super::BatchLoop {
        wait: ms(500),
        started,
    };
    // Asleep since the start: a request 100ms in waits the 400ms left; one at a wake does not wait.
    assert_eq!(lp.until_wake(started + ms(100)), ms(400));
    assert_eq!(lp.until_wake(started + ms(500)), Duration::ZERO);
    assert_eq!(lp.until_wake(started + ms(1_499)), ms(1));
    // Time before the start (a clock read early) counts as the start.
    assert_eq!(lp.until_wake(started - ms(5)), Duration::ZERO);
    // A wait of 0 never sleeps (Agones' `time.Sleep(0)`).
    let busy = super::BatchLoop {
        wait: Duration::ZERO,
        started,
    };
    assert_eq!(busy.until_wake(started + ms(123)), Duration::ZERO);
}

#[test]
fn the_batch_wait_follows_the_installed_tunable_and_restarts_with_the_pods() {
    let mut w = world(
        "upgrade_window: 50ms\nallocation: { latency: 5ms, batch_wait: 300ms }\nfleets: [ { name: f, replicas: 1 } ]",
    );
    let mut now = Instant::now();
    // No tunable installed: the configured default.
    let before = w.allocation_plan().unwrap().batch;
    assert_eq!(before.wait, Duration::from_millis(300));
    // Ticks keep the loop's phase.
    settle(&mut w, &mut now);
    assert_eq!(w.allocation_plan().unwrap().batch, before);
    w.install(Install {
        version: "1.59.0".into(),
        feature_gates: BTreeMap::new(),
        tunables: BTreeMap::from([(
            super::BATCH_WAIT_TUNABLE.to_owned(),
            upsoak_agones::release::TunableValue::Int(100),
        )]),
    })
    .unwrap();
    // Down for the window, then the installed release's wait, on a loop started afresh.
    assert!(w.allocation_plan().is_err());
    now += Duration::from_millis(60);
    w.tick(now);
    let after = w.allocation_plan().unwrap().batch;
    assert_eq!(after.wait, Duration::from_millis(100));
    assert!(after.started > before.started);
}

#[test]
fn a_player_list_past_the_objects_size_is_refused_and_changes_nothing() {
    let mut w = world("fleets: [ { name: f, replicas: 1 } ]");
    let mut now = Instant::now();
    settle(&mut w, &mut now);
    let name = states(&w).into_keys().next().unwrap();
    let players = |n: usize| SdkCall::Players {
        count: i64::try_from(n).unwrap(),
        capacity: 1_000_000,
        ids: (0..n)
            .map(|i| format!("{i:04}{}", "p".repeat(996)))
            .collect(),
    };
    // 1 000 ids of 1 000 bytes fit in 1.5 MiB; 1 600 do not.
    w.sdk("default", &name, players(1000)).unwrap();
    let rv = w.resource_version();
    let err = w.sdk("default", &name, players(1600)).unwrap_err();
    assert!(
        err.to_string()
            .contains("more than the 1572864 the API server stores"),
        "{err}"
    );
    assert_eq!(w.resource_version(), rv, "nothing changed");
    let gs = &w.gameservers[&("default".to_owned(), name.clone())].obj;
    let kept = gs.status.as_ref().unwrap().players.as_ref().unwrap();
    assert_eq!(kept.ids.len(), 1000);
    // A shorter list is always accepted.
    w.sdk("default", &name, players(10)).unwrap();
}
