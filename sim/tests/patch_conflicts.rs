//! A patch without a resourceVersion of its own never answers 409: as the API server's patch
//! handler (`staging/src/k8s.io/apiserver/pkg/endpoints/handlers/patch.go`, `patchResource`:
//! the patch is applied again to the latest object when the update conflicts), while the
//! simulator's Fleet controller keeps changing the object under it.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{SimProcess, test_config};
use serde_json::json;

async fn patch(http: &reqwest::Client, url: &str, body: serde_json::Value) -> (u16, String) {
    let r = http
        .patch(format!(
            "{url}/apis/agones.dev/v1/namespaces/default/fleets/c1"
        ))
        .header("content-type", "application/merge-patch+json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merge_patches_racing_the_controller_and_each_other_all_apply() {
    let sim = SimProcess::start(Some(&test_config("fleets: [ { name: c1, replicas: 1 } ]")));
    let http = reqwest::Client::new();
    // Scaling makes the controller write the Fleet's status while the label patches run.
    let scaler = {
        let (http, url) = (http.clone(), sim.url.clone());
        tokio::spawn(async move {
            let mut answers = Vec::new();
            for i in 0..40u32 {
                answers.push(patch(&http, &url, json!({"spec": {"replicas": 1 + i % 5}})).await);
            }
            answers
        })
    };
    let mut answers = Vec::new();
    for i in 0..40u32 {
        let label = json!({"metadata": {"labels": {"round": i.to_string()}}});
        answers.push(patch(&http, &sim.url, label).await);
    }
    answers.extend(scaler.await.unwrap());
    let refused: Vec<_> = answers.iter().filter(|(code, _)| *code != 200).collect();
    assert!(
        refused.is_empty(),
        "{} of 80 patches refused: {refused:?}",
        refused.len()
    );
}
