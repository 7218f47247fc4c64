//! The two appliers against a real simulator: the sim control endpoint, and `helm` through a
//! fake executable (helm cannot run here) that records its arguments and installs on the sim.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use upsoak_agones::release::Install;
use upsoak_chaos::wanderer::apply::{Applier, HelmApplier, SimApplier};
use upsoak_testkit::TempDir;

async fn start_sim() -> (String, CancellationToken) {
    common::start_sim("upgrade_window: 300ms", 1).await
}

fn target(version: &str, gates: &[(&str, bool)]) -> Install {
    Install {
        version: version.into(),
        feature_gates: gates.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        tunables: BTreeMap::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_applier_installs_and_observes() {
    let (url, stop) = start_sim().await;
    let a = SimApplier::new(&url, Duration::from_secs(10));
    let t = target(
        "1.58.0",
        &[("PlayerTracking", true), ("CountsAndLists", false)],
    );
    a.apply(&t).await.unwrap();
    let seen = a.observe_installed().await.unwrap();
    assert!(t.satisfied_by(&seen), "{seen:?}");
    assert!(
        seen.feature_gates["SidecarContainers"],
        "defaults are observed too"
    );
    // The chart's validation comes back as a rejection with its reason.
    let bad = target("1.60.0", &[("PortPolicyNone", false)]);
    let err = a.apply(&bad).await.unwrap_err();
    assert_eq!(err.kind(), "rejected");
    assert!(err.to_string().contains("PortPolicyNone"), "{err}");
    assert_eq!(a.observe_installed().await.unwrap().version, "1.58.0");
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_applier_calls_helm_as_documented_and_observes_the_release() {
    let (url, stop) = start_sim().await;
    let dir = TempDir::new("chaos-helm");
    let log = dir.join("helm.log");
    let fake = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fake-helm.sh");
    let wrapper = dir.join("helm");
    std::fs::write(
        &wrapper,
        format!(
            "#!/usr/bin/env bash\nFAKE_HELM_LOG={} FAKE_HELM_SIM={} exec {} \"$@\"\n",
            log.display(),
            url,
            fake.display()
        ),
    )
    .unwrap();
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&wrapper)
        .status()
        .unwrap();
    let a = HelmApplier {
        helm: wrapper,
        release: "agones".into(),
        chart: "agones/agones".into(),
        namespace: "agones-system".into(),
        timeout: Duration::from_secs(600),
        values_dir: dir.to_path_buf(),
        extra_values: vec![],
    };
    let t = target(
        "1.59.0",
        &[("PlayerTracking", true), ("SidecarContainers", false)],
    );
    a.apply(&t).await.unwrap();
    let values = std::fs::read_to_string(dir.join("agones-values.yaml")).unwrap();
    assert!(
        values
            .contains("agones:\n  featureGates: \"PlayerTracking=true&SidecarContainers=false\"\n"),
        "{values}"
    );
    let seen = a.observe_installed().await.unwrap();
    assert_eq!(seen.version, "1.59.0");
    assert!(t.satisfied_by(&seen), "{seen:?}");
    let calls = std::fs::read_to_string(&log).unwrap();
    let calls: Vec<&str> = calls.lines().collect();
    assert_eq!(
        calls[0],
        format!(
            "upgrade --install agones agones/agones --version 1.59.0 --namespace agones-system -f {} --atomic --wait --timeout 600s",
            dir.join("agones-values.yaml").display()
        )
    );
    assert_eq!(
        calls[1],
        "list --namespace agones-system --filter ^agones$ -o json"
    );
    assert_eq!(
        calls[2],
        "get values agones --namespace agones-system -o json"
    );
    // A refused upgrade is a failed command with helm's message.
    let err = a
        .apply(&target("1.60.0", &[("Nope", true)]))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "command_failed");
    assert!(err.to_string().contains("UPGRADE FAILED"), "{err}");
    stop.cancel();
}
