//! The `loadbalancer` check: the Services of type LoadBalancer in the Agones namespace
//! (`agones-allocator`, `agones-ping-http-service`, `agones-ping-udp-service` with the chart's
//! defaults) and whether the cluster gave each an ingress. Without one, helm's `--wait` waits
//! for it until `--timeout` on every upgrade (helm `pkg/kube/ready.go`, `serviceReady`: a
//! LoadBalancer Service is ready once `status.loadBalancer.ingress` is not empty), which is
//! what kind, minikube and bare-metal clusters without a load balancer do.

use k8s_openapi::api::core::v1::Service;
use kube::Api;
use kube::api::ListParams;

use super::Check;

/// The values that make the chart's Services NodePorts (install/helm/agones/values.yaml).
pub const NODEPORT_ADVICE: &str = "on a cluster without a load balancer, set in a values file (`wanderer.applier.values_files`) `agones.allocator.service.serviceType: NodePort`, `agones.ping.http.serviceType: NodePort` and `agones.ping.udp.serviceType: NodePort`; otherwise helm's --wait waits for their ingress until --timeout on every transition (helm pkg/kube/ready.go, serviceReady)";

/// The names of `services` of type LoadBalancer without an ingress, and of those with one.
pub fn without_ingress(services: &[Service]) -> (Vec<String>, Vec<String>) {
    let mut pending = Vec::new();
    let mut served = Vec::new();
    for s in services {
        let lb = s
            .spec
            .as_ref()
            .and_then(|sp| sp.type_.as_deref())
            .is_some_and(|t| t == "LoadBalancer");
        if !lb {
            continue;
        }
        let name = s.metadata.name.clone().unwrap_or_default();
        let has_ingress = s
            .status
            .as_ref()
            .and_then(|st| st.load_balancer.as_ref())
            .and_then(|lb| lb.ingress.as_ref())
            .is_some_and(|i| !i.is_empty());
        if has_ingress {
            served.push(name);
        } else {
            pending.push(name);
        }
    }
    (pending, served)
}

/// WARN when a LoadBalancer Service in `ns` has no ingress, with the NodePort advice.
pub async fn loadbalancer_check(client: &kube::Client, ns: &str) -> Check {
    let api: Api<Service> = Api::namespaced(client.clone(), ns);
    let list = match api.list(&ListParams::default()).await {
        Ok(l) => l.items,
        Err(kube::Error::Api(e)) if e.code == 404 => {
            return Check::skip(
                "loadbalancer",
                format!("the cluster serves no Services in `{ns}` (404)"),
            );
        }
        Err(e) => {
            return Check::fail(
                "loadbalancer",
                format!("listing the Services in `{ns}`: {e}"),
                "check the credentials (`list services` in the Agones namespace) and that the API server answers",
            );
        }
    };
    let (pending, served) = without_ingress(&list);
    if !pending.is_empty() {
        return Check::warn(
            "loadbalancer",
            format!(
                "Services of type LoadBalancer without an ingress in `{ns}`: {}",
                pending.join(", ")
            ),
            NODEPORT_ADVICE,
        );
    }
    if served.is_empty() {
        Check::pass(
            "loadbalancer",
            format!("no Service of type LoadBalancer in `{ns}`"),
        )
    } else {
        Check::pass(
            "loadbalancer",
            format!(
                "each LoadBalancer Service in `{ns}` has an ingress: {}",
                served.join(", ")
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_load_balancer_without_ingress_is_found_and_others_are_not() {
        let services: Vec<Service> = serde_json::from_value(serde_json::json!([
            {"metadata": {"name": "agones-allocator"}, "spec": {"type": "LoadBalancer"},
             "status": {"loadBalancer": {}}},
            {"metadata": {"name": "agones-ping-http-service"}, "spec": {"type": "LoadBalancer"},
             "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.7"}]}}},
            {"metadata": {"name": "agones-ping-udp-service"}, "spec": {"type": "NodePort"}},
            {"metadata": {"name": "agones-controller-service"}, "spec": {"type": "ClusterIP"}}
        ]))
        .unwrap();
        let (pending, served) = without_ingress(&services);
        assert_eq!(pending, ["agones-allocator"]);
        assert_eq!(served, ["agones-ping-http-service"]);
    }
}
