//! An in-process simulator for the sidecar's integration tests: the built-in configuration
//! (Agones 1.55–1.60) with `extra` YAML appended, served over real HTTP on loopback, its game
//! ports picked by the OS (so tests running at once never collide).

use tokio_util::sync::CancellationToken;
use upsoak_sim::config::SimConfig;
use upsoak_sim::server::Sim;

/// Fast lifecycle timings, unless `extra` sets its own (the simulator's defaults are realistic:
/// seconds to Ready).
const FAST_LIFECYCLE: &str = "lifecycle: { scheduled_after: 50ms, request_ready_after: 50ms, ready_after: 50ms, delete_after_shutdown: 100ms, delete_after_failure: 1s, tick: 20ms }";

/// Starts the simulator; returns its URL and the token that stops it.
pub async fn start_sim(extra: &str, seed: u64) -> (String, CancellationToken) {
    let lifecycle = if extra.contains("lifecycle:") {
        ""
    } else {
        FAST_LIFECYCLE
    };
    // The allocator's batch wait (500ms, Agones' default) is off unless `extra` sets
    // `allocation`: the Producer's tests count outcomes, not the batch loop's wait.
    let allocation = if extra.contains("allocation:") {
        ""
    } else {
        "allocation: { batch_wait: 0ms }"
    };
    // `extra` may choose the first install (with its gates): it then replaces the default's.
    let default = upsoak_sim::config::DEFAULT_CONFIG_YAML;
    let initial = "initial:\n  version: 1.60.0\n";
    assert!(
        default.contains(initial),
        "the default's initial install moved"
    );
    let base = if extra.contains("initial:") {
        default.replacen(initial, "", 1)
    } else {
        default.to_owned()
    };
    let yaml = format!("{base}\ngame: {{ port_min: 0 }}\n{lifecycle}\n{allocation}\n{extra}\n");
    let cfg = SimConfig::parse(&yaml, "test").unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let stop = CancellationToken::new();
    let (sim, _handle) = Sim::start(cfg, listener, stop.clone(), seed).unwrap();
    (format!("http://{}", sim.addr), stop)
}
pub mod fake_helm;
