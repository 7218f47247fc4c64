//! What runs, not what was asked for: after an apply, the Agones Deployments in the Agones
//! namespace are read through the Kubernetes API, and each must run the applied release's
//! images and be rolled out and ready. The chart's images are `{registry}/agones-<part>:{tag}`
//! with the tag the chart's version (`install/helm/agones/values.yaml`, `agones.image`;
//! `templates/controller.yaml`, `extensions-deployment.yaml`, `service/allocation.yaml`).

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use kube::api::ListParams;

/// How often the Deployments are read while they finish rolling out.
const POLL: Duration = Duration::from_millis(250);

/// How each Agones Deployment in `deployments` differs from release `version` rolled out and
/// ready (`agones-controller: image tag 1.59.0, want 1.60.0`; `agones-allocator: 1 of 3 ready`),
/// or `None` when none does. Containers whose image is not Agones' own (`agones-…`) are not
/// compared; a namespace without any Agones Deployment is a difference.
pub fn difference(deployments: &[Deployment], version: &str) -> Option<String> {
    let mut parts = Vec::new();
    let mut agones = 0;
    for d in deployments {
        let name = d.metadata.name.as_deref().unwrap_or("?");
        let Some(spec) = &d.spec else { continue };
        let images: Vec<&str> = spec
            .template
            .spec
            .iter()
            .flat_map(|p| p.containers.iter())
            .filter_map(|c| c.image.as_deref())
            .filter(|i| is_agones_image(i))
            .collect();
        if images.is_empty() {
            continue;
        }
        agones += 1;
        for image in images {
            let tag = image_tag(image);
            if tag != version {
                parts.push(format!("{name}: image tag {tag}, want {version}"));
            }
        }
        let want = spec.replicas.unwrap_or(1);
        let st = d.status.clone().unwrap_or_default();
        let generation = d.metadata.generation.unwrap_or(0);
        if st.observed_generation.unwrap_or(0) < generation {
            parts.push(format!(
                "{name}: generation {generation} not yet observed by its controller"
            ));
        }
        let updated = st.updated_replicas.unwrap_or(0);
        let ready = st.ready_replicas.unwrap_or(0);
        if updated < want || ready < want {
            parts.push(format!(
                "{name}: {ready} of {want} ready, {updated} updated"
            ));
        }
    }
    if agones == 0 {
        parts.push("no Agones Deployment found".into());
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// An image reference without its digest: `repo:tag@sha256:…` is `repo:tag` (the grammar of
/// distribution/reference's `reference.go`: `name [":" tag] ["@" digest]`).
fn without_digest(image: &str) -> &str {
    image.split_once('@').map_or(image, |(r, _)| r)
}

/// The tag of an image reference, `""` when it has none. A `:` before the last `/` is a
/// registry's port (`localhost:5000/agones-controller`), not a tag.
fn image_tag(image: &str) -> &str {
    let name = without_digest(image);
    name.rsplit_once(':')
        .filter(|(_, t)| !t.contains('/'))
        .map_or("", |(_, t)| t)
}

/// `…/agones-controller:1.60.0` and the like: the image's last path part names an Agones part.
fn is_agones_image(image: &str) -> bool {
    let name = without_digest(image);
    name.rsplit('/')
        .next()
        .is_some_and(|n| n.starts_with("agones-"))
}

/// Reads the Deployments of `namespace` until they run `version` rolled out and ready, for at
/// most `within`; the last difference when they never do, or why they cannot be read.
pub async fn wait_rolled_out(
    client: &kube::Client,
    namespace: &str,
    version: &str,
    within: Duration,
) -> Result<(), String> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let start = Instant::now();
    loop {
        let list = api
            .list(&ListParams::default())
            .await
            .map_err(|e| format!("cannot list the Deployments in `{namespace}`: {e}"))?;
        let Some(diff) = difference(&list.items, version) else {
            return Ok(());
        };
        if start.elapsed() >= within {
            return Err(format!(
                "the Agones Deployments in `{namespace}` do not run {version} after {within:?}: {diff}"
            ));
        }
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(name: &str, tag: &str, replicas: i32, ready: i32) -> Deployment {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "generation": 2},
            "spec": {"replicas": replicas, "selector": {},
                "template": {"spec": {"containers": [
                    {"name": name, "image": format!("us-docker.pkg.dev/agones-images/release/{name}:{tag}")},
                    {"name": "proxy", "image": "docker.io/envoyproxy/envoy:v1.30"}]}}},
            "status": {"observedGeneration": 2, "replicas": replicas, "updatedReplicas": replicas,
                "readyReplicas": ready}
        }))
        .unwrap()
    }

    #[test]
    fn images_and_readiness_are_compared_with_the_applied_release() {
        let ok = [
            deployment("agones-controller", "1.60.0", 2, 2),
            deployment("agones-allocator", "1.60.0", 3, 3),
        ];
        assert_eq!(difference(&ok, "1.60.0"), None);
        let old = [
            deployment("agones-controller", "1.59.0", 2, 2),
            deployment("agones-allocator", "1.60.0", 3, 1),
        ];
        assert_eq!(
            difference(&old, "1.60.0").unwrap(),
            "agones-controller: image tag 1.59.0, want 1.60.0; agones-allocator: 1 of 3 ready, 3 updated"
        );
        assert_eq!(
            difference(&[], "1.60.0").unwrap(),
            "no Agones Deployment found"
        );
        assert!(is_agones_image(
            "gcr.io/agones-images/agones-extensions:1.60.0"
        ));
        assert!(!is_agones_image("docker.io/envoyproxy/envoy:v1.30"));
    }

    #[test]
    fn digest_pinned_images_are_read_by_their_tag() {
        let digest = "sha256:4b1a3c5e7f9d2b4a6c8e0f1a3b5c7d9e1f3a5b7c9d1e3f5a7b9c1d3e5f7a9b1c";
        let image =
            format!("us-docker.pkg.dev/agones-images/release/agones-controller:1.60.0@{digest}");
        assert!(is_agones_image(&image));
        assert_eq!(image_tag(&image), "1.60.0");
        assert_eq!(image_tag("localhost:5000/agones-allocator"), "");
        assert_eq!(
            image_tag("localhost:5000/agones-allocator:1.61.0-rc.1"),
            "1.61.0-rc.1"
        );
        assert_eq!(image_tag(&format!("r/agones-ping@{digest}")), "");
        assert!(is_agones_image("localhost:5000/agones-ping"));
        let mut d = deployment("agones-controller", "1.60.0", 1, 1);
        if let Some(spec) = d.spec.as_mut() {
            spec.template.spec.as_mut().unwrap().containers[0].image = Some(image);
        }
        assert_eq!(difference(&[d], "1.60.0"), None);
    }
}
