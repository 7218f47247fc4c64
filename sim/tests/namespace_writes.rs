//! A write whose object names another namespace than its path is refused with 400, as the API
//! server's `BeforeCreate`/`BeforeUpdate` refuse it, for create, replace and patch alike (S10:
//! a JSON patch of `metadata.namespace` used to answer 200 and drop the change).

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{SimProcess, get_json, test_config};
use serde_json::{Value, json};

#[tokio::test]
async fn a_write_into_another_namespace_is_400_and_changes_nothing() {
    let sim = SimProcess::start(Some(&test_config("fleets: [ { name: g1, replicas: 1 } ]")));
    let http = reqwest::Client::new();
    let url = format!(
        "{}/apis/agones.dev/v1/namespaces/default/fleets/g1",
        sim.url
    );
    let before = get_json(&http, &url).await;

    let patch = json!([
        {"op": "replace", "path": "/metadata/namespace", "value": "other"},
        {"op": "replace", "path": "/spec/replicas", "value": 3}
    ]);
    let r = http
        .patch(&url)
        .header("content-type", "application/json-patch+json")
        .body(patch.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["reason"], "BadRequest");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("(other) does not match the namespace sent on the request (default)"),
        "{message}"
    );

    let mut replaced = before.clone();
    replaced["metadata"]["namespace"] = json!("other");
    replaced["spec"]["replicas"] = json!(4);
    let r = http.put(&url).json(&replaced).send().await.unwrap();
    assert_eq!(r.status(), 400);

    let after = get_json(&http, &url).await;
    assert_eq!(after["spec"]["replicas"], 1);
    assert_eq!(
        after["metadata"]["resourceVersion"],
        before["metadata"]["resourceVersion"]
    );

    // Naming its own namespace is fine.
    let r = http
        .patch(&url)
        .header("content-type", "application/merge-patch+json")
        .body(json!({"metadata": {"namespace": "default"}, "spec": {"replicas": 2}}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(get_json(&http, &url).await["spec"]["replicas"], 2);
}
