//! Agones' metrics follow its pods: absent while an install's upgrade window replaces the
//! controller and extensions, from zero afterwards, with the families the installed version
//! has (`agones_gameservers_allocations_total` only from 1.59) and the player gauges only
//! with PlayerTracking on.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{SimProcess, eventually, test_config, wait_ready};
use kube::api::{Api, Patch, PatchParams, PostParams};
use upsoak_agones::{Fleet, GameServerAllocation};
use upsoak_testkit::{sample, scrape};

fn agones_lines(t: &str) -> Vec<&str> {
    t.lines().filter(|l| l.contains("agones_")).collect()
}

#[tokio::test]
async fn agones_metrics_are_absent_while_its_pods_are_replaced_and_restart_from_zero() {
    let extra = "upgrade_window: 3s\nfleets: [ { name: r1, replicas: 3 } ]";
    let sim = SimProcess::start(Some(&test_config(extra)));
    let http = reqwest::Client::new();
    let client = sim.client();
    wait_ready(&sim.gameservers(), 3).await;
    let gsa: Api<GameServerAllocation> = Api::namespaced(client.clone(), "default");
    gsa.create(
        &PostParams::default(),
        &GameServerAllocation::from_fleet("r1"),
    )
    .await
    .unwrap();
    let before = scrape(&sim.url).await.unwrap();
    let created = sample(
        &before,
        "agones_gameservers_total{type=\"Creating\",fleet_name=\"r1\",namespace=\"default\"}",
    );
    assert_eq!(created, Some(3.0), "{before}");
    assert!(
        before.contains("agones_gameservers_allocations_total{fleet_name=\"r1\""),
        "1.60 has the allocations counter:\n{before}"
    );

    let r = http
        .post(format!("{}/upsoak/v1/install", sim.url))
        .json(&serde_json::json!({"version": "1.58.0", "featureGates": "PlayerTracking=true"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    // In the window: not one Agones series; the simulator's own gauges go on.
    let during = scrape(&sim.url).await.unwrap();
    assert_eq!(sample(&during, "upsoak_sim_upgrade_in_progress"), Some(1.0));
    assert!(agones_lines(&during).is_empty(), "{during}");

    // A scale is admitted in the window; its servers are created once the window closes.
    let fleets: Api<Fleet> = Api::namespaced(client.clone(), "default");
    fleets
        .patch_scale(
            "r1",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"replicas": 5}})),
        )
        .await
        .unwrap();
    let after = eventually(15, "the window to close and 2 servers to be created", || async {
        let t = scrape(&sim.url).await.unwrap();
        (sample(&t, "upsoak_sim_upgrade_in_progress") == Some(0.0)
            && sample(
                &t,
                "agones_gameservers_total{type=\"Creating\",fleet_name=\"r1\",namespace=\"default\"}",
            ) == Some(2.0))
        .then_some(t)
    })
    .await;
    // The new pods counted only what happened since they started: 2 creations, not 5, and no
    // allocation (1.58 has no allocations counter at all).
    assert!(
        !after.contains("agones_gameservers_allocations_total"),
        "1.58 has no allocations counter:\n{after}"
    );
    assert!(
        !after.contains("agones_gameserver_allocations_duration_seconds_count"),
        "the allocation histogram restarted empty:\n{after}"
    );
    // The gauges are back, and the servers created with PlayerTracking on report players.
    assert_eq!(
        sample(
            &after,
            "agones_fleets_replicas_count{name=\"r1\",namespace=\"default\",type=\"desired\"}"
        ),
        Some(5.0),
        "{after}"
    );
    let player_series = after
        .lines()
        .filter(|l| l.starts_with("agones_gameserver_player_capacity_total{fleet_name=\"r1\""))
        .count();
    assert_eq!(player_series, 2, "{after}");
}
