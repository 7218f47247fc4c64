//! The allocation handler under concurrency: many allocations at once on several threads never
//! allocate one server twice, and an allocation abandoned between pick and commit (its future
//! dropped, as when the client goes away) gives its pick back.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use upsoak_agones::{GameServerAllocation, GameServerState};

use super::allocate;
use crate::api::ApiState;
use crate::config::SimConfig;
use crate::events::SimMetrics;
use crate::selector::Selector;
use crate::world::World;

/// A world whose Fleet `f` has `replicas` Ready servers, and the API state around it.
fn api(replicas: usize, latency: &str) -> ApiState {
    let yaml = format!(
        "{}\nlifecycle: {{ scheduled_after: 300ms, request_ready_after: 500ms, ready_after: 200ms, delete_after_shutdown: 500ms, delete_after_failure: 10s, tick: 50ms }}\nallocation: {{ latency: {latency}, batch_wait: 0ms }}\nfleets: [ {{ name: f, replicas: {replicas} }} ]\n",
        crate::config::DEFAULT_CONFIG_YAML
    );
    let cfg = SimConfig::parse(&yaml, "test").unwrap();
    let mut w = World::new(Arc::new(cfg), SimMetrics::default(), 7);
    let mut now = Instant::now();
    for _ in 0..80 {
        now += Duration::from_millis(250);
        w.tick(now);
    }
    let allocator = w.allocator().clone();
    ApiState {
        world: Arc::new(Mutex::new(w)),
        allocator,
        shutdown: CancellationToken::new(),
    }
}

fn ready(s: &ApiState) -> usize {
    s.lock()
        .unwrap()
        .list_gameservers(Some("default"), &Selector::default())
        .iter()
        .filter(|g| g.state() == Some(GameServerState::Ready))
        .count()
}

fn body() -> Bytes {
    Bytes::from(serde_json::to_vec(&GameServerAllocation::from_fleet("f")).unwrap())
}

/// The state and server name of one allocation's answer.
async fn allocate_once(s: ApiState) -> (String, String) {
    let resp = allocate(State(s), Path("default".to_owned()), body())
        .await
        .unwrap();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    (
        v["status"]["state"].as_str().unwrap().to_owned(),
        v["status"]["gameServerName"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_allocations_never_allocate_a_server_twice() {
    const SERVERS: usize = 300;
    let s = api(SERVERS, "0ms");
    assert_eq!(ready(&s), SERVERS);
    // The controllers keep ticking meanwhile, as they do in the simulator.
    let ticker = {
        let s = s.clone();
        tokio::spawn(async move {
            loop {
                s.lock().unwrap().tick(Instant::now());
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let tasks: Vec<_> = (0..2 * SERVERS)
        .map(|_| tokio::spawn(allocate_once(s.clone())))
        .collect();
    let mut allocated = BTreeSet::new();
    let mut others = 0;
    for t in tasks {
        let (state, name) = t.await.unwrap();
        if state == "Allocated" {
            assert!(allocated.insert(name.clone()), "{name} allocated twice");
        } else {
            assert_eq!(state, "UnAllocated", "only lost races are retried");
            others += 1;
        }
    }
    ticker.abort();
    // Nothing else changes the servers, so every one is picked once and committed.
    assert_eq!(allocated.len(), SERVERS);
    assert_eq!(others, SERVERS);
    let mut w = s.lock().unwrap();
    // One more reconcile, for the Fleet's status to count the last commits.
    w.tick(Instant::now());
    let in_world: BTreeSet<String> = w
        .list_gameservers(Some("default"), &Selector::default())
        .into_iter()
        .filter(|g| g.state() == Some(GameServerState::Allocated))
        .filter_map(|g| g.metadata.name)
        .collect();
    assert_eq!(in_world, allocated);
    let status = w.get_fleet("default", "f").unwrap().status.unwrap();
    assert_eq!(
        (status.allocated_replicas, status.ready_replicas),
        (SERVERS as i32, 0)
    );
    assert_eq!(s.allocator.holds(), 0);
}

#[tokio::test]
async fn an_abandoned_allocation_gives_its_pick_back() {
    let s = api(1, "60s");
    let task = tokio::spawn(allocate_once(s.clone()));
    // Wait (on real state, with a deadline) until the allocation holds the only server.
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.allocator.holds() == 0 {
        assert!(Instant::now() < deadline, "the allocation never picked");
        tokio::task::yield_now().await;
    }
    let gsa = GameServerAllocation::from_fleet("f");
    let sels = [(
        Selector::from_label_selector(&gsa.spec.selectors[0].selector).unwrap(),
        GameServerState::Ready,
    )];
    assert!(s.allocator.pick("default", &gsa, &sels).is_none(), "held");
    // The client goes away: the handler's future is dropped between pick and commit.
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    assert_eq!(s.allocator.holds(), 0);
    assert_eq!(ready(&s), 1, "an abandoned allocation allocates nothing");
    let hold = s
        .allocator
        .pick("default", &gsa, &sels)
        .expect("picked again");
    let (gs, _) = s.lock().unwrap().commit_allocation(hold, &gsa).unwrap();
    assert_eq!(gs.state(), Some(GameServerState::Allocated));
}
