//! `SelfSubjectAccessReview` against the real `upsoak-sim` binary over HTTP: kube-rs is
//! answered as a cluster admin is (201 Created, `status.allowed: true`), and a review with
//! neither or both attribute kinds is 422 Invalid, as the Kubernetes API server answers them.
//! (`kubectl auth can-i` sends built-in kinds as protobuf, which the simulator does not read.)
// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{SimProcess, test_config};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::api::{Api, PostParams};
use serde_json::json;

const PATH: &str = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews";

#[tokio::test]
async fn an_admin_is_allowed_and_a_malformed_review_is_invalid() {
    let sim = SimProcess::start(Some(&test_config("")));
    let api: Api<SelfSubjectAccessReview> = Api::all(sim.client());
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                verb: Some("create".into()),
                group: Some("allocation.agones.dev".into()),
                resource: Some("gameserverallocations".into()),
                namespace: Some("default".into()),
                ..ResourceAttributes::default()
            }),
            ..SelfSubjectAccessReviewSpec::default()
        },
        ..SelfSubjectAccessReview::default()
    };
    let answer = api.create(&PostParams::default(), &review).await.unwrap();
    let status = answer.status.unwrap();
    assert!(status.allowed);
    assert!(status.reason.unwrap().contains("cluster-admin"));
    // The spec comes back as asked.
    assert_eq!(
        answer.spec.resource_attributes.unwrap().resource.as_deref(),
        Some("gameserverallocations")
    );

    let http = reqwest::Client::new();
    let url = format!("{}{PATH}", sim.url);
    let created = http
        .post(&url)
        .json(
            &json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"nonResourceAttributes": {"path": "/version", "verb": "get"}}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    for spec in [
        json!({}),
        json!({"resourceAttributes": {"verb": "get"}, "nonResourceAttributes": {"path": "/", "verb": "get"}}),
    ] {
        let r = http
            .post(&url)
            .json(&json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview", "spec": spec}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 422, "{spec}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["reason"], "Invalid", "{body}");
    }
}
