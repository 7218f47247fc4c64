//! The chart of every version of the space, through helm: can each be pulled (`helm show chart
//! CHART --version V`, the `charts` check), and what does the target release's render
//! (`helm template`), mapped to the resources a permission is asked on.
//!
//! Both take the chart reference from [`chart_ref`], the one place that says which chart a
//! version is installed from.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::Semaphore;

use super::Check;
use super::access::Rendered;
use crate::wanderer::apply::{HelmApplier, process};

/// helm processes run at once by a check.
pub const CONCURRENCY: usize = 4;

/// The chart `version` is installed from, as helm takes it (`REPO/NAME`, a path or an
/// `oci://` reference), and the `--version` to pass with it. Every chart-reading command of
/// preflight takes the chart from here.
pub fn chart_ref(h: &HelmApplier, version: &str) -> (String, String) {
    (h.chart_for(version).to_owned(), version.to_owned())
}

/// Why a version's chart could not be pulled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unpulled {
    pub version: String,
    /// helm's message (its stderr, or why it could not run).
    pub message: String,
}

/// `helm show chart` of each of `versions`, [`CONCURRENCY`] at a time, each within
/// `timeout`; the versions whose chart could not be pulled, in `versions`' order.
pub async fn unpulled(h: &HelmApplier, versions: &[String], timeout: Duration) -> Vec<Unpulled> {
    let gate = Arc::new(Semaphore::new(CONCURRENCY));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, v) in versions.iter().enumerate() {
        let (chart, version) = chart_ref(h, v);
        let (helm, grace, gate) = (h.helm.clone(), h.kill_grace, gate.clone());
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await;
            let args = [
                "show".to_owned(),
                "chart".to_owned(),
                chart,
                "--version".to_owned(),
                version.clone(),
            ];
            let failed = match process::run(&helm, &args, "helm show chart", timeout, grace).await {
                Ok(out) if out.status.success() => None,
                Ok(out) => Some(out.stderr.trim().to_owned()),
                Err(e) => Some(e.to_string()),
            };
            (
                i,
                failed.map(|message| Unpulled {
                    version,
                    message: message.trim_start_matches("Error: ").to_owned(),
                }),
            )
        });
    }
    let mut out = Vec::new();
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok((i, Some(u))) => out.push((i, u)),
            Ok((_, None)) => {}
            Err(e) => out.push((
                usize::MAX,
                Unpulled {
                    version: "?".into(),
                    message: format!("the helm task ended: {e}"),
                },
            )),
        }
    }
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, u)| u).collect()
}

/// What to do about charts that cannot be pulled, from helm's words.
pub fn pull_hint(h: &HelmApplier, failed: &[Unpulled]) -> String {
    let chart = &h.chart;
    let text = failed
        .iter()
        .map(|u| u.message.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    if text.contains("repo ") && text.contains(" not found") {
        let repo = chart.split('/').next().unwrap_or(chart);
        format!(
            "add the chart's repository: `helm repo add {repo} https://agones.dev/chart/stable` (the name before `/` in `wanderer.applier.chart`)"
        )
    } else if chart.starts_with('.') || chart.starts_with('/') {
        format!(
            "check the chart path `{chart}` in `wanderer.applier.chart`: it must hold each version's chart"
        )
    } else {
        "run `helm repo update` (a release newer than the local index is not found), or drop the version from the space".to_owned()
    }
}

/// One document of `helm template`'s output, as far as preflight reads it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Doc {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    metadata: Meta,
}

#[derive(Debug, Default, Deserialize)]
struct Meta {
    #[serde(default)]
    name: String,
    #[serde(default)]
    namespace: Option<String>,
}

/// An object of the rendered manifest: its `apiVersion`, `kind`, name and namespace (as
/// written; a namespaced object without one goes to the release's namespace).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Object {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
}

/// The objects of a `helm template` manifest (YAML documents; empty ones skipped).
pub fn objects(manifest: &str) -> Result<Vec<Object>, String> {
    let mut out = Vec::new();
    for (i, doc) in serde_yaml::Deserializer::from_str(manifest).enumerate() {
        let value = serde_yaml::Value::deserialize(doc)
            .map_err(|e| format!("document {} of the manifest: {e}", i + 1))?;
        if value.is_null() {
            continue;
        }
        let d: Doc = serde_yaml::from_value(value)
            .map_err(|e| format!("document {} of the manifest: {e}", i + 1))?;
        if d.kind.is_empty() || d.api_version.is_empty() {
            return Err(format!(
                "document {} of the manifest has no kind or apiVersion",
                i + 1
            ));
        }
        out.push(Object {
            api_version: d.api_version,
            kind: d.kind,
            name: d.metadata.name,
            namespace: d.metadata.namespace,
        });
    }
    Ok(out)
}

/// `helm template` of the release at `version` (its values files and the release's
/// namespace, as an upgrade passes them), within `timeout`: the rendered objects.
pub async fn render(
    h: &HelmApplier,
    version: &str,
    timeout: Duration,
) -> Result<Vec<Object>, String> {
    let (chart, version) = chart_ref(h, version);
    let mut args = vec![
        "template".to_owned(),
        h.release.clone(),
        chart,
        "--version".to_owned(),
        version.clone(),
        "--namespace".to_owned(),
        h.namespace.clone(),
    ];
    for file in &h.values_files {
        args.push("-f".into());
        args.push(file.display().to_string());
    }
    let out = process::run(&h.helm, &args, "helm template", timeout, h.kill_grace)
        .await
        .map_err(|e| format!("helm template ({version}): {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "helm template ({version}) failed ({}): {}",
            out.status,
            out.stderr.trim()
        ));
    }
    objects(&out.stdout).map_err(|e| format!("helm template ({version}): {e}"))
}

/// A kind's resource name and whether it is namespaced, for the kinds Agones' chart renders
/// (`install/helm/agones/templates/`), when discovery does not name them: the resource names
/// of the Kubernetes API reference (k8s.io/api, each type's `+genclient` REST path) and of
/// prometheus-operator's ServiceMonitor CRD.
const KNOWN_KINDS: &[(&str, &str, &str, bool)] = &[
    ("", "ConfigMap", "configmaps", true),
    ("", "Namespace", "namespaces", false),
    ("", "Secret", "secrets", true),
    ("", "Service", "services", true),
    ("", "ServiceAccount", "serviceaccounts", true),
    (
        "admissionregistration.k8s.io",
        "MutatingWebhookConfiguration",
        "mutatingwebhookconfigurations",
        false,
    ),
    (
        "admissionregistration.k8s.io",
        "ValidatingWebhookConfiguration",
        "validatingwebhookconfigurations",
        false,
    ),
    (
        "apiextensions.k8s.io",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        false,
    ),
    ("apiregistration.k8s.io", "APIService", "apiservices", false),
    ("apps", "Deployment", "deployments", true),
    (
        "autoscaling",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        true,
    ),
    ("coordination.k8s.io", "Lease", "leases", true),
    (
        "monitoring.coreos.com",
        "ServiceMonitor",
        "servicemonitors",
        true,
    ),
    (
        "policy",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        true,
    ),
    (
        "rbac.authorization.k8s.io",
        "ClusterRole",
        "clusterroles",
        false,
    ),
    (
        "rbac.authorization.k8s.io",
        "ClusterRoleBinding",
        "clusterrolebindings",
        false,
    ),
    ("rbac.authorization.k8s.io", "Role", "roles", true),
    (
        "rbac.authorization.k8s.io",
        "RoleBinding",
        "rolebindings",
        true,
    ),
    (
        "scheduling.k8s.io",
        "PriorityClass",
        "priorityclasses",
        false,
    ),
];

/// The group of an `apiVersion` (`""` for `v1`).
fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(group, _)| group)
}

/// What discovery says of a group version: kind → (resource, namespaced).
type Kinds = BTreeMap<String, (String, bool)>;

/// The resources of `api_version` as the API server's discovery lists them; `None` when it
/// does not serve that group version (or cannot be asked).
async fn discover(client: &kube::Client, api_version: &str) -> Option<Kinds> {
    let list = if api_version.contains('/') {
        client.list_api_group_resources(api_version).await.ok()?
    } else {
        client.list_core_api_resources(api_version).await.ok()?
    };
    Some(
        list.resources
            .into_iter()
            .filter(|r| !r.name.contains('/'))
            .map(|r| (r.kind, (r.name, r.namespaced)))
            .collect(),
    )
}

/// Each of `objects` as the resource and namespace a permission is asked on: through the
/// cluster's discovery, else [`KNOWN_KINDS`]; a namespaced object without a namespace is in
/// `release_ns`. The kinds neither knows are returned apart (`apiVersion kind`).
pub async fn resources(
    client: &kube::Client,
    objects: &[Object],
    release_ns: &str,
) -> (Vec<Rendered>, Vec<String>) {
    let mut discovered: BTreeMap<String, Option<Kinds>> = BTreeMap::new();
    let mut out = BTreeSet::new();
    let mut unknown = BTreeSet::new();
    for o in objects {
        if !discovered.contains_key(&o.api_version) {
            let kinds = discover(client, &o.api_version).await;
            discovered.insert(o.api_version.clone(), kinds);
        }
        let group = group_of(&o.api_version);
        let found = discovered
            .get(&o.api_version)
            .and_then(|k| k.as_ref())
            .and_then(|k| k.get(&o.kind).cloned())
            .or_else(|| {
                KNOWN_KINDS
                    .iter()
                    .find(|(g, kind, _, _)| *g == group && *kind == o.kind)
                    .map(|(_, _, resource, namespaced)| ((*resource).to_owned(), *namespaced))
            });
        match found {
            Some((resource, namespaced)) => {
                out.insert(Rendered {
                    group: group.to_owned(),
                    resource,
                    namespace: namespaced
                        .then(|| o.namespace.clone().unwrap_or_else(|| release_ns.to_owned())),
                });
            }
            None => {
                unknown.insert(format!("{} {}", o.api_version, o.kind));
            }
        }
    }
    (out.into_iter().collect(), unknown.into_iter().collect())
}

/// `helm show chart` of every version: FAIL naming each version that cannot be pulled, with
/// helm's message.
pub async fn charts_check(h: &HelmApplier, versions: &[String], timeout: Duration) -> Check {
    let failed = unpulled(h, versions, timeout).await;
    if failed.is_empty() {
        return Check::pass(
            "charts",
            format!(
                "the chart of each of the {} versions can be pulled ({})",
                versions.len(),
                h.chart
            ),
        );
    }
    Check::fail(
        "charts",
        format!(
            "{} of {} versions cannot be pulled: {}",
            failed.len(),
            versions.len(),
            failed
                .iter()
                .map(|u| format!("{}: {}", u.version, u.message))
                .collect::<Vec<_>>()
                .join("; ")
        ),
        pull_hint(h, &failed),
    )
}

/// With the helm applier, the permissions of `helm upgrade --wait` on what each version's
/// chart renders (the versions that render); `Err` with the check's failure when none does.
pub async fn chart_needs(
    client: &kube::Client,
    h: &HelmApplier,
    versions: &[String],
    timeout: Duration,
) -> std::result::Result<Vec<super::access::Need>, Check> {
    let mut objects = Vec::new();
    let mut failures = Vec::new();
    for v in versions {
        match render(h, v, timeout).await {
            Ok(o) => objects.extend(o),
            Err(e) => failures.push(e),
        }
    }
    // A version that cannot be rendered is `charts`' failure; the others still say what the
    // chart needs.
    if objects.is_empty() && !failures.is_empty() {
        return Err(Check::fail(
            "permissions",
            format!("the chart's objects are unknown: {}", failures.join("; ")),
            "fix what `charts` says (the chart must be pulled to be rendered), and check the values files in `wanderer.applier.values_files`",
        ));
    }
    objects.sort();
    objects.dedup();
    let (rendered, unknown) = resources(client, &objects, &h.namespace).await;
    if !unknown.is_empty() {
        return Err(Check::fail(
            "permissions",
            format!(
                "the chart renders kinds the cluster does not serve: {}",
                unknown.join(", ")
            ),
            "install their CRDs first (helm fails with \"no matches for kind\"), or turn the values that render them off",
        ));
    }
    Ok(super::access::chart_needs(&rendered, &h.namespace))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_reads_as_its_objects() {
        let manifest = "---\n# Source: agones/templates/crds/fleet.yaml\napiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: fleets.agones.dev\n---\n# Source: agones/templates/controller.yaml\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: agones-controller\n  namespace: agones-system\n---\n";
        let objs = objects(manifest).unwrap();
        assert_eq!(objs.len(), 2);
        assert_eq!(objs[0].kind, "CustomResourceDefinition");
        assert_eq!(objs[0].namespace, None);
        assert_eq!(objs[1].namespace.as_deref(), Some("agones-system"));
        assert_eq!(group_of("apps/v1"), "apps");
        assert_eq!(group_of("v1"), "");
        let e = objects("---\nmetadata: { name: x }\n").unwrap_err();
        assert!(e.contains("document 1 of the manifest has no kind"), "{e}");
    }

    #[test]
    fn the_kinds_the_agones_chart_renders_are_known() {
        for (group, kind) in [
            ("apiextensions.k8s.io", "CustomResourceDefinition"),
            ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
            (
                "admissionregistration.k8s.io",
                "MutatingWebhookConfiguration",
            ),
            ("apiregistration.k8s.io", "APIService"),
            ("scheduling.k8s.io", "PriorityClass"),
            ("policy", "PodDisruptionBudget"),
        ] {
            assert!(
                KNOWN_KINDS
                    .iter()
                    .any(|(g, k, _, _)| *g == group && *k == kind),
                "{group} {kind}"
            );
        }
    }
}
