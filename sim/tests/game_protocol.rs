//! The game protocol end to end on the real binary: allocate a GameServer over the Kubernetes
//! API, talk to its UDP port, and see EXIT take it through Shutdown to a replacement.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{SimProcess, eventually, test_config, wait_ready};
use kube::api::{Api, ListParams, PostParams};
use tokio::net::UdpSocket;
use upsoak_agones::{GameServerAllocation, GameServerState};
use upsoak_testkit::scrape;

async fn say(sock: &UdpSocket, port: i32, text: &str) -> String {
    sock.send_to(text.as_bytes(), ("127.0.0.1", port as u16))
        .await
        .unwrap();
    let mut buf = [0u8; 2048];
    let (n, _) = tokio::time::timeout(Duration::from_secs(5), sock.recv_from(&mut buf))
        .await
        .unwrap_or_else(|_| panic!("no reply to {text:?} from port {port}"))
        .unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test]
async fn a_session_over_udp_ends_in_shutdown_and_replacement() {
    let sim = SimProcess::start(Some(&test_config("fleets: [ { name: g1, replicas: 2 } ]")));
    let gss = sim.gameservers();
    wait_ready(&gss, 2).await;
    let gsa: Api<GameServerAllocation> = Api::namespaced(sim.client(), "default");
    let out = gsa
        .create(
            &PostParams::default(),
            &GameServerAllocation::from_fleet("g1"),
        )
        .await
        .unwrap()
        .status
        .unwrap();
    let port = out.ports[0].port;
    let name = out.game_server_name;
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();

    // The simple-game-server's reply forms (`examples/simple-game-server/main.go` and
    // `handlers.go`): `ACK: ` only for commands that act, queries answered bare.
    assert_eq!(
        say(&sock, port, "GAMESERVER").await,
        format!("NAME: {name}\n")
    );
    assert_eq!(say(&sock, port, "hello there").await, "ACK: hello there\n");
    assert_eq!(say(&sock, port, "LABEL k v").await, "ACK: LABEL k v\n");
    for (line, want) in [
        ("LABEL", "ACK: LABEL\n"),
        (
            "LABEL k",
            "ERROR: Invalid LABEL command, must use zero or 2 arguments\n",
        ),
        ("INCREMENT_COUNTER rooms 2", "SUCCESS\n"),
        ("GET_COUNTER_COUNT rooms", "COUNTER: 2\n"),
        ("GET_COUNTER_CAPACITY rooms", "CAPACITY: 1000\n"),
        ("APPEND_LIST_VALUE maps dust", "SUCCESS\n"),
        ("LIST_CONTAINS maps dust", "FOUND: true\n"),
        ("LIST_CONTAINS maps inferno", "FOUND: false\n"),
        ("GET_LIST_LENGTH maps", "LENGTH: 1\n"),
        ("GET_LIST_VALUES maps", "VALUES: dust\n"),
        ("GET_LIST_VALUES empty", "VALUES: <none>\n"),
        (
            "GET_COUNTER_COUNT",
            "ERROR: Invalid GET_COUNTER_COUNT, should have 1 argument\n",
        ),
        ("EXIT later", "ACK: EXIT later\n"),
    ] {
        assert_eq!(say(&sock, port, line).await, want, "{line}");
    }
    eventually(5, "the SDK label", || async {
        let g = gss.get(&name).await.unwrap();
        g.metadata
            .labels
            .and_then(|l| l.get("agones.dev/sdk-k").cloned())
            .filter(|v| v == "v")
    })
    .await;

    // EXIT: Shutdown, deleted, and the Fleet brings back its second server.
    assert_eq!(say(&sock, port, "EXIT").await, "ACK: EXIT\n");
    eventually(10, "the exited server to be deleted", || async {
        gss.get(&name).await.is_err().then_some(())
    })
    .await;
    eventually(10, "a replacement to be Ready", || async {
        let l = gss.list(&ListParams::default()).await.unwrap();
        let ready = l
            .items
            .iter()
            .filter(|g| g.state() == Some(GameServerState::Ready))
            .count();
        (ready == 2 && l.items.len() == 2).then_some(())
    })
    .await;
    let metrics = scrape(&sim.url).await.unwrap();
    assert!(
        metrics.contains(
            "agones_gameservers_total{type=\"Shutdown\",fleet_name=\"g1\",namespace=\"default\"} 1"
        ),
        "{metrics}"
    );
}

/// With PlayerTracking off (the default of every version), a player command is refused by the
/// SDK and the simple-game-server exits: no reply, and the GameServer goes Unhealthy.
#[tokio::test]
async fn a_player_command_with_the_gate_off_makes_the_server_unhealthy() {
    let sim = SimProcess::start(Some(&test_config("fleets: [ { name: g2, replicas: 1 } ]")));
    let gss = sim.gameservers();
    let ready = wait_ready(&gss, 1).await;
    let gs = &ready[0];
    assert!(gs.status.as_ref().unwrap().players.is_none());
    let name = gs.metadata.name.clone().unwrap();
    let port = gs.status.as_ref().unwrap().ports[0].port;
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    assert_eq!(say(&sock, port, "hello").await, "ACK: hello\n");
    sock.send_to(b"PLAYER_CONNECT alice", ("127.0.0.1", port as u16))
        .await
        .unwrap();
    eventually(5, "the server to be Unhealthy", || async {
        let g = gss.get(&name).await.ok()?;
        (g.state() == Some(GameServerState::Unhealthy)).then_some(())
    })
    .await;
    // Nothing answered the command, and nothing answers any more.
    let mut buf = [0u8; 64];
    let late = tokio::time::timeout(Duration::from_millis(300), sock.recv_from(&mut buf)).await;
    assert!(!matches!(late, Ok(Ok(_))), "a reply came: {late:?}");
}
