//! Host and Origin of writes on the real binary (M9): a kubectl-like request passes, a
//! browser-like cross-site write and a DNS-rebound `Host` are refused with 403 and a Status, and
//! nothing changes.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{SimProcess, get_json, test_config};
use serde_json::{Value, json};

fn sim() -> SimProcess {
    SimProcess::start(Some(&test_config("fleets: [ { name: g1, replicas: 1 } ]")))
}

/// PATCHes the Fleet's replicas with extra headers; the status and the body.
async fn patch_replicas(
    http: &reqwest::Client,
    sim: &SimProcess,
    replicas: u32,
    headers: &[(&str, &str)],
) -> (u16, Value) {
    let mut req = http
        .patch(format!(
            "{}/apis/agones.dev/v1/namespaces/default/fleets/g1",
            sim.url
        ))
        .header("content-type", "application/merge-patch+json")
        .body(json!({"spec": {"replicas": replicas}}).to_string());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn replicas(http: &reqwest::Client, sim: &SimProcess) -> Value {
    let f = get_json(
        http,
        &format!(
            "{}/apis/agones.dev/v1/namespaces/default/fleets/g1",
            sim.url
        ),
    )
    .await;
    f["spec"]["replicas"].clone()
}

#[tokio::test]
async fn a_kubectl_like_write_passes() {
    let sim = sim();
    let http = reqwest::Client::new();
    // No Origin, Host the loopback address it was sent to (what reqwest, kube-rs, kubectl and
    // curl send), or `localhost`.
    let (status, body) = patch_replicas(&http, &sim, 2, &[]).await;
    assert_eq!(status, 200, "{body}");
    let port = sim.url.rsplit(':').next().unwrap().to_owned();
    let host = format!("localhost:{port}");
    let (status, body) = patch_replicas(&http, &sim, 3, &[("host", &host)]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(replicas(&http, &sim).await, 3);
    let r = http
        .post(format!("{}/upsoak/v1/install", sim.url))
        .json(&json!({"version": "1.59.0"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
}

#[tokio::test]
async fn a_browser_like_cross_site_write_is_refused() {
    let sim = sim();
    let http = reqwest::Client::new();
    let before = get_json(&http, &format!("{}/upsoak/v1/installed", sim.url)).await;
    let r = http
        .post(format!("{}/upsoak/v1/install", sim.url))
        .header("origin", "http://evil.example")
        .json(&json!({"version": "1.59.0"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["kind"], "Status");
    assert_eq!(body["reason"], "Forbidden");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("Origin `http://evil.example`"),
        "{message}"
    );
    let after = get_json(&http, &format!("{}/upsoak/v1/installed", sim.url)).await;
    assert_eq!(before, after, "the refused install changed nothing");

    let (status, body) = patch_replicas(&http, &sim, 5, &[("origin", "http://evil.example")]).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(replicas(&http, &sim).await, 1);
}

#[tokio::test]
async fn a_dns_rebound_host_is_refused_for_writes_only() {
    let sim = sim();
    let http = reqwest::Client::new();
    // The page's own origin, so no cross-site check would stop it: only its Host does.
    let (status, body) = patch_replicas(
        &http,
        &sim,
        5,
        &[
            ("host", "evil.example:8080"),
            ("origin", "http://evil.example:8080"),
        ],
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["reason"], "Forbidden");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("Host `evil.example:8080`"), "{message}");
    let (status, _) = patch_replicas(&http, &sim, 5, &[("host", "evil.example:8080")]).await;
    assert_eq!(status, 403);
    assert_eq!(replicas(&http, &sim).await, 1);
    // Reads are not checked.
    let r = http
        .get(format!("{}/version", sim.url))
        .header("host", "evil.example:8080")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}
