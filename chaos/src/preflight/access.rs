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
pub const SIM_AGONES_NS: &str = "agones-system";

/// One permission: `verb` on `group/resource[/subresource]` in `namespace` (cluster-wide when
/// `None`), and who needs it for what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Need {
    /// `producer`, `wanderer` or `preflight`.
    pub who: &'static str,
    pub verb: &'static str,
    /// The API group, `""` for the core group.
    pub group: String,
    pub resource: String,
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
            s.push_str(&self.group);
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
                    group: Some(self.group.clone()),
                    resource: Some(self.resource.clone()),
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
/// Why helm's `--wait` needs Pods and ReplicaSets.
const WAIT: &str = "helm upgrade --wait (it reads each Deployment's ReplicaSets and Pods)";

/// The Wanderer's permissions beyond the chart's objects ([`chart_needs`]). Both appliers
/// observe the Agones Deployments after each transition; `helm upgrade` keeps its releases as
/// Secrets in the release's namespace (helm `pkg/storage/driver/secrets.go`).
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
];

/// Every permission `cfg` will use but the chart's objects ([`chart_needs`], derived from what
/// `helm template` renders). The Producer's follow from what it does (allocating, scaling,
/// canaries, player tracking: `producer/mod.rs`, `producer/canary.rs`); the helm applier's are
/// helm's release storage, Secrets in the release's namespace.
pub fn needs(cfg: &SidecarConfig) -> Vec<Need> {
    let p = &cfg.producer;
    let ns = Some(p.namespace.clone());
    let need =
        |who, verb, group: &str, resource: &str, subresource, namespace: &Option<String>, why| {
            Need {
                who,
                verb,
                group: group.to_owned(),
                resource: resource.to_owned(),
                subresource,
                namespace: namespace.clone(),
                why,
            }
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
                group: row.group.to_owned(),
                resource: row.resource.to_owned(),
                subresource: "",
                namespace: namespace.clone(),
                why: row.why,
            });
        }
    }
    out
}

/// One object `helm template` rendered, mapped to its resource.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rendered {
    pub group: String,
    pub resource: String,
    /// `None` for a cluster-scoped kind.
    pub namespace: Option<String>,
}

/// The verbs `helm upgrade` uses on every object of the chart: `get` for its three-way merge
/// (the live object; helm `pkg/kube/client.go`, `Update`, which gets each target before it
/// patches), `create` for a new one, `patch` for a changed one, `delete` for one the new chart
/// no longer renders.
pub const CHART_VERBS: [&str; 4] = ["get", "create", "patch", "delete"];

/// The permissions `helm upgrade --wait` of the chart needs: [`CHART_VERBS`] on each rendered
/// (resource, namespace), and `list`/`watch` on Pods and ReplicaSets in the release's namespace
/// (helm `pkg/kube/ready.go`, `deploymentReady` reads the Deployment's newest ReplicaSet and
/// `podsReadyForObject` lists its Pods). Repeats are asked once.
pub fn chart_needs(objects: &[Rendered], release_ns: &str) -> Vec<Need> {
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    let mut push = |verb: &'static str, group: &str, resource: &str, ns: Option<String>, why| {
        if seen.insert((verb, group.to_owned(), resource.to_owned(), ns.clone())) {
            out.push(Need {
                who: "wanderer",
                verb,
                group: group.to_owned(),
                resource: resource.to_owned(),
                subresource: "",
                namespace: ns,
                why,
            });
        }
    };
    for o in objects {
        for verb in CHART_VERBS {
            push(verb, &o.group, &o.resource, o.namespace.clone(), CHART);
        }
    }
    for (group, resource) in [("", "pods"), ("apps", "replicasets")] {
        for verb in ["list", "watch"] {
            push(verb, group, resource, Some(release_ns.to_owned()), WAIT);
        }
    }
    out
}

/// Most denied permissions listed in a failure; the rest are counted.
pub const MAX_LISTED: usize = 12;

/// The denied permissions as `(verb, resource, namespace)` triples, at most [`MAX_LISTED`] of
/// them, then how many more.
pub fn list_denied(denied: &[(Need, String)]) -> String {
    let mut parts: Vec<String> = denied
        .iter()
        .take(MAX_LISTED)
        .map(|(n, _)| {
            let resource = if n.group.is_empty() {
                n.resource.clone()
            } else {
                format!("{}.{}", n.resource, n.group)
            };
            let resource = if n.subresource.is_empty() {
                resource
            } else {
                format!("{resource}/{}", n.subresource)
            };
            format!(
                "({}, {resource}, {})",
                n.verb,
                n.namespace.as_deref().unwrap_or("cluster-wide")
            )
        })
        .collect();
    if denied.len() > MAX_LISTED {
        parts.push(format!("and {} more", denied.len() - MAX_LISTED));
    }
    parts.join(", ")
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

    #[test]
    fn the_chart_needs_every_verb_on_each_rendered_object_and_what_wait_reads() {
        let crd = Rendered {
            group: "apiextensions.k8s.io".into(),
            resource: "customresourcedefinitions".into(),
            namespace: None,
        };
        let sa = |ns: &str| Rendered {
            group: String::new(),
            resource: "serviceaccounts".into(),
            namespace: Some(ns.into()),
        };
        let all: Vec<String> = chart_needs(
            &[crd.clone(), sa("agones-system"), sa("default"), crd],
            "agones-system",
        )
        .iter()
        .map(Need::describe)
        .collect();
        // Four verbs on three (resource, namespace) pairs, the repeated CRD asked once, and
        // list/watch on Pods and ReplicaSets.
        assert_eq!(all.len(), 4 * 3 + 4, "{all:?}");
        for want in [
            "get customresourcedefinitions.apiextensions.k8s.io (cluster-wide)",
            "delete customresourcedefinitions.apiextensions.k8s.io (cluster-wide)",
            "get serviceaccounts -n agones-system",
            "patch serviceaccounts -n default",
            "create serviceaccounts -n default",
            "watch pods -n agones-system",
            "list replicasets.apps -n agones-system",
        ] {
            assert!(all.iter().any(|d| d == want), "missing {want} in {all:?}");
        }
    }

    #[test]
    fn denied_permissions_are_listed_as_triples_up_to_a_bound() {
        let n = |verb, resource: &str, ns: Option<&str>| {
            (
                Need {
                    who: "wanderer",
                    verb,
                    group: "apps".into(),
                    resource: resource.into(),
                    subresource: "",
                    namespace: ns.map(str::to_owned),
                    why: CHART,
                },
                "no".to_owned(),
            )
        };
        assert_eq!(
            list_denied(&[n("patch", "deployments", Some("agones-system"))]),
            "(patch, deployments.apps, agones-system)"
        );
        let many: Vec<_> = (0..MAX_LISTED + 3)
            .map(|_| n("get", "replicasets", None))
            .collect();
        let text = list_denied(&many);
        assert!(text.ends_with(", and 3 more"), "{text}");
        assert_eq!(
            text.matches("(get, replicasets.apps, cluster-wide)")
                .count(),
            MAX_LISTED
        );
    }
}
