//! The Agones control plane's Deployments (`agones-controller`, `agones-allocator`), unready
//! during an upgrade window, so a client can watch a rollout.

use axum::extract::{Path, State};
use serde_json::{Value, json};

use super::{ApiResult, ApiState, ok};
use crate::status::ApiError;
use crate::world::World;

// ----- Deployments of the Agones control plane -----

pub(super) const DEPLOYMENTS: [&str; 2] = ["agones-controller", "agones-allocator"];
pub(super) const AGONES_NS: &str = "agones-system";

pub(super) fn deployment(w: &World, name: &str) -> Value {
    let upgrading = w.upgrading();
    let version = &w.installed().spec.version;
    // During an upgrade the new ReplicaSet rolls out: the spec names the new image, nothing is
    // ready yet.
    let image_version = upgrading.map_or(version, |u| &u.spec.version);
    let ready = if upgrading.is_some() { 0 } else { 1 };
    let image = format!(
        "us-docker.pkg.dev/agones-images/release/{}:{image_version}",
        name.trim_start_matches("agones-")
    );
    json!({"kind": "Deployment", "apiVersion": "apps/v1",
        "metadata": {"name": name, "namespace": AGONES_NS, "resourceVersion": w.resource_version().to_string(),
            "labels": {"app": "agones", "component": name.trim_start_matches("agones-"),
                "app.kubernetes.io/version": image_version},
            "generation": 1},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"agones.dev/role": name.trim_start_matches("agones-")}},
            "template": {"metadata": {"labels": {"agones.dev/role": name.trim_start_matches("agones-")}},
                "spec": {"containers": [{"name": name, "image": image}]}}},
        "status": {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1,
            "readyReplicas": ready, "availableReplicas": ready,
            "unavailableReplicas": 1 - ready,
            "conditions": [{"type": "Available", "status": if ready == 1 { "True" } else { "False" },
                "reason": if ready == 1 { "MinimumReplicasAvailable" } else { "MinimumReplicasUnavailable" }}]}})
}

pub(super) async fn list_all_deployments(s: State<ApiState>) -> ApiResult {
    list_deployments(s, Path(AGONES_NS.to_owned())).await
}

pub(super) async fn list_deployments(
    State(s): State<ApiState>,
    Path(ns): Path<String>,
) -> ApiResult {
    let w = s.lock()?;
    let items: Vec<Value> = if ns == AGONES_NS {
        DEPLOYMENTS.iter().map(|d| deployment(&w, d)).collect()
    } else {
        Vec::new()
    };
    ok(&json!({"kind": "DeploymentList", "apiVersion": "apps/v1",
        "metadata": {"resourceVersion": w.resource_version().to_string()}, "items": items}))
}

pub(super) async fn get_deployment(
    State(s): State<ApiState>,
    Path((ns, name)): Path<(String, String)>,
) -> ApiResult {
    let w = s.lock()?;
    if ns == AGONES_NS && DEPLOYMENTS.contains(&name.as_str()) {
        ok(&deployment(&w, &name))
    } else {
        Err(ApiError::not_found("deployments.apps", &name))
    }
}
