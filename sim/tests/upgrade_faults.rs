//! Upgrade-time faults, seen from outside the real binary: each is active only inside an
//! install window whose target matches its `when`; a misspelt kind or key is refused with its
//! path and exit 2.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{SimProcess, eventually, test_config, wait_ready};
use kube::api::ListParams;
use serde_json::{Value, json};
use tokio::net::UdpSocket;
use upsoak_agones::{GameServerAllocation, GameServerState};
use upsoak_testkit::scrape;

/// POSTs an install and returns at once (202), without waiting for its window.
async fn start_install(http: &reqwest::Client, url: &str, version: &str) -> Instant {
    let r = http
        .post(format!("{url}/upsoak/v1/install"))
        .json(&json!({ "version": version }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202, "{}", r.text().await.unwrap());
    Instant::now()
}

async fn window_closed(url: &str) {
    eventually(30, "the install window to close", || async {
        let t = scrape(url).await.unwrap();
        t.contains("upsoak_sim_upgrade_in_progress 0").then_some(())
    })
    .await;
}

/// Allocates from `fleet`; the GameServer's name and game port.
async fn allocate(http: &reqwest::Client, url: &str, fleet: &str) -> (String, u16) {
    let r: Value = http
        .post(format!(
            "{url}/apis/allocation.agones.dev/v1/namespaces/default/gameserverallocations"
        ))
        .json(&GameServerAllocation::from_fleet(fleet))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["status"]["state"], "Allocated", "{r}");
    (
        r["status"]["gameServerName"].as_str().unwrap().to_owned(),
        u16::try_from(r["status"]["ports"][0]["port"].as_u64().unwrap()).unwrap(),
    )
}

/// Sends `text` to the game port and waits up to `within` for an answer.
async fn ask(port: u16, text: &str, within: Duration) -> Option<String> {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sock.connect(("127.0.0.1", port)).await.unwrap();
    sock.send(text.as_bytes()).await.unwrap();
    let mut buf = [0u8; 1024];
    match tokio::time::timeout(within, sock.recv(&mut buf)).await {
        Ok(Ok(n)) => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
        _ => None,
    }
}

fn fault_active(text: &str, name: &str) -> Option<f64> {
    upsoak_testkit::sample(
        text,
        &format!("upsoak_sim_fault_active{{fault=\"{name}\"}}"),
    )
}

#[test]
fn a_misspelt_upgrade_fault_kind_or_key_exits_2_with_its_path() {
    let dir = upsoak_testkit::TempDir::new("sim-upgrade-faults");
    for (fault, want) in [
        (
            "{ name: k, kind: upgrade_kills_alocated, fraction: 1 }",
            "unknown variant `upgrade_kills_alocated`",
        ),
        (
            "{ name: k, kind: upgrade_kills_allocated, fracton: 1 }",
            "unknown field `fracton`",
        ),
        (
            "{ name: s, kind: upgrade_stalls, factor: 0 }",
            "faults[0].factor: 0 is not a finite number >= 1",
        ),
    ] {
        let path = dir.write("bad.yaml", &test_config(&format!("faults: [ {fault} ]")));
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_upsoak-sim"))
            .arg("--config")
            .arg(&path)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{fault}: {err}");
        assert!(err.contains("faults[0]"), "{fault}: {err}");
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
    // Spelt right, the simulator starts with it.
    let sim = SimProcess::start(Some(&test_config(
        "faults: [ { name: k, kind: upgrade_kills_allocated, fraction: 0.5 } ]",
    )));
    assert_eq!(sim.stop().code(), Some(0));
}

#[tokio::test]
async fn upgrade_kills_allocated_shuts_down_allocated_servers_only_in_a_matching_window() {
    let extra = "upgrade_window: 1s\nfleets: [ { name: f, replicas: 6 } ]\nfaults:\n  - { name: kill, kind: upgrade_kills_allocated, fraction: 1.0, when: { version: 1.59.0 } }";
    let sim = SimProcess::start(Some(&test_config(extra)));
    let http = reqwest::Client::new();
    let api = sim.gameservers();
    wait_ready(&api, 6).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(allocate(&http, &sim.url, "f").await.0);
    }
    let allocated = || async {
        let l = api.list(&ListParams::default()).await.unwrap();
        held.iter()
            .filter(|n| {
                l.items.iter().any(|g| {
                    g.metadata.name.as_deref() == Some(n.as_str())
                        && g.state() == Some(GameServerState::Allocated)
                })
            })
            .count()
    };
    // Not the target it names: nothing is killed, and the fault never shows active.
    start_install(&http, &sim.url, "1.58.0").await;
    let t = scrape(&sim.url).await.unwrap();
    assert_eq!(fault_active(&t, "kill"), Some(0.0), "{t}");
    window_closed(&sim.url).await;
    assert_eq!(allocated().await, 3);
    // Its target: active inside the window, and every Allocated server is shut down in it.
    let opened = start_install(&http, &sim.url, "1.59.0").await;
    let t = scrape(&sim.url).await.unwrap();
    assert_eq!(fault_active(&t, "kill"), Some(1.0), "{t}");
    eventually(10, "the held servers to be shut down", || async {
        (allocated().await == 0).then_some(())
    })
    .await;
    let t = scrape(&sim.url).await.unwrap();
    let upgrading = t.contains("upsoak_sim_upgrade_in_progress 1");
    // Planned in the window's first half: gone before it closes (unless the machine stalled).
    assert!(
        upgrading || opened.elapsed() > Duration::from_secs(1),
        "{t}"
    );
    window_closed(&sim.url).await;
    let t = scrape(&sim.url).await.unwrap();
    assert_eq!(fault_active(&t, "kill"), Some(0.0), "{t}");
    // The Fleet replaces them.
    wait_ready(&api, 6).await;
}

#[tokio::test]
async fn upgrade_stalls_lengthens_only_a_matching_window() {
    let extra = "upgrade_window: 500ms\nfaults:\n  - { name: stall, kind: upgrade_stalls, factor: 6, when: { version: 1.59.0 } }";
    let sim = SimProcess::start(Some(&test_config(extra)));
    let http = reqwest::Client::new();
    let opened = start_install(&http, &sim.url, "1.58.0").await;
    window_closed(&sim.url).await;
    let plain = opened.elapsed();
    let opened = start_install(&http, &sim.url, "1.59.0").await;
    window_closed(&sim.url).await;
    let stalled = opened.elapsed();
    assert!(stalled >= Duration::from_secs(3), "{stalled:?}");
    assert!(plain < Duration::from_millis(2500), "{plain:?}");
}

#[tokio::test]
async fn upgrade_drops_game_traffic_silences_game_ports_for_its_duration() {
    let extra = "upgrade_window: 300ms\nfleets: [ { name: f, replicas: 2 } ]\nfaults:\n  - { name: mute, kind: upgrade_drops_game_traffic, duration: 3s, when: { version: 1.59.0 } }";
    let sim = SimProcess::start(Some(&test_config(extra)));
    let http = reqwest::Client::new();
    wait_ready(&sim.gameservers(), 2).await;
    let (_, port) = allocate(&http, &sim.url, "f").await;
    let quick = Duration::from_millis(500);
    assert!(ask(port, "hello", quick).await.is_some());
    // Another target: the port keeps answering through the window.
    start_install(&http, &sim.url, "1.58.0").await;
    assert!(ask(port, "hello", quick).await.is_some());
    window_closed(&sim.url).await;
    let opened = start_install(&http, &sim.url, "1.59.0").await;
    assert_eq!(
        ask(port, "hello", quick).await,
        None,
        "answered while muted"
    );
    // It answers again after the duration, though the window closed long before.
    let answer = eventually(15, "the game port to answer again", || async {
        ask(port, "hello", Duration::from_millis(200)).await
    })
    .await;
    assert!(answer.contains("hello"), "{answer}");
    assert!(opened.elapsed() >= Duration::from_millis(2800));
}
