//! Patches in flight are bounded across requests (D4) on the real binary: a burst of concurrent
//! YAML alias bombs gets some 429s with `Retry-After` and a Status body, every other request is
//! answered, and the simulator keeps serving.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{SimProcess, test_config, wait_ready};
use serde_json::Value;
use upsoak_sim::api::MAX_PATCHES_IN_FLIGHT;

/// `simconc.py`'s bomb: 10 KB of YAML whose aliases expand past the parse budget.
fn alias_bomb() -> String {
    let a = vec!["x"; 1000].join(",");
    let b = vec!["*a"; 1000].join(",");
    let c = vec!["*b"; 50].join(",");
    format!("a: &a [{a}]\nb: &b [{b}]\nc: [{c}]\n")
}

#[tokio::test]
async fn concurrent_patch_bombs_past_the_bound_get_429_with_retry_after() {
    let sim = SimProcess::start(Some(&test_config("fleets: [ { name: g1, replicas: 1 } ]")));
    wait_ready(&sim.gameservers(), 1).await;
    let http = reqwest::Client::new();
    let url = format!(
        "{}/apis/agones.dev/v1/namespaces/default/fleets/g1?fieldManager=t",
        sim.url
    );
    let n = 4 * MAX_PATCHES_IN_FLIGHT;
    let bomb = alias_bomb();
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(n));
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let (http, url, bomb, barrier) =
                (http.clone(), url.clone(), bomb.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let r = http
                    .patch(url)
                    .header("content-type", "application/apply-patch+yaml")
                    .body(bomb)
                    .send()
                    .await
                    .unwrap();
                let status = r.status().as_u16();
                let retry = r
                    .headers()
                    .get("retry-after")
                    .map(|v| v.to_str().unwrap().to_owned());
                let body: Value = r.json().await.unwrap();
                (status, retry, body)
            })
        })
        .collect();
    let mut refused = 0;
    for t in tasks {
        let (status, retry, body) = t.await.unwrap();
        match status {
            429 => {
                refused += 1;
                assert_eq!(retry.as_deref(), Some("1"));
                assert_eq!(body["kind"], "Status");
                assert_eq!(body["reason"], "TooManyRequests");
                assert_eq!(body["details"]["retryAfterSeconds"], 1);
                let message = body["message"].as_str().unwrap();
                assert!(message.contains("patches are being applied"), "{message}");
            }
            // Admitted: the bomb is refused by its own parse budget.
            400 => {
                assert_eq!(retry, None);
                let message = body["message"].as_str().unwrap();
                assert!(message.contains("not valid YAML"), "{message}");
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(refused > 0, "{n} concurrent bombs, none refused");
    assert!(
        refused <= n - MAX_PATCHES_IN_FLIGHT,
        "{refused} of {n} refused"
    );

    // The simulator still serves, and the permits came back: a patch is applied.
    let v = http
        .get(format!("{}/version", sim.url))
        .send()
        .await
        .unwrap();
    assert_eq!(v.status(), 200);
    let r = http
        .patch(&url)
        .header("content-type", "application/merge-patch+json")
        .body(r#"{"spec":{"replicas":2}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let fleet: Value = r.json().await.unwrap();
    assert_eq!(fleet["spec"]["replicas"], 2);
}
