//! The checks around each apply, against a real simulator over HTTP: the cluster's `/version`
//! read before the apply (a release that does not support it is never applied; none left stops
//! the walk), and the Agones Deployments read after it (they must run the applied release,
//! ready). The simulator's own applier passes; an applier that reports success without
//! installing anything (as a helm whose rollout never happened would) fails with the difference.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use upsoak_agones::release::Install;
use upsoak_chaos::wanderer::apply::{Applier, ApplyError, Recovery, SimApplier};
use upsoak_chaos::wanderer::cluster::Guarded;
use upsoak_chaos::wanderer::space::Space;

/// Says every install succeeded and installs nothing.
struct Claims;

impl Applier for Claims {
    async fn apply(&self, _: &Install) -> Result<(), ApplyError> {
        Ok(())
    }
    async fn observe_installed(&self) -> Result<Install, ApplyError> {
        Ok(Install::default())
    }
    async fn settle(&self) -> Result<Option<Recovery>, ApplyError> {
        Ok(None)
    }
    fn name(&self) -> &'static str {
        "claims"
    }
}

/// A two-release space; the simulator's cluster is Kubernetes 1.34.
fn space(range_159: &str, range_160: &str) -> Space {
    let yaml = format!(
        "versions:\n  - {{ version: 1.59.0, kubernetes: {range_159}, gates: {{ PlayerTracking: Alpha }} }}\n  - {{ version: 1.60.0, kubernetes: {range_160}, gates: {{ PlayerTracking: Alpha }} }}\nhops: {{ max_up: 1, max_down: 1, allow_downgrade: true }}\n"
    );
    Space::parse(&yaml, "space.yaml").unwrap()
}

fn guarded<'a, A>(inner: &'a A, client: kube::Client, space: Space) -> Guarded<'a, A> {
    Guarded {
        inner,
        client: Some(client),
        namespace: "agones-system".into(),
        rollout_wait: Duration::from_secs(2),
        space,
        stop: CancellationToken::new(),
        exhausted: Arc::new(Mutex::new(None)),
    }
}

fn target(version: &str) -> Install {
    Install {
        version: version.into(),
        ..Install::default()
    }
}

#[tokio::test]
async fn deployments_must_run_the_applied_release() {
    let (sim, stop) = common::start_sim("upgrade_window: 200ms", 1).await;
    let client = upsoak_chaos::producer::client(Some(&sim)).await.unwrap();
    let both = r#"{ min: "1.33", max: "1.36" }"#;
    // The simulator's applier installs 1.59.0: its Deployments run it, ready.
    let real = SimApplier::new(&sim, Duration::from_secs(10));
    let g = guarded(&real, client.clone(), space(both, both));
    g.apply(&target("1.59.0")).await.unwrap();
    assert_eq!(real.observe_installed().await.unwrap().version, "1.59.0");
    // An applier that claims 1.60.0 but installs nothing: the Deployments still run 1.59.0.
    let g = guarded(&Claims, client, space(both, both));
    let e = g.apply(&target("1.60.0")).await.unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("agones-controller: image tag 1.59.0, want 1.60.0")
            && text.contains("agones-allocator: image tag 1.59.0, want 1.60.0"),
        "{text}"
    );
    assert_eq!(e.kind(), "unexpected");
    stop.cancel();
}

#[tokio::test]
async fn a_release_the_cluster_version_is_outside_of_is_never_applied() {
    let (sim, stop) = common::start_sim("upgrade_window: 200ms", 2).await;
    let client = upsoak_chaos::producer::client(Some(&sim)).await.unwrap();
    let real = SimApplier::new(&sim, Duration::from_secs(10));
    // 1.59.0 supports 1.32–1.33 only; the cluster is 1.34.
    let g = guarded(
        &real,
        client.clone(),
        space(
            r#"{ min: "1.32", max: "1.33" }"#,
            r#"{ min: "1.34", max: "1.36" }"#,
        ),
    );
    let e = g.apply(&target("1.59.0")).await.unwrap_err();
    assert_eq!(e.kind(), "rejected");
    assert!(
        e.to_string().contains(
            "Agones 1.59.0 (Kubernetes 1.32–1.33) does not support the cluster's Kubernetes 1.34: not applied"
        ),
        "{e}"
    );
    assert_eq!(real.observe_installed().await.unwrap().version, "1.60.0");
    assert!(!g.stop.is_cancelled());
    // No release supports 1.34 any more: the walk is stopped, and why is kept.
    let g = guarded(
        &real,
        client,
        space(
            r#"{ min: "1.30", max: "1.31" }"#,
            r#"{ min: "1.35", max: "1.36" }"#,
        ),
    );
    g.apply(&target("1.60.0")).await.unwrap_err();
    assert!(g.stop.is_cancelled());
    let why = g.exhausted.lock().unwrap().clone().unwrap();
    assert!(
        why.starts_with("no release of the space supports the cluster's Kubernetes 1.34"),
        "{why}"
    );
    stop.cancel();
}
