//! What a killed Producer left Allocated is reclaimed by the next one (review 2, D1), against
//! a real simulator: a Producer's sessions and canaries hold servers, its tasks are dropped
//! without a word (what `kill -9` leaves: no `EXIT` is sent), and a new Producer of the same
//! owner releases every one of them, counts them (canaries as lost, `orphaned`), and never
//! touches a server someone else allocated; and the periodic sweep releases this incarnation's
//! servers that nothing holds, deleting one that does not answer `EXIT`.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use kube::api::{Api, ListParams, PostParams};
use tokio_util::sync::CancellationToken;
use upsoak_agones::{GameServer, GameServerAllocation, GameServerState};
use upsoak_chaos::producer::canary::LossReason;
use upsoak_chaos::producer::events::ProducerMetrics;
use upsoak_chaos::producer::owner::{self, INCARNATION_ANNOTATION, OWNER_LABEL, ROLE_LABEL};
use upsoak_chaos::producer::{
    self, CanaryConfig, FleetLoad, Owner, ProducerConfig, ReclaimConfig, Role, SessionConfig,
};
use upsoak_testkit::{POLL, eventually};

/// Within this, every orphan is released: `exit_grace` (1 s) plus the list and the EXITs, with
/// room for a loaded machine.
const RECLAIM_WITHIN: Duration = Duration::from_secs(20);

fn config(rate: f64, canaries: usize) -> ProducerConfig {
    ProducerConfig {
        fleets: vec![FleetLoad {
            name: "r".into(),
            min_replicas: 10,
            max_replicas: 10,
            scale_every_min: Duration::ZERO,
            scale_every_max: Duration::ZERO,
        }],
        allocation_rate: rate,
        // Sessions far longer than the test: only the kill ends them.
        session: SessionConfig {
            min_length: Duration::from_secs(600),
            max_length: Duration::from_secs(600),
            ..SessionConfig::default()
        },
        canaries: CanaryConfig {
            count: canaries,
            interval: Duration::from_millis(200),
            timeout: Duration::from_secs(5),
            max_age: Duration::from_secs(3600),
        },
        reclaim: ReclaimConfig {
            owner: "soak-1".into(),
            exit_grace: Duration::from_secs(1),
            ..ReclaimConfig::default()
        },
        ..ProducerConfig::default()
    }
}

/// Allocated servers by name: (uid, owner label, role label, incarnation).
type Held = BTreeMap<
    String,
    (
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    ),
>;

async fn allocated(api: &Api<GameServer>) -> Held {
    let list = api.list(&ListParams::default()).await.unwrap();
    list.items
        .into_iter()
        .filter(|g| g.state() == Some(GameServerState::Allocated))
        .map(|g| {
            let label = |k: &str| g.metadata.labels.as_ref().and_then(|l| l.get(k).cloned());
            let note = g
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(INCARNATION_ANNOTATION).cloned());
            (
                g.metadata.name.clone().unwrap(),
                (
                    g.metadata.uid.clone(),
                    label(OWNER_LABEL),
                    label(ROLE_LABEL),
                    note,
                ),
            )
        })
        .collect()
}

/// Waits (30 s at most) until `n` GameServers are Ready.
async fn ready(gameservers: &Api<GameServer>, n: usize) {
    eventually(Duration::from_secs(30), POLL, || async {
        let list = gameservers.list(&ListParams::default()).await.ok()?;
        let ready = list
            .items
            .iter()
            .filter(|g| g.state() == Some(GameServerState::Ready))
            .count();
        (ready == n).then_some(())
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_producer_releases_what_a_killed_one_left_allocated_and_nothing_else() {
    let (url, sim_stop) = common::start_sim("fleets: [ { name: r, replicas: 10 } ]", 5).await;
    let client = producer::client(Some(&url)).await.unwrap();
    let gameservers: Api<GameServer> = Api::namespaced(client.clone(), "default");
    ready(&gameservers, 10).await;
    // Someone else's allocation: no owner label.
    let allocations: Api<GameServerAllocation> = Api::namespaced(client.clone(), "default");
    let foreign = allocations
        .create(
            &PostParams::default(),
            &GameServerAllocation::from_fleet("r"),
        )
        .await
        .unwrap()
        .status
        .unwrap()
        .game_server_name;

    // The first incarnation: 2 canaries and sessions, until 6 servers are held.
    let cfg = config(4.0, 2);
    assert!(cfg.problems().is_empty(), "{:?}", cfg.problems());
    let first = ProducerMetrics::default();
    let run = tokio::spawn(producer::run(
        client.clone(),
        cfg,
        first.clone(),
        CancellationToken::new(),
    ));
    let held = eventually(Duration::from_secs(30), POLL, || async {
        let a = allocated(&gameservers).await;
        let ours: Held = a
            .into_iter()
            .filter(|(_, v)| v.1.as_deref() == Some("soak-1"))
            .collect();
        (ours.len() >= 6 && first.canaries_active() == 2).then_some(ours)
    })
    .await
    .unwrap();
    // Every allocation names its owner, its role and one incarnation.
    let roles: Vec<&str> = held.values().filter_map(|v| v.2.as_deref()).collect();
    assert_eq!(
        roles.iter().filter(|r| **r == "canary").count(),
        2,
        "{held:?}"
    );
    assert!(
        roles.iter().all(|r| *r == "canary" || *r == "session"),
        "{held:?}"
    );
    let incarnations: std::collections::BTreeSet<_> = held.values().map(|v| &v.3).collect();
    assert_eq!(incarnations.len(), 1, "{held:?}");
    assert!(incarnations.iter().all(|i| i.is_some()));

    // The kill: every task dropped where it stands, no EXIT sent.
    run.abort();
    assert!(run.await.unwrap_err().is_cancelled());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after_kill = allocated(&gameservers).await;
    for name in held.keys() {
        assert!(
            after_kill.contains_key(name),
            "the kill left {name} Allocated"
        );
    }

    // The next incarnation, without load of its own, so everything it releases is an orphan.
    let second = ProducerMetrics::default();
    let stop = CancellationToken::new();
    let run = tokio::spawn(producer::run(
        client.clone(),
        config(0.0, 0),
        second.clone(),
        stop.clone(),
    ));
    let left = eventually(RECLAIM_WITHIN, POLL, || async {
        let a = allocated(&gameservers).await;
        // A name may come back as a new object (a replacement): only the same uid counts.
        let still: Vec<&String> = held
            .iter()
            .filter(|(n, v)| a.get(*n).is_some_and(|now| now.0 == v.0))
            .map(|(n, _)| n)
            .collect();
        still.is_empty().then_some(a)
    })
    .await
    .unwrap_or_else(|t| panic!("orphans still Allocated: {t}"));
    // Someone else's server is untouched.
    assert!(
        left.contains_key(&foreign),
        "{foreign} was released: {left:?}"
    );
    let n = held.len() as u64;
    // Counted once the reclaim has seen each one go (its servers may be released before the
    // last is counted).
    let counted = || second.reclaimed("exit") + second.reclaimed("deleted");
    eventually(RECLAIM_WITHIN, POLL, || async {
        (counted() >= n).then_some(())
    })
    .await
    .unwrap_or_else(|_| panic!("{} of {n} orphans counted", counted()));
    assert_eq!(counted(), n, "each orphan counted once");
    // The simulated servers answer EXIT, so none had to be deleted.
    assert_eq!(second.reclaimed("exit"), n);
    assert_eq!(second.canaries_lost(LossReason::Orphaned), 2);
    stop.cancel();
    run.await.unwrap().unwrap();
    sim_stop.cancel();
}

async fn allocate(api: &Api<GameServerAllocation>, request: &GameServerAllocation) -> String {
    let st = api
        .create(&PostParams::default(), request)
        .await
        .unwrap()
        .status
        .unwrap();
    assert_eq!(st.state.as_str(), "Allocated");
    st.game_server_name
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweep_releases_untracked_servers_of_this_incarnation_only() {
    // Game traffic to 1.59.0's servers is dropped: an orphan there cannot hear its EXIT.
    let (url, sim_stop) = common::start_sim(
        "fleets: [ { name: w, replicas: 8 } ]\nupgrade_window: 100ms\nfaults:\n  - { name: mute, kind: upgrade_drops_game_traffic, duration: 120s, when: { version: 1.59.0 } }",
        6,
    )
    .await;
    let client = producer::client(Some(&url)).await.unwrap();
    let gameservers: Api<GameServer> = Api::namespaced(client.clone(), "default");
    let allocations: Api<GameServerAllocation> = Api::namespaced(client.clone(), "default");
    ready(&gameservers, 8).await;
    let owner = Owner::new("sweeper");
    let untracked = allocate(&allocations, &owner.allocation("w", Role::Session)).await;
    let held = allocate(&allocations, &owner.allocation("w", Role::Canary)).await;
    let _tracked = owner.track(&held);
    let foreign = allocate(&allocations, &GameServerAllocation::from_fleet("w")).await;
    let cfg = ReclaimConfig {
        owner: "sweeper".into(),
        exit_grace: Duration::from_millis(500),
        sweep_every: Duration::from_millis(300),
        orphan_after: Duration::from_secs(1),
    };
    assert!(cfg.problems().is_empty());
    let metrics = ProducerMetrics::default();
    let stop = CancellationToken::new();
    let run = tokio::spawn(owner::run(
        gameservers.clone(),
        owner.clone(),
        cfg,
        true,
        metrics.clone(),
        stop.clone(),
    ));
    eventually(RECLAIM_WITHIN, POLL, || async {
        (!allocated(&gameservers).await.contains_key(&untracked)).then_some(())
    })
    .await
    .unwrap_or_else(|t| panic!("{untracked} still Allocated: {t}"));
    // Counted once the sweep has seen it go.
    eventually(RECLAIM_WITHIN, POLL, || async {
        (metrics.reclaimed("exit") >= 1).then_some(())
    })
    .await
    .unwrap_or_else(|t| panic!("{untracked}'s release not counted: {t}"));
    assert_eq!(metrics.reclaimed("exit"), 1);
    // One that cannot hear its EXIT is deleted after the grace.
    let r = reqwest::Client::new()
        .post(format!("{url}/upsoak/v1/install"))
        .json(&serde_json::json!({ "version": "1.59.0" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let deaf = allocate(&allocations, &owner.allocation("w", Role::Session)).await;
    eventually(RECLAIM_WITHIN, POLL, || async {
        (metrics.reclaimed("deleted") == 1).then_some(())
    })
    .await
    .unwrap_or_else(|t| panic!("{deaf} not deleted: {t}"));
    assert!(!allocated(&gameservers).await.contains_key(&deaf));
    // Held by a canary, or someone else's: untouched through many sweeps.
    let left = allocated(&gameservers).await;
    assert!(left.contains_key(&held), "{left:?}");
    assert!(left.contains_key(&foreign), "{left:?}");
    assert_eq!(metrics.reclaimed("exit"), 1);
    assert_eq!(metrics.canaries_lost(LossReason::Orphaned), 0);
    stop.cancel();
    run.await.unwrap();
    sim_stop.cancel();
}
