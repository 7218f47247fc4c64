//! The simulator's own life: ready only once it serves, a requested stop that ends every game
//! port, a poisoned world that stops it with an error, and the exit code of a runtime failure.
// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{eventually, test_config};
use tokio::net::{TcpListener, UdpSocket};
use tokio_util::sync::CancellationToken;
use upsoak_agones::GameServerState;
use upsoak_sim::config::SimConfig;
use upsoak_sim::error::Error;
use upsoak_sim::selector::Selector;
use upsoak_sim::server::Sim;

async fn start(
    extra: &str,
) -> (
    Sim,
    tokio::task::JoinHandle<upsoak_sim::error::Result<()>>,
    CancellationToken,
) {
    let cfg = SimConfig::parse(&test_config(extra), "test").unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let stop = CancellationToken::new();
    let (sim, handle) = Sim::start(cfg, listener, stop.clone(), 1).unwrap();
    (sim, handle, stop)
}

/// The game ports of the Ready GameServers, once there are `n`.
async fn ready_ports(sim: &Sim, n: usize) -> Vec<u16> {
    eventually(10, &format!("{n} Ready GameServers with ports"), || async {
        let w = sim.world.lock().unwrap();
        let ports: Vec<u16> = w
            .list_gameservers(None, &Selector::default())
            .iter()
            .filter(|g| g.state() == Some(GameServerState::Ready))
            .filter_map(|g| g.status.as_ref()?.ports.first())
            .map(|p| u16::try_from(p.port).unwrap())
            .collect();
        (ports.len() == n).then_some(ports)
    })
    .await
}

#[tokio::test]
async fn ready_while_serving_and_a_stop_ends_every_game_port() {
    let (sim, handle, stop) = start("fleets: [ { name: f, replicas: 2 } ]").await;
    let readyz = format!("http://{}/readyz", sim.addr);
    eventually(10, "/readyz to answer 200", || async {
        let r = reqwest::get(&readyz).await.ok()?;
        (r.status().as_u16() == 200).then_some(())
    })
    .await;
    assert!(sim.health.is_ready());
    let ports = ready_ports(&sim, 2).await;

    stop.cancel();
    let stopped = tokio::time::timeout(Duration::from_secs(5), handle)
        .await
        .expect("the simulator stops within 5 s");
    assert!(matches!(stopped, Ok(Ok(()))), "{stopped:?}");
    assert!(!sim.health.is_ready());
    // The world is still alive (the test holds it), yet every game port's task has ended and
    // closed its socket, so the port can be bound again.
    for port in ports {
        eventually(5, &format!("game port {port} to be closed"), || async {
            UdpSocket::bind(("127.0.0.1", port)).await.ok()
        })
        .await;
    }
}

#[tokio::test]
async fn a_poisoned_world_stops_the_simulator_with_an_error() {
    let (sim, handle, _stop) = start("").await;
    let world = Arc::clone(&sim.world);
    // A panic while holding the lock, as a bug in a handler would.
    let panicked = std::thread::spawn(move || {
        let _held = world.lock().unwrap();
        panic!("a bug while holding the world");
    })
    .join();
    assert!(panicked.is_err());
    let stopped = tokio::time::timeout(Duration::from_secs(5), handle)
        .await
        .expect("the simulator stops within 5 s");
    assert!(matches!(stopped, Ok(Err(Error::Poisoned))), "{stopped:?}");
    assert!(sim.health.failure().is_some());
    assert!(!sim.health.is_live());
}

#[tokio::test]
async fn a_runtime_failure_exits_4_and_bad_input_exits_2() {
    let taken = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_upsoak-sim"))
        .args(["--listen", &addr])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("error: cannot listen on `{addr}`")) && err.contains("caused by:"),
        "{err}"
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_upsoak-sim"))
        .args(["--config", "/nonexistent/sim.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
