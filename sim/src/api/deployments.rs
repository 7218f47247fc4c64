//! The Agones control plane's Deployments (`agones-controller`, `agones-extensions`,
//! `agones-allocator`) as the chart deploys them, unready during an upgrade window, so a client
//! can watch a rollout.

use axum::extract::{Path, State};
use serde_json::{Value, json};

use super::{ApiResult, ApiState, ok};
use crate::status::ApiError;
use crate::world::World;

// ----- Deployments of the Agones control plane -----

/// One Deployment of the chart: its name, `component`/`agones.dev/role`, default replicas and
/// strategy (`install/helm/agones/values.yaml`: controller 2, extensions 2, allocator 3;
/// `templates/controller.yaml` and `templates/extensions-deployment.yaml`: `Recreate`; the
/// allocator's `RollingUpdate` by default).
struct Chart {
    name: &'static str,
    role: &'static str,
    replicas: i64,
    strategy: &'static str,
}

const CHART: [Chart; 3] = [
    Chart {
        name: "agones-controller",
        role: "controller",
        replicas: 2,
        strategy: "Recreate",
    },
    Chart {
        name: "agones-extensions",
        role: "extensions",
        replicas: 2,
        strategy: "Recreate",
    },
    Chart {
        name: "agones-allocator",
        role: "allocator",
        replicas: 3,
        strategy: "RollingUpdate",
    },
];

pub(super) const AGONES_NS: &str = "agones-system";

fn deployment(w: &World, d: &Chart) -> Value {
    let upgrading = w.upgrading();
    let version = &w.installed().spec.version;
    // During an upgrade the new ReplicaSet rolls out: the spec names the new image, nothing is
    // ready yet (the simulator keeps the allocator unready too, though it rolls).
    let image_version = upgrading.map_or(version, |u| &u.spec.version);
    let ready = if upgrading.is_some() { 0 } else { d.replicas };
    // The chart's image: `{registry}/{name}:{tag}` (`values.yaml`, `agones.image`).
    let image = format!(
        "us-docker.pkg.dev/agones-images/release/{}:{image_version}",
        d.name
    );
    let available = ready == d.replicas;
    json!({"kind": "Deployment", "apiVersion": "apps/v1",
        "metadata": {"name": d.name, "namespace": AGONES_NS, "resourceVersion": w.resource_version().to_string(),
            "labels": {"app": "agones", "component": d.role,
                "app.kubernetes.io/version": image_version},
            "generation": 1},
        "spec": {"replicas": d.replicas, "strategy": {"type": d.strategy},
            "selector": {"matchLabels": {"agones.dev/role": d.role, "app": "agones"}},
            "template": {"metadata": {"labels": {"agones.dev/role": d.role, "app": "agones"}},
                "spec": {"containers": [{"name": d.name, "image": image}]}}},
        "status": {"observedGeneration": 1, "replicas": d.replicas, "updatedReplicas": d.replicas,
            "readyReplicas": ready, "availableReplicas": ready,
            "unavailableReplicas": d.replicas - ready,
            "conditions": [{"type": "Available", "status": if available { "True" } else { "False" },
                "reason": if available { "MinimumReplicasAvailable" } else { "MinimumReplicasUnavailable" }}]}})
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
        CHART.iter().map(|d| deployment(&w, d)).collect()
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
    match CHART.iter().find(|d| d.name == name) {
        Some(d) if ns == AGONES_NS => ok(&deployment(&w, d)),
        _ => Err(ApiError::not_found("deployments.apps", &name)),
    }
}
