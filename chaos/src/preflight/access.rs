//! The permissions the Producer and the Wanderer need, asked of the API server one by one with
//! a `SelfSubjectAccessReview` (what `kubectl auth can-i` does): only what the configuration
//! will use is asked.

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::Api;
use kube::api::PostParams;

use crate::config::{ApplierConfig, SidecarConfig};

/// The namespace the simulator serves the Agones Deployments in (its applier names none).
const SIM_AGONES_NS: &str = "agones-system";

/// One permission: `verb` on `group/resource[/subresource]` in `namespace` (cluster-wide when
/// `None`), and who needs it for what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Need {
    /// `producer`, `wanderer` or `preflight`.
    pub who: &'static str,
    pub verb: &'static str,
    /// The API group, `""` for the core group.
    pub group: &'static str,
    pub resource: &'static str,
    pub subresource: &'static str,
    pub namespace: Option<String>,
    /// What it is for, in the failure's text.
    pub why: &'static str,
}

impl Need {
    /// As `kubectl auth can-i` takes it: `verb resource[.group][/sub] [-n ns]`.
    pub fn describe(&self) -> String {
        let mut s = format!("{} {}", self.verb, self.resource);
        if !self.group.is_empty() {
            s.push('.');
            s.push_str(self.group);
        }
        if !self.subresource.is_empty() {
            s.push('/');
            s.push_str(self.subresource);
        }
        match &self.namespace {
            Some(ns) => s.push_str(&format!(" -n {ns}")),
            None => s.push_str(" (cluster-wide)"),
        }
        s
    }

    fn review(&self) -> SelfSubjectAccessReview {
        SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    verb: Some(self.verb.into()),
                    group: Some(self.group.into()),
                    resource: Some(self.resource.into()),
                    subresource: (!self.subresource.is_empty()).then(|| self.subresource.into()),
                    namespace: self.namespace.clone(),
                    ..ResourceAttributes::default()
                }),
                ..SelfSubjectAccessReviewSpec::default()
            },
            ..SelfSubjectAccessReview::default()
        }
    }
}

/// One row of the Wanderer's permissions: `verbs` on `group/resource`, in the Agones namespace
/// or cluster-wide, for every applier or only for helm.
struct WandererNeed {
    verbs: &'static [&'static str],
    group: &'static str,
    resource: &'static str,
    cluster_wide: bool,
    helm_only: bool,
    why: &'static str,
}

/// Why helm needs the chart's objects.
const CHART: &str = "helm upgrade of the Agones chart";

/// The Wanderer's permissions. Both appliers observe the Agones Deployments after each
/// transition; `helm upgrade` keeps its releases as Secrets in the release's namespace and
/// patches what the chart templates (`install/helm/agones/templates/`): Deployments, and
/// cluster-wide CRDs, RBAC, webhooks and the APIService.
const WANDERER_NEEDS: &[WandererNeed] = &[
    WandererNeed {
        verbs: &["get", "list"],
        group: "apps",
        resource: "deployments",
        cluster_wide: false,
        helm_only: false,
        why: "observing the Agones Deployments after each transition",
    },
    WandererNeed {
        verbs: &["get", "list", "create", "update", "delete"],
        group: "",
        resource: "secrets",
        cluster_wide: false,
        helm_only: true,
        why: "helm's release storage (Secrets in the release's namespace)",
    },
    WandererNeed {
        verbs: &["create", "patch", "delete"],
        group: "apps",
        resource: "deployments",
        cluster_wide: false,
        helm_only: true,
        why: CHART,
    },
    WandererNeed {
        verbs: &["patch"],
        group: "apiextensions.k8s.io",
        resource: "customresourcedefinitions",
        cluster_wide: true,
        helm_only: true,
        why: CHART,
    },
    WandererNeed {
        verbs: &["patch"],
        group: "rbac.authorization.k8s.io",
        resource: "clusterroles",
        cluster_wide: true,
        helm_only: true,
        why: CHART,
    },
    WandererNeed {
        verbs: &["patch"],
        group: "rbac.authorization.k8s.io",
        resource: "clusterrolebindings",
        cluster_wide: true,
        helm_only: true,
        why: CHART,
    },
    WandererNeed {
        verbs: &["patch"],
        group: "admissionregistration.k8s.io",
        resource: "validatingwebhookconfigurations",
        cluster_wide: true,
        helm_only: true,
        why: CHART,
    },
    WandererNeed {
        verbs: &["patch"],
        group: "admissionregistration.k8s.io",
        resource: "mutatingwebhookconfigurations",
        cluster_wide: true,
        helm_only: true,
        why: CHART,
    },
    WandererNeed {
        verbs: &["patch"],
        group: "apiregistration.k8s.io",
        resource: "apiservices",
        cluster_wide: true,
        helm_only: true,
        why: CHART,
    },
];

/// Every permission `cfg` will use. The Producer's follow from what it does (allocating,
/// scaling, canaries, player tracking: `producer/mod.rs`, `producer/canary.rs`); the helm
/// applier's are those of `helm upgrade` of the Agones chart (helm keeps its releases as Secrets
/// in the release's namespace; the chart creates CRDs, ClusterRoles and bindings, webhooks and
/// an APIService: `install/helm/agones/templates/`), a representative sample of what
/// `deploy/components/helm-applier` grants.
pub fn needs(cfg: &SidecarConfig) -> Vec<Need> {
    let p = &cfg.producer;
    let ns = Some(p.namespace.clone());
    let need = |who, verb, group, resource, subresource, namespace: &Option<String>, why| Need {
        who,
        verb,
        group,
        resource,
        subresource,
        namespace: namespace.clone(),
        why,
    };
    let mut out = Vec::new();
    if !p.fleets.is_empty() {
        // The Producer reads a Fleet that answered UnAllocated, to tell FleetFull apart.
        let (who, why) = if p.allocation_rate > 0.0 {
            (
                "producer",
                "reading a Fleet that answered UnAllocated (FleetFull or not), and its Ready servers",
            )
        } else {
            (
                "preflight",
                "reading the Fleets' Ready servers and replicas",
            )
        };
        out.push(need(who, "get", "agones.dev", "fleets", "", &ns, why));
    }
    let canaries = p.canaries.count > 0 && !p.fleets.is_empty();
    if p.allocation_rate > 0.0 || canaries {
        out.push(need(
            "producer",
            "create",
            "allocation.agones.dev",
            "gameserverallocations",
            "",
            &ns,
            "allocating servers",
        ));
    }
    if p.fleets.iter().any(|f| !f.scale_every_max.is_zero()) {
        out.push(need(
            "producer",
            "patch",
            "agones.dev",
            "fleets",
            "scale",
            &ns,
            "scaling the Fleets",
        ));
    }
    if canaries || p.session.player_tracking {
        out.push(need(
            "producer",
            "get",
            "agones.dev",
            "gameservers",
            "",
            &ns,
            "reading allocated servers (canaries, player capacity)",
        ));
    }
    if canaries {
        out.push(need(
            "producer",
            "delete",
            "agones.dev",
            "gameservers",
            "",
            &ns,
            "deleting a canary that does not exit",
        ));
    }
    if !cfg.wanderer.enabled {
        return out;
    }
    let agones = match &cfg.wanderer.applier {
        ApplierConfig::Helm { namespace, .. } => Some(namespace.clone()),
        ApplierConfig::Sim { .. } => Some(SIM_AGONES_NS.to_owned()),
    };
    let helm = matches!(cfg.wanderer.applier, ApplierConfig::Helm { .. });
    for row in WANDERER_NEEDS.iter().filter(|r| helm || !r.helm_only) {
        let namespace = if row.cluster_wide {
            None
        } else {
            agones.clone()
        };
        for verb in row.verbs {
            out.push(Need {
                who: "wanderer",
                verb,
                group: row.group,
                resource: row.resource,
                subresource: "",
                namespace: namespace.clone(),
                why: row.why,
            });
        }
    }
    out
}

/// Asks about each of `needs`; the ones denied (with the API server's reason), or the error
/// of the first review that could not be made.
pub async fn denied(client: &kube::Client, needs: &[Need]) -> Result<Vec<(Need, String)>, String> {
    let api: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    let mut out = Vec::new();
    for n in needs {
        let answer = api
            .create(&PostParams::default(), &n.review())
            .await
            .map_err(|e| format!("SelfSubjectAccessReview for `{}`: {e}", n.describe()))?;
        let status = answer.status.unwrap_or_default();
        if !status.allowed {
            let reason = status
                .reason
                .filter(|r| !r.is_empty())
                .or(status.evaluation_error)
                .unwrap_or_else(|| "no rule allows it".into());
            out.push((n.clone(), reason));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::producer::ProducerConfig;

    #[test]
    fn needs_follow_the_configuration() {
        let cfg: SidecarConfig = serde_yaml::from_str(
            "state_dir: /x\nwanderer: { space: s, seed: 1, applier: { kind: helm, reuse_values: reuse } }\n",
        )
        .unwrap();
        let all: Vec<String> = needs(&cfg).iter().map(Need::describe).collect();
        // The default Producer allocates, scales and holds canaries.
        for want in [
            "create gameserverallocations.allocation.agones.dev -n default",
            "patch fleets.agones.dev/scale -n default",
            "delete gameservers.agones.dev -n default",
            "list secrets -n agones-system",
            "patch customresourcedefinitions.apiextensions.k8s.io (cluster-wide)",
        ] {
            assert!(all.iter().any(|d| d == want), "missing {want} in {all:?}");
        }
        // The simulator's applier observes the Deployments and needs nothing of helm's.
        let sim: SidecarConfig = serde_yaml::from_str(
            "state_dir: /x\nwanderer: { space: s, seed: 1, applier: { kind: sim, url: \"http://127.0.0.1:1\" } }\n",
        )
        .unwrap();
        let wanderer: Vec<String> = needs(&sim)
            .iter()
            .filter(|n| n.who == "wanderer")
            .map(Need::describe)
            .collect();
        assert_eq!(
            wanderer,
            [
                "get deployments.apps -n agones-system",
                "list deployments.apps -n agones-system"
            ]
        );
        let mut quiet = cfg.clone();
        quiet.wanderer.enabled = false;
        quiet.producer = ProducerConfig {
            allocation_rate: 0.0,
            ..ProducerConfig::default()
        };
        quiet.producer.canaries.count = 0;
        for f in &mut quiet.producer.fleets {
            f.scale_every_max = std::time::Duration::ZERO;
            f.scale_every_min = std::time::Duration::ZERO;
        }
        let few: Vec<String> = needs(&quiet).iter().map(Need::describe).collect();
        assert_eq!(few, ["get fleets.agones.dev -n default"]);
    }
}
