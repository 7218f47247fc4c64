//! The allocator's batch loop seen from outside the real binary: an idle Agones allocator sleeps
//! `allocationBatchWaitTime` before it reads the next requests (`pkg/gameserverallocations/
//! allocator.go`, `ListenAndAllocate`), so allocations made one after another each wait for the
//! next wake. The wait comes from the configured default, then from the installed release's
//! tunable. Only lower bounds are asserted: a loaded machine makes allocations slower, never
//! faster, than the loop allows.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{SimProcess, install, test_config, wait_ready};
use serde_json::json;
use upsoak_agones::GameServerAllocation;

/// Allocates `n` times one after another; returns the time from the first request to the last
/// answer. Each answer must be Allocated.
async fn allocate_in_turn(http: &reqwest::Client, url: &str, n: usize) -> Duration {
    let start = Instant::now();
    for _ in 0..n {
        let r = http
            .post(format!(
                "{url}/apis/allocation.agones.dev/v1/namespaces/default/gameserverallocations"
            ))
            .json(&GameServerAllocation::from_fleet("f"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201);
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["status"]["state"], "Allocated", "{body}");
    }
    start.elapsed()
}

#[tokio::test]
async fn allocations_in_turn_each_wait_for_the_batch_loop() {
    let extra = "upgrade_window: 200ms\nallocation: { latency: 2ms, batch_wait: 200ms }\nfleets: [ { name: f, replicas: 20 } ]";
    let sim = SimProcess::start(Some(&test_config(extra)));
    let http = reqwest::Client::new();
    wait_ready(&sim.gameservers(), 20).await;

    // Each request arrives after the wake that served the one before, so it waits for the next:
    // six picks span at least five waits of the configured 200ms.
    let took = allocate_in_turn(&http, &sim.url, 6).await;
    assert!(
        took >= Duration::from_millis(5 * 200),
        "6 allocations took {took:?}"
    );

    // The installed release's tunable replaces the default (milliseconds, as the chart's
    // `allocationBatchWaitTime: 500ms`).
    install(
        &http,
        &sim.url,
        json!({"version": "1.59.0", "tunables": {"allocationBatchWaitTime": 600}}),
    )
    .await;
    let took = allocate_in_turn(&http, &sim.url, 4).await;
    assert!(
        took >= Duration::from_millis(3 * 600),
        "4 allocations took {took:?}"
    );
}
