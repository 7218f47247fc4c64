//! Each fault profile, seen from outside the real binary: through the Kubernetes API and
//! `/metrics`, as the sidecar and the agent will see it.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{SimProcess, eventually, install, post_json, test_config, wait_ready};
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::json;
use upsoak_agones::{Fleet, GameServer, GameServerAllocation};
use upsoak_testkit::{sample, scrape, sum_series};

/// POSTs an allocation; returns (HTTP status, elapsed).
async fn allocate(http: &reqwest::Client, url: &str, fleet: &str) -> (u16, Duration) {
    let start = Instant::now();
    let r = http
        .post(format!(
            "{url}/apis/allocation.agones.dev/v1/namespaces/default/gameserverallocations"
        ))
        .json(&GameServerAllocation::from_fleet(fleet))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), start.elapsed())
}

#[tokio::test]
async fn allocation_latency_and_failures_follow_the_installed_version() {
    let extra = "upgrade_window: 200ms\nallocation: { latency: 5ms, batch_wait: 0ms }\nfleets: [ { name: f, replicas: 30 } ]\nfaults:\n  - { name: slow-1.59, kind: allocation_latency, multiplier: 4, added: 100ms, when: { version: 1.59.0 } }\n  - { name: broken-1.58, kind: allocation_failures, rate: 1.0, when: { version: 1.58.0 } }";
    let sim = SimProcess::start(Some(&test_config(extra)));
    let http = reqwest::Client::new();
    wait_ready(&sim.gameservers(), 30).await;
    let (code, fast) = allocate(&http, &sim.url, "f").await;
    assert_eq!(code, 201);
    let t = scrape(&sim.url).await.unwrap();
    assert!(
        t.contains("upsoak_sim_fault_active{fault=\"slow-1.59\"} 0"),
        "{t}"
    );

    install(&http, &sim.url, json!({"version": "1.59.0"})).await;
    let t = scrape(&sim.url).await.unwrap();
    assert!(
        t.contains("upsoak_sim_fault_active{fault=\"slow-1.59\"} 1"),
        "{t}"
    );
    let (code, slow) = allocate(&http, &sim.url, "f").await;
    assert_eq!(code, 201);
    assert!(
        slow >= Duration::from_millis(120),
        "slow {slow:?}, fast {fast:?}"
    );
    // Agones' histogram shows it: the install replaced the pods, so the histogram restarted
    // from zero and holds this one slow request, above the 0.1 s bucket.
    let t = scrape(&sim.url).await.unwrap();
    let le_01 = sample(
        &t,
        "agones_gameserver_allocations_duration_seconds_bucket{fleet_name=\"f\",cluster_name=\"none\",is_multicluster=\"false\",status=\"Allocated\",scheduling_strategy=\"Packed\",le=\"0.1\"}",
    );
    let count = sample(
        &t,
        "agones_gameserver_allocations_duration_seconds_count{fleet_name=\"f\",cluster_name=\"none\",is_multicluster=\"false\",status=\"Allocated\"",
    );
    assert_eq!((le_01, count), (Some(0.0), Some(1.0)), "{t}");

    install(&http, &sim.url, json!({"version": "1.58.0"})).await;
    let (code, _) = allocate(&http, &sim.url, "f").await;
    assert_eq!(code, 500);
    let t = scrape(&sim.url).await.unwrap();
    assert!(t.contains("status=\"error\""), "{t}");
    assert!(
        t.contains("upsoak_sim_fault_active{fault=\"slow-1.59\"} 0"),
        "{t}"
    );
}

#[tokio::test]
async fn failures_stalls_and_memory_growth_are_visible() {
    let extra = "upgrade_window: 200ms\nfleets: [ { name: f, replicas: 5 } ]\nfaults:\n  - { name: errors, kind: game_server_failures, per_second: 0.5, state: Unhealthy, when: { gate: { name: PlayerTracking, enabled: true } } }\n  - { name: stall, kind: reconcile_stall, when: { version: 1.57.0 } }\n  - { name: leak, kind: memory_growth, bytes_per_second: 50000000, when: { version: 1.57.0 } }";
    let sim = SimProcess::start(Some(&test_config(extra)));
    let http = reqwest::Client::new();
    wait_ready(&sim.gameservers(), 5).await;
    assert_eq!(
        sample(
            &scrape(&sim.url).await.unwrap(),
            "agones_gameservers_count{type=\"Unhealthy\""
        ),
        None
    );

    install(
        &http,
        &sim.url,
        json!({"version": "1.60.0", "featureGates": "PlayerTracking=true"}),
    )
    .await;
    eventually(10, "Unhealthy GameServers", || async {
        let t = scrape(&sim.url).await.unwrap();
        (sample(&t, "agones_gameservers_total{type=\"Unhealthy\"").unwrap_or(0.0) >= 2.0)
            .then_some(())
    })
    .await;

    install(&http, &sim.url, json!({"version": "1.57.0"})).await;
    let mem0 = sum_series(
        &scrape(&sim.url).await.unwrap(),
        "upsoak_sim_controller_resident_memory_bytes",
    )
    .unwrap();
    let fleets: Api<Fleet> = Api::namespaced(sim.client(), "default");
    fleets
        .patch_scale(
            "f",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 9}})),
        )
        .await
        .unwrap();
    // The leak grows on every controller tick: once it has grown by 40 MB (0.8 s at 50 MB/s),
    // the controller has ticked dozens of times, each a chance to converge had it not stalled.
    let t = eventually(10, "the stalled controller's memory to grow", || async {
        let t = scrape(&sim.url).await.unwrap();
        (sum_series(&t, "upsoak_sim_controller_resident_memory_bytes").unwrap()
            > mem0 + 40_000_000.0)
            .then_some(t)
    })
    .await;
    assert_eq!(
        sample(
            &t,
            "agones_fleets_replicas_count{name=\"f\",namespace=\"default\",type=\"desired\"}"
        ),
        Some(9.0)
    );
    assert!(
        sample(
            &t,
            "agones_fleets_replicas_count{name=\"f\",namespace=\"default\",type=\"total\"}"
        )
        .unwrap()
            < 9.0,
        "a stalled controller must not converge:\n{t}"
    );
    let mem1 = sum_series(&t, "upsoak_sim_controller_resident_memory_bytes").unwrap();
    assert!(mem1 > mem0 + 40_000_000.0, "memory {mem0} -> {mem1}");

    // Leaving the faulty version heals it: the Fleet converges.
    install(&http, &sim.url, json!({"version": "1.56.0"})).await;
    eventually(10, "the Fleet to converge", || async {
        let f = fleets.get("f").await.unwrap();
        (f.status.unwrap().replicas == 9).then_some(())
    })
    .await;
}

#[tokio::test]
async fn concurrent_allocations_never_share_a_server_and_lost_races_are_contention() {
    // A long pick-to-commit gap and no retries: concurrent allocations get different servers
    // (a picked server leaves the candidate list, as in Agones' allocation cache), and a server
    // deleted between pick and commit makes its allocation answer Contention.
    let extra = "allocation: { latency: 400ms, pick_window: 1, retries: 0, batch_wait: 0ms }\nfleets: [ { name: f, replicas: 2 } ]";
    let sim = SimProcess::start(Some(&test_config(extra)));
    wait_ready(&sim.gameservers(), 2).await;
    let url = format!(
        "{}/apis/allocation.agones.dev/v1/namespaces/default/gameserverallocations",
        sim.url
    );
    let http = reqwest::Client::new();
    let send = || async {
        let r = post_json(&http, &url, &GameServerAllocation::from_fleet("f")).await;
        (
            r["status"]["state"].as_str().unwrap().to_owned(),
            r["status"]["gameServerName"]
                .as_str()
                .unwrap_or("")
                .to_owned(),
        )
    };
    let (a, b) = tokio::join!(send(), send());
    assert_eq!((a.0.as_str(), b.0.as_str()), ("Allocated", "Allocated"));
    assert_ne!(a.1, b.1, "two allocations got the same server");

    // Scale up by one, then delete the server an allocation picked while it waits to commit.
    let fleets: Api<Fleet> = Api::namespaced(sim.client(), "default");
    fleets
        .patch_scale(
            "f",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 3}})),
        )
        .await
        .unwrap();
    wait_ready(&sim.gameservers(), 1).await;
    let gss: Api<GameServer> = Api::namespaced(sim.client(), "default");
    let ready = gss
        .list(&ListParams::default().fields("status.state=Ready"))
        .await
        .unwrap()
        .items[0]
        .metadata
        .name
        .clone()
        .unwrap();
    let (lost, _) = tokio::join!(send(), async {
        tokio::time::sleep(Duration::from_millis(150)).await;
        gss.delete(&ready, &Default::default()).await.unwrap();
    });
    assert_eq!(lost.0, "Contention");
    let t = scrape(&sim.url).await.unwrap();
    assert!(t.contains("status=\"Contention\""), "{t}");
}
