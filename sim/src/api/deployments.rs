//! The Agones control plane's Deployments (`agones-controller`, `agones-extensions`,
//! `agones-allocator`) as the chart deploys them, so a client can watch a rollout: during an
//! upgrade window the `Recreate` ones are unready, and the allocator rolls with some replicas
//! ready throughout.

use axum::extract::{Path, State};
use serde_json::{Value, json};
use upsoak_agones::release::TunableValue;

use super::{ApiResult, ApiState, Params, ok, pages};
use crate::status::ApiError;
use crate::world::World;

// ----- Deployments of the Agones control plane -----

/// One Deployment of the chart: its name, `component`/`agones.dev/role`, default replicas and
/// strategy (`install/helm/agones/values.yaml`: controller 2, extensions 2, allocator 3;
/// `templates/controller.yaml` and `templates/extensions-deployment.yaml`: `Recreate`; the
/// allocator's `RollingUpdate` by default).
#[derive(Clone, Copy)]
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

/// The install tunable that sets the allocator's replicas (the chart's
/// `agones.allocator.replicas`, which `templates/service/allocation.yaml` writes into the
/// `agones-allocator` Deployment's `spec.replicas`).
pub const ALLOCATOR_REPLICAS_TUNABLE: &str = "allocatorReplicas";

/// `d` as the release it runs (or rolls out to) configures it: the allocator's replicas come
/// from its `allocatorReplicas` tunable when set.
fn configured(w: &World, d: &Chart) -> Chart {
    let release = w.upgrading().unwrap_or_else(|| w.installed());
    match release.spec.tunables.get(ALLOCATOR_REPLICAS_TUNABLE) {
        Some(TunableValue::Int(n)) if d.role == "allocator" && *n >= 1 => {
            Chart { replicas: *n, ..*d }
        }
        _ => *d,
    }
}

/// A Deployment's replica counts, as the Deployment controller reports them.
#[derive(Debug, PartialEq, Eq)]
struct Counts {
    /// Pods of every ReplicaSet (`status.replicas`).
    total: i64,
    /// Pods of the new ReplicaSet (`status.updatedReplicas`).
    updated: i64,
    /// Ready and available pods.
    ready: i64,
}

/// The counts of a chart Deployment of `replicas`, `progress` (0 to 1) into an upgrade window
/// (`None`: no window, every pod of the installed version ready).
///
/// - `Recreate` (controller, extensions): every old pod is stopped before a new one starts,
///   so nothing is ready for the window (`templates/controller.yaml`,
///   `templates/extensions-deployment.yaml`).
/// - The allocator: the chart sets no strategy by default (`values.yaml`,
///   `agones.allocator.updateStrategy: {}`; `templates/service/allocation.yaml` writes it only
///   when set), so Kubernetes' default `RollingUpdate` applies: `maxSurge` and `maxUnavailable`
///   25 % (k8s `pkg/apis/apps/v1/defaults.go`, `SetDefaults_Deployment`), rounded up and down
///   (`pkg/controller/deployment/util/deployment_util.go`, `ResolveFenceposts`): for 3 replicas
///   one extra pod and none unavailable. So one new pod starts at a time, an old one goes only
///   once it is ready, and all 3 stay ready while the new pods replace them over the window.
fn counts(d: &Chart, progress: Option<f64>) -> Counts {
    let Some(p) = progress else {
        return Counts {
            total: d.replicas,
            updated: d.replicas,
            ready: d.replicas,
        };
    };
    if d.strategy == "Recreate" {
        return Counts {
            total: d.replicas,
            updated: d.replicas,
            ready: 0,
        };
    }
    let surge = (d.replicas + 3) / 4;
    let unavailable = d.replicas / 4;
    // New pods ready so far, the window's length sharing the replacements evenly.
    let replaced = ((p * d.replicas as f64).floor() as i64).clamp(0, d.replicas - 1);
    Counts {
        total: d.replicas + surge,
        updated: (replaced + surge).min(d.replicas),
        ready: d.replicas - unavailable,
    }
}

fn deployment(w: &World, d: &Chart) -> Value {
    let d = &configured(w, d);
    let upgrading = w.upgrading();
    let version = &w.installed().spec.version;
    // During an upgrade the new ReplicaSet rolls out: the spec names the new image.
    let image_version = upgrading.map_or(version, |u| &u.spec.version);
    let c = counts(d, w.upgrade_progress());
    // The chart's image: `{registry}/{name}:{tag}` (`values.yaml`, `agones.image`).
    let image = format!(
        "us-docker.pkg.dev/agones-images/release/{}:{image_version}",
        d.name
    );
    // Available while at least `replicas - maxUnavailable` pods are (k8s
    // `pkg/controller/deployment/sync.go`, `syncRolloutStatus`; `Recreate` has no
    // maxUnavailable, so it needs all of them).
    let available = c.ready
        >= d.replicas
            - if d.strategy == "Recreate" {
                0
            } else {
                d.replicas / 4
            };
    // `unavailableReplicas` counts every ReplicaSet's pods less the available ones, so a
    // surging rollout shows one unavailable (`sync.go`, `calculateStatus`).
    let unavailable = (c.total - c.ready).max(0);
    json!({"kind": "Deployment", "apiVersion": "apps/v1",
        "metadata": {"name": d.name, "namespace": AGONES_NS, "resourceVersion": w.resource_version().to_string(),
            "labels": {"app": "agones", "component": d.role,
                "app.kubernetes.io/version": image_version},
            "generation": 1},
        "spec": {"replicas": d.replicas, "strategy": {"type": d.strategy},
            "selector": {"matchLabels": {"agones.dev/role": d.role, "app": "agones"}},
            "template": {"metadata": {"labels": {"agones.dev/role": d.role, "app": "agones"}},
                "spec": {"containers": [{"name": d.name, "image": image}]}}},
        "status": {"observedGeneration": 1, "replicas": c.total, "updatedReplicas": c.updated,
            "readyReplicas": c.ready, "availableReplicas": c.ready,
            "unavailableReplicas": unavailable,
            "conditions": [{"type": "Available", "status": if available { "True" } else { "False" },
                "reason": if available { "MinimumReplicasAvailable" } else { "MinimumReplicasUnavailable" }}]}})
}

pub(super) async fn list_all_deployments(s: State<ApiState>, p: Params) -> ApiResult {
    list_in(&s.0, None, &p.0)
}

pub(super) async fn list_deployments(
    State(s): State<ApiState>,
    Path(ns): Path<String>,
    p: Params,
) -> ApiResult {
    list_in(&s, Some(&ns), &p.0)
}

/// The Deployments of `ns` (or of every namespace), in `limit`/`continue` pages.
fn list_in(
    s: &ApiState,
    ns: Option<&str>,
    p: &std::collections::HashMap<String, String>,
) -> ApiResult {
    list_chart_objects(s, ns, p, ("DeploymentList", "apps/v1"), |w| {
        CHART.iter().map(|d| (d.name, deployment(w, d))).collect()
    })
}

/// A list of objects the chart puts in the Agones namespace (`objects`, by name, built from
/// the world), as `ns` (or every namespace) lists them, in `limit`/`continue` pages: a
/// `kind` list of `api_version`.
pub(super) fn list_chart_objects(
    s: &ApiState,
    ns: Option<&str>,
    p: &std::collections::HashMap<String, String>,
    (kind, api_version): (&str, &str),
    objects: impl Fn(&World) -> Vec<(&'static str, Value)>,
) -> ApiResult {
    let w = s.lock()?;
    let items: Vec<(String, Value)> = if ns.is_none_or(|n| n == AGONES_NS) {
        objects(&w)
            .into_iter()
            .map(|(name, o)| (pages::key(ns.is_none(), Some(AGONES_NS), Some(name)), o))
            .collect()
    } else {
        Vec::new()
    };
    let (items, meta) = match pages::page_of_values(p, items, w.resource_version(), |rv| {
        w.events_since(rv).is_some()
    }) {
        Ok(page) => page,
        Err(refused) => return Ok(axum::response::IntoResponse::into_response(refused)),
    };
    ok(&json!({"kind": kind, "apiVersion": api_version, "metadata": meta, "items": items}))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recreate_is_down_for_the_window_and_the_allocator_rolls_with_every_replica_ready() {
        let [controller, extensions, allocator] = &CHART;
        for d in [controller, extensions] {
            assert_eq!(counts(d, Some(0.5)).ready, 0, "{}", d.name);
            assert_eq!(counts(d, None).ready, 2, "{}", d.name);
        }
        // 3 replicas: maxSurge 1, maxUnavailable 0.
        let mut updated = Vec::new();
        for p in [0.0, 0.2, 0.4, 0.7, 0.99, 1.0] {
            let c = counts(allocator, Some(p));
            assert_eq!((c.total, c.ready), (4, 3), "at {p}: {c:?}");
            updated.push(c.updated);
        }
        assert_eq!(updated, [1, 1, 2, 3, 3, 3]);
        assert_eq!(
            counts(allocator, None),
            Counts {
                total: 3,
                updated: 3,
                ready: 3
            }
        );
    }
}
