//! The Agones chart's Services of type LoadBalancer (`agones-allocator`,
//! `agones-ping-http-service`, `agones-ping-udp-service` in `agones-system`), read-only, so a
//! client can see what `helm --wait` waits for: helm's `serviceReady` (`pkg/kube/ready.go`)
//! holds a LoadBalancer Service unready until `status.loadBalancer.ingress` has an entry, which
//! clusters without a load balancer (kind, minikube, bare metal) never fill in.
//!
//! Each Service's type is the chart's value (`install/helm/agones/values.yaml`:
//! `agones.allocator.service.serviceType`, `agones.ping.http.serviceType`,
//! `agones.ping.udp.serviceType`, all `LoadBalancer` by default), taken from the install's
//! tunable of the same meaning when the simulator's config declares it (`allocatorServiceType`,
//! `pingHttpServiceType`, `pingUdpServiceType`, as an enum of `LoadBalancer`, `NodePort`,
//! `ClusterIP`).
//! Whether the cluster has a load balancer is the simulator's `load_balancer` setting.

use axum::extract::{Path, State};
use serde_json::{Value, json};
use upsoak_agones::release::TunableValue;

use super::deployments::{AGONES_NS, list_chart_objects};
use super::{ApiResult, ApiState, Params, ok};
use crate::status::ApiError;
use crate::world::World;

/// One Service of the chart: its name, the install tunable that sets its type, and its port
/// (`templates/service/allocation.yaml`: `agones-allocator` 443 → 8443 over TCP;
/// `templates/ping.yaml`: the HTTP ping 80 → 8080, the UDP ping 50000 → 50000).
struct Chart {
    name: &'static str,
    type_tunable: &'static str,
    port: i64,
    target_port: i64,
    protocol: &'static str,
}

const CHART: [Chart; 3] = [
    Chart {
        name: "agones-allocator",
        type_tunable: "allocatorServiceType",
        port: 443,
        target_port: 8443,
        protocol: "TCP",
    },
    Chart {
        name: "agones-ping-http-service",
        type_tunable: "pingHttpServiceType",
        port: 80,
        target_port: 8080,
        protocol: "TCP",
    },
    Chart {
        name: "agones-ping-udp-service",
        type_tunable: "pingUdpServiceType",
        port: 50000,
        target_port: 50000,
        protocol: "UDP",
    },
];

/// The type the installed release gives `s`: its tunable when set, else the chart's default.
fn service_type(w: &World, s: &Chart) -> String {
    match w.installed().spec.tunables.get(s.type_tunable) {
        Some(TunableValue::Str(t)) => t.clone(),
        _ => "LoadBalancer".to_owned(),
    }
}

fn service(w: &World, s: &Chart) -> Value {
    let kind = service_type(w, s);
    let mut port = json!({"name": s.name.trim_start_matches("agones-"), "port": s.port,
        "targetPort": s.target_port, "protocol": s.protocol});
    if kind != "ClusterIP" {
        // The API server allocates a node port to NodePort and LoadBalancer Services
        // (k8s `pkg/registry/core/service/storage/alloc.go`); a stable one per Service here.
        port["nodePort"] = json!(30000 + s.target_port % 2768);
    }
    // The cloud controller fills the ingress in for LoadBalancer Services only (k8s
    // `staging/src/k8s.io/cloud-provider/controllers/service/controller.go`, `syncLoadBalancerIfNeeded`).
    let ingress = if kind == "LoadBalancer" && w.config().load_balancer {
        json!([{"ip": w.config().game.ip.to_string()}])
    } else {
        json!([])
    };
    let load_balancer = if ingress.as_array().is_some_and(|i| !i.is_empty()) {
        json!({"ingress": ingress})
    } else {
        json!({})
    };
    json!({"kind": "Service", "apiVersion": "v1",
        "metadata": {"name": s.name, "namespace": AGONES_NS,
            "resourceVersion": w.resource_version().to_string(),
            "labels": {"app": "agones"}},
        "spec": {"type": kind, "ports": [port],
            "selector": {"agones.dev/role": s.name.trim_start_matches("agones-")}},
        "status": {"loadBalancer": load_balancer}})
}

pub(super) async fn list_all_services(s: State<ApiState>, p: Params) -> ApiResult {
    list_in(&s.0, None, &p.0)
}

pub(super) async fn list_services(
    State(s): State<ApiState>,
    Path(ns): Path<String>,
    p: Params,
) -> ApiResult {
    list_in(&s, Some(&ns), &p.0)
}

/// The Services of `ns` (or of every namespace), in `limit`/`continue` pages.
fn list_in(
    s: &ApiState,
    ns: Option<&str>,
    p: &std::collections::HashMap<String, String>,
) -> ApiResult {
    list_chart_objects(s, ns, p, ("ServiceList", "v1"), |w| {
        CHART.iter().map(|c| (c.name, service(w, c))).collect()
    })
}

pub(super) async fn get_service(
    State(s): State<ApiState>,
    Path((ns, name)): Path<(String, String)>,
) -> ApiResult {
    let w = s.lock()?;
    match CHART.iter().find(|c| c.name == name) {
        Some(c) if ns == AGONES_NS => ok(&service(&w, c)),
        _ => Err(ApiError::not_found("services", &name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SimConfig;

    fn world(load_balancer: bool, tunables: &[(&str, &str)]) -> World {
        let mut cfg = SimConfig::default_config().unwrap();
        cfg.load_balancer = load_balancer;
        for (name, _) in tunables {
            cfg.tunables.insert(
                (*name).to_owned(),
                upsoak_agones::TunableSpec::Enum {
                    values: ["LoadBalancer", "NodePort", "ClusterIP"]
                        .map(str::to_owned)
                        .to_vec(),
                },
            );
        }
        for (name, value) in tunables {
            cfg.initial
                .tunables
                .insert((*name).to_owned(), TunableValue::Str((*value).to_owned()));
        }
        World::new(
            std::sync::Arc::new(cfg),
            crate::events::SimMetrics::default(),
            7,
        )
    }

    #[test]
    fn load_balancers_get_ingress_only_on_a_cluster_that_has_one() {
        let w = world(true, &[]);
        let s = service(&w, &CHART[0]);
        assert_eq!(s["spec"]["type"], "LoadBalancer");
        assert_eq!(s["status"]["loadBalancer"]["ingress"][0]["ip"], "127.0.0.1");
        let w = world(false, &[]);
        let s = service(&w, &CHART[0]);
        assert_eq!(s["status"]["loadBalancer"], json!({}));
    }

    #[test]
    fn the_install_sets_each_services_type() {
        let w = world(false, &[("allocatorServiceType", "NodePort")]);
        assert_eq!(service(&w, &CHART[0])["spec"]["type"], "NodePort");
        assert!(service(&w, &CHART[0])["spec"]["ports"][0]["nodePort"].is_i64());
        assert_eq!(service(&w, &CHART[1])["spec"]["type"], "LoadBalancer");
    }
}
