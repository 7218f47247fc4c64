//! The cluster's Kubernetes version (`GET /version`), as the sidecar checks it against each
//! release's supported range: at start (the space is cut to the releases that support it),
//! before each transition ([`Guarded`]: a target the cluster's version is outside of is never
//! applied; with no release left the Wanderer stops and the sidecar exits 2), and in
//! `preflight`.

use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;
use upsoak_agones::release::Install;

use super::apply::{Applier, ApplyError, Recovery};
use super::rollout;
use super::space::Space;

/// The cluster's `(major, minor)` from `/version`, or why it cannot be read. GKE and EKS report
/// minors like `34+`: the digits count.
pub async fn kubernetes_version(client: &kube::Client) -> Result<(u32, u32), String> {
    let info = client
        .apiserver_version()
        .await
        .map_err(|e| format!("GET /version: {e}"))?;
    parse(&info.major, &info.minor)
}

/// `major` and `minor` as `/version` reports them, as numbers.
pub fn parse(major: &str, minor: &str) -> Result<(u32, u32), String> {
    let digits: String = minor.chars().take_while(char::is_ascii_digit).collect();
    match (major.parse::<u32>(), digits.parse::<u32>()) {
        (Ok(a), Ok(b)) => Ok((a, b)),
        _ => Err(format!("unexpected /version {major}.{minor}")),
    }
}

/// What the cluster's version says about a transition to `target`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Support {
    /// The target's release supports the cluster (or declares no range).
    Yes,
    /// It does not; others of the space still do: the reason.
    No(String),
    /// No release of the space supports the cluster any more: the reason.
    NoneLeft(String),
}

/// Whether `space`'s release `target` supports Kubernetes `kube`.
pub fn support(space: &Space, kube: (u32, u32), target: &str) -> Support {
    let (cut, dropped) = space.supporting(kube);
    if cut.versions.is_empty() {
        return Support::NoneLeft(format!(
            "no release of the space supports the cluster's Kubernetes {}.{} (the ranges of {} exclude it): add newer releases to the space",
            kube.0,
            kube.1,
            dropped.join(", ")
        ));
    }
    if cut.versions.iter().any(|v| v.name == target)
        || !space.versions.iter().any(|v| v.name == target)
    {
        return Support::Yes;
    }
    let range = space
        .versions
        .iter()
        .find(|v| v.name == target)
        .and_then(|v| v.kubernetes.as_ref())
        .map_or_else(String::new, |k| {
            format!(" (Kubernetes {}–{})", k.min, k.max)
        });
    Support::No(format!(
        "Agones {target}{range} does not support the cluster's Kubernetes {}.{}: not applied",
        kube.0, kube.1
    ))
}

/// An applier that reads the cluster's `/version` before each apply: a target whose release
/// does not support it is refused (`rejected`, never applied); when no release of the space
/// supports it any more, the reason is kept, `stop` is cancelled (the Wanderer ends its walk)
/// and the sidecar exits 2 with it. A version that cannot be read lets the apply go on (as at
/// start: the cluster is then walked whole). After the inner apply, the Agones Deployments must
/// run the target's release, rolled out and ready, within `rollout_wait` ([`rollout`]): else
/// the transition fails with the difference. Without a client (no kubeconfig), neither check.
pub struct Guarded<'a, A> {
    pub inner: &'a A,
    /// The Kubernetes API, when a client could be built.
    pub client: Option<kube::Client>,
    /// Where the Agones Deployments are.
    pub namespace: String,
    /// How long they may take to run the applied release after the apply returned.
    pub rollout_wait: std::time::Duration,
    pub space: Space,
    pub stop: CancellationToken,
    /// Why the walk was stopped, when it was.
    pub exhausted: Arc<Mutex<Option<String>>>,
}

impl<A: Applier> Applier for Guarded<'_, A> {
    async fn apply(&self, target: &Install) -> Result<(), ApplyError> {
        let Some(client) = &self.client else {
            return self.inner.apply(target).await;
        };
        if let Ok(kube) = kubernetes_version(client).await {
            match support(&self.space, kube, &target.version) {
                Support::Yes => {}
                Support::No(why) => return Err(ApplyError::Rejected(why)),
                Support::NoneLeft(why) => {
                    if let Ok(mut e) = self.exhausted.lock() {
                        *e = Some(why.clone());
                    }
                    self.stop.cancel();
                    return Err(ApplyError::Rejected(why));
                }
            }
        }
        self.inner.apply(target).await?;
        let tag = self.space.image_tag(&target.version);
        rollout::wait_rolled_out(client, &self.namespace, tag, self.rollout_wait)
            .await
            .map_err(|detail| ApplyError::Unexpected {
                what: "the Agones Deployments".into(),
                detail,
            })
    }

    async fn observe_installed(&self) -> Result<Install, ApplyError> {
        self.inner.observe_installed().await
    }

    async fn settle(&self) -> Result<Option<Recovery>, ApplyError> {
        self.inner.settle().await
    }

    fn name(&self) -> &'static str {
        self.inner.name()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHIPPED: &str = include_str!("../../spaces/agones.yaml");

    #[test]
    fn a_release_outside_the_clusters_range_is_refused_and_none_left_says_so() {
        let space = Space::parse(SHIPPED, "agones.yaml").unwrap();
        assert_eq!(support(&space, (1, 34), "1.55.0"), Support::Yes);
        // The cluster went to 1.35 mid-soak: 1.55 and 1.56 (1.32–1.34) are refused.
        assert_eq!(
            support(&space, (1, 35), "1.56.0"),
            Support::No(
                "Agones 1.56.0 (Kubernetes 1.32–1.34) does not support the cluster's Kubernetes 1.35: not applied".into()
            )
        );
        assert_eq!(support(&space, (1, 35), "1.60.0"), Support::Yes);
        let Support::NoneLeft(why) = support(&space, (1, 40), "1.60.0") else {
            panic!("1.40 is beyond every release")
        };
        assert!(
            why.starts_with("no release of the space supports the cluster's Kubernetes 1.40"),
            "{why}"
        );
    }

    #[test]
    fn managed_clusters_minor_suffixes_are_read() {
        assert_eq!(parse("1", "34"), Ok((1, 34)));
        assert_eq!(parse("1", "35+"), Ok((1, 35)));
        assert_eq!(parse("1", "x"), Err("unexpected /version 1.x".to_owned()));
    }
}
