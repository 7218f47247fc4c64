//! What a killed Producer left Allocated is reclaimed by the next one (review 2, D1), against
//! a real simulator: a Producer's sessions and canaries hold servers, its tasks are dropped
//! without a word (what `kill -9` leaves: no `EXIT` is sent), and a new Producer of the same
//! owner releases every one of them, counts them (canaries as lost, `orphaned`), and never
//! touches a server someone else allocated.

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
use upsoak_chaos::producer::owner::{INCARNATION_ANNOTATION, OWNER_LABEL, ROLE_LABEL};
use upsoak_chaos::producer::{
    self, CanaryConfig, FleetLoad, ProducerConfig, ReclaimConfig, SessionConfig,
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_producer_releases_what_a_killed_one_left_allocated_and_nothing_else() {
    let (url, sim_stop) = common::start_sim("fleets: [ { name: r, replicas: 10 } ]", 5).await;
    let client = producer::client(Some(&url)).await.unwrap();
    let gameservers: Api<GameServer> = Api::namespaced(client.clone(), "default");
    eventually(Duration::from_secs(30), POLL, || async {
        let list = gameservers.list(&ListParams::default()).await.ok()?;
        (list
            .items
            .iter()
            .filter(|g| g.state() == Some(GameServerState::Ready))
            .count()
            == 10)
            .then_some(())
    })
    .await
    .unwrap();
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
    assert_eq!(
        second.reclaimed("exit") + second.reclaimed("deleted"),
        n,
        "each orphan counted once"
    );
    // The simulated servers answer EXIT, so none had to be deleted.
    assert_eq!(second.reclaimed("exit"), n);
    assert_eq!(second.canaries_lost(LossReason::Orphaned), 2);
    stop.cancel();
    run.await.unwrap().unwrap();
    sim_stop.cancel();
}
