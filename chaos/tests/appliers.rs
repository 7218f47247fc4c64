//! The two appliers against a real simulator: the sim control endpoint, and `helm` through the
//! fake helm (`common/fake_helm.py`; helm cannot run here) that models helm's documented CLI and
//! release storage and installs on the sim: the user's values kept or reset as helm's flags say,
//! a failed upgrade rolled back by `--atomic`, an apply timeout that stops helm's whole process
//! group, and a release left pending recovered per `on_stuck`. The fake stays a fake: where it
//! models helm 3 (`--reuse-values` keeping the old chart's image tag, `--atomic`'s rollback a
//! new revision that waits again, `helm history`) its header cites helm's source.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use common::fake_helm::{FakeHelm, gone};
use tokio_util::sync::CancellationToken;
use upsoak_agones::release::Install;
use upsoak_chaos::wanderer::apply::{
    Applier, ApplyError, HelmApplier, OnStuck, ReuseValues, SimApplier,
};
use upsoak_testkit::{POLL, TempDir, eventually};

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

/// A fake helm on a fresh simulator with revision 1 installed (1.58.0) from the user's values
/// file `user.yaml` (the ServiceMonitor on, a NodePort allocator Service), and an applier on it.
async fn seeded(name: &str) -> (TempDir, FakeHelm, HelmApplier, PathBuf, CancellationToken) {
    let (url, stop) = start_sim().await;
    let dir = TempDir::new(name);
    let fake = FakeHelm::new(&dir, &url, &[]);
    let user = dir.write(
        "user.yaml",
        "agones:\n  metrics:\n    serviceMonitor:\n      enabled: true\n  allocator:\n    service:\n      serviceType: NodePort\n",
    );
    fake.seed("1.58.0", Some(&user));
    let mut a = HelmApplier::new(fake.path.clone(), dir.to_path_buf());
    a.timeout = Duration::from_secs(30);
    a.kill_after = Duration::from_secs(40);
    a.kill_grace = Duration::from_millis(500);
    a.stuck_wait = Duration::from_millis(500);
    (dir, fake, a, user, stop)
}

fn user_values(rev: &serde_json::Value) -> (serde_json::Value, serde_json::Value) {
    let agones = &rev["config"]["agones"];
    (
        agones["metrics"]["serviceMonitor"]["enabled"].clone(),
        agones["featureGates"].clone(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_applier_passes_the_users_values_and_reuses_or_resets_them_as_told() {
    let (dir, fake, mut a, user, stop) = seeded("chaos-helm-values").await;
    // The user's values files first, then the generated one; no reuse flag needed.
    a.values_files = vec![user.clone()];
    a.reuse_values = ReuseValues::None;
    let t = target(
        "1.59.0",
        &[("PlayerTracking", true), ("SidecarContainers", false)],
    );
    a.apply(&t).await.unwrap();
    let values = std::fs::read_to_string(dir.join("agones-values.yaml")).unwrap();
    assert!(
        values.contains("agones:\n  featureGates: PlayerTracking=true&SidecarContainers=false\n"),
        "{values}"
    );
    let calls = fake.calls();
    assert_eq!(
        calls[1],
        format!(
            "upgrade --install agones agones/agones --version 1.59.0 --namespace agones-system -f {} -f {} --atomic --wait --timeout 30s",
            user.display(),
            dir.join("agones-values.yaml").display()
        )
    );
    let seen = a.observe_installed().await.unwrap();
    assert_eq!(seen.version, "1.59.0");
    assert!(t.satisfied_by(&seen), "{seen:?}");
    assert_eq!(&calls.len(), &2, "observing is not an upgrade: {calls:?}");
    assert_eq!(
        fake.calls()[2..],
        [
            "status agones --namespace agones-system -o json",
            "get values agones --namespace agones-system --all -o json"
        ]
    );
    let revs = fake.revisions();
    assert_eq!(user_values(&revs[1]).0, serde_json::json!(true));

    // No values files: `reset-then-reuse` keeps the install's values.
    a.values_files.clear();
    a.reuse_values = ReuseValues::ResetThenReuse;
    a.apply(&target("1.60.0", &[("PlayerTracking", false)]))
        .await
        .unwrap();
    assert!(
        fake.calls()
            .last()
            .unwrap()
            .contains(" --reset-then-reuse-values --atomic")
    );
    let revs = fake.revisions();
    assert_eq!(
        user_values(&revs[2]),
        (
            serde_json::json!(true),
            serde_json::json!("PlayerTracking=false")
        )
    );
    // And without either, helm resets them: what the configuration refuses by default.
    a.reuse_values = ReuseValues::None;
    a.apply(&target("1.59.0", &[])).await.unwrap();
    let revs = fake.revisions();
    assert_eq!(
        user_values(&revs[3]).0,
        serde_json::Value::Null,
        "reset: {:?}",
        revs[3]
    );
    assert_eq!(revs[2]["status"], "superseded");
    assert_eq!(revs[3]["status"], "deployed");

    // A refused upgrade is a failed command with helm's message, and no new revision.
    let err = a
        .apply(&target("1.60.0", &[("Nope", true)]))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "command_failed");
    assert!(err.to_string().contains("UPGRADE FAILED"), "{err}");
    assert_eq!(fake.revisions().len(), 4);
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_slower_than_helms_timeout_is_rolled_back_by_atomic() {
    let (_dir, fake, mut a, user, stop) = seeded("chaos-helm-atomic").await;
    a.values_files = vec![user];
    a.timeout = Duration::from_secs(1);
    fake.set_mode("slow 5");
    let err = a.apply(&target("1.59.0", &[])).await.unwrap_err();
    assert_eq!(err.kind(), "command_failed", "{err}");
    assert!(
        err.to_string()
            .contains("has been rolled back due to atomic"),
        "{err}"
    );
    let statuses: Vec<_> = fake
        .revisions()
        .iter()
        .map(|r| r["status"].clone())
        .collect();
    assert_eq!(statuses, ["superseded", "failed", "deployed"]);
    // What runs is what is observed: the rollback's 1.58.0, not the target.
    assert_eq!(a.observe_installed().await.unwrap().version, "1.58.0");
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apply_timeout_leaves_no_helm_process_and_the_pending_release_is_rolled_back() {
    let (_dir, fake, mut a, user, stop) = seeded("chaos-helm-kill").await;
    a.values_files = vec![user];
    // Deaf to SIGTERM, with a child in its group: only SIGKILL to the group stops both.
    fake.set_mode("ignore-term");
    a.kill_after = Duration::from_secs(2);
    let err = a.apply(&target("1.59.0", &[])).await.unwrap_err();
    let ApplyError::Killed { signal, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(*signal, "KILL");
    assert_eq!(err.kind(), "timeout");
    let (helm, child) = (
        fake.pid("upgrade.pid").unwrap(),
        fake.pid("child.pid").unwrap(),
    );
    eventually(Duration::from_secs(10), POLL, || async {
        (gone(helm) && gone(child)).then_some(())
    })
    .await
    .expect("no helm process is left behind");
    // helm died holding the release: pending-upgrade, which `helm list` hides without --all.
    assert_eq!(
        fake.revisions().last().unwrap()["status"],
        "pending-upgrade"
    );
    let hidden = fake.run(&["list", "--namespace", "agones-system", "-o", "json"]);
    assert_eq!(String::from_utf8_lossy(&hidden.stdout).trim(), "[]");
    let all = fake.run(&[
        "list",
        "--all",
        "--namespace",
        "agones-system",
        "-o",
        "json",
    ]);
    assert!(String::from_utf8_lossy(&all.stdout).contains("pending-upgrade"));
    // An upgrade now fails as helm's does, until the release is recovered.
    fake.set_mode("ok");
    let busy = a.apply(&target("1.59.0", &[])).await.unwrap_err();
    assert!(busy.to_string().contains("another operation"), "{busy}");

    // on_stuck: fail leaves it to a person, saying how.
    a.on_stuck = OnStuck::Fail;
    let err = a.settle().await.unwrap_err();
    assert_eq!(err.kind(), "stuck");
    assert!(err.to_string().contains("helm rollback agones 1"), "{err}");
    assert_eq!(err.as_failed_recovery().unwrap().policy, "fail");

    // on_stuck: rollback, after the wait.
    a.on_stuck = OnStuck::Rollback;
    let r = a.settle().await.unwrap().expect("a recovery");
    assert_eq!(
        (r.status.as_str(), r.revision, r.result),
        ("pending-upgrade", 2, "rolled_back")
    );
    assert!(r.waited >= a.stuck_wait, "{r:?}");
    assert!(
        fake.calls().contains(
            &"rollback agones 1 --namespace agones-system --wait --timeout 30s".to_owned()
        )
    );
    assert_eq!(a.observe_installed().await.unwrap().version, "1.58.0");
    assert_eq!(a.settle().await.unwrap(), None, "nothing left to recover");
    a.apply(&target("1.59.0", &[])).await.unwrap();
    stop.cancel();
}

/// The Deployments the simulator serves in the Agones namespace, as the rollout guard reads them.
async fn deployments(url: &str) -> Vec<k8s_openapi::api::apps::v1::Deployment> {
    let list: serde_json::Value = reqwest::get(format!(
        "{url}/apis/apps/v1/namespaces/agones-system/deployments"
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    serde_json::from_value(list["items"].clone()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reuse_values_keeps_the_old_images_so_the_applier_refuses_a_version_change_under_it() {
    let (url, stop) = start_sim().await;
    let dir = TempDir::new("chaos-helm-reuse");
    let fake = FakeHelm::new(&dir, &url, &[]);
    fake.seed("1.58.0", None);
    // helm 3's --reuse-values: the 1.59.0 chart rendered with 1.58.0's values, image tag
    // included. helm says deployed; the cluster runs the old images.
    let mut args = FakeHelm::upgrade_args("1.59.0", None);
    args.push("--reuse-values".into());
    let out = fake.run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(fake.history().last().unwrap().1, "deployed");
    let diff = upsoak_chaos::wanderer::rollout::difference(&deployments(&url).await, "1.59.0")
        .expect("the old images run");
    assert!(diff.contains("image tag 1.58.0, want 1.59.0"), "{diff}");
    // --reset-then-reuse-values renders the new chart's defaults: its images.
    let mut args = FakeHelm::upgrade_args("1.60.0", None);
    args.push("--reset-then-reuse-values".into());
    assert!(
        fake.run(&args.iter().map(String::as_str).collect::<Vec<_>>())
            .status
            .success()
    );
    assert_eq!(
        upsoak_chaos::wanderer::rollout::difference(&deployments(&url).await, "1.60.0"),
        None
    );

    // The applier refuses a version change under `reuse`, before helm upgrades anything.
    let mut a = HelmApplier::new(fake.path.clone(), dir.to_path_buf());
    a.reuse_values = ReuseValues::Reuse;
    a.timeout = Duration::from_secs(30);
    let revisions = fake.revisions().len();
    let err = a.apply(&target("1.59.0", &[])).await.unwrap_err();
    assert_eq!(err.kind(), "rejected", "{err}");
    assert!(err.to_string().contains("1.60.0 → 1.59.0"), "{err}");
    assert!(err.to_string().contains("reset-then-reuse"), "{err}");
    assert_eq!(fake.revisions().len(), revisions, "no upgrade ran");
    // The same version (gates only) is still applied.
    a.apply(&target("1.60.0", &[("PlayerTracking", true)]))
        .await
        .unwrap();
    assert_eq!(fake.revisions().len(), revisions + 1);
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_after_a_killed_atomic_upgrade_goes_to_the_last_good_revision() {
    let (_dir, fake, mut a, user, stop) = seeded("chaos-helm-killed-rollback").await;
    a.values_files = vec![user];
    // The upgrade fails at once; --atomic's rollback then waits (up to helm's timeout) and is
    // killed at the apply timeout: the release is left at a new revision, pending-rollback.
    fake.set_mode("fail");
    fake.set_rollback_delay(Some(Duration::from_secs(60)));
    a.kill_after = Duration::from_secs(3);
    let err = a.apply(&target("1.59.0", &[])).await.unwrap_err();
    assert_eq!(err.kind(), "timeout", "{err}");
    assert_eq!(
        fake.history(),
        [
            (1, "deployed".into(), "1.58.0".into()),
            (2, "failed".into(), "1.59.0".into()),
            (3, "pending-rollback".into(), "1.58.0".into()),
        ]
    );
    let out = fake.run(&["history", "agones", "-n", "agones-system", "-o", "json"]);
    let h: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(h[2]["status"], "pending-rollback");
    assert_eq!(h[1]["chart"], "agones-1.59.0");
    // Recovery rolls back to revision 1, the last good one; `revision − 1` would be the
    // failed upgrade.
    fake.set_mode("ok");
    fake.set_rollback_delay(None);
    let r = a.settle().await.unwrap().expect("a recovery");
    assert_eq!(
        (r.status.as_str(), r.revision, r.result),
        ("pending-rollback", 3, "rolled_back")
    );
    assert_eq!(r.detail, "rolled back to revision 1");
    assert!(
        fake.calls().contains(
            &"rollback agones 1 --namespace agones-system --wait --timeout 30s".to_owned()
        ),
        "{:?}",
        fake.calls()
    );
    assert_eq!(fake.history()[3], (4, "deployed".into(), "1.58.0".into()));
    assert_eq!(a.observe_installed().await.unwrap().version, "1.58.0");
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_wait_helm_is_not_asked_to_wait_and_a_pinned_image_tag_is_warned_about() {
    let (dir, fake, mut a, user, stop) = seeded("chaos-helm-nowait").await;
    a.values_files = vec![user.clone()];
    a.wait = false;
    a.apply(&target("1.59.0", &[])).await.unwrap();
    let call = fake.calls()[1].clone();
    assert!(call.ends_with(" --timeout 30s"), "{call}");
    assert!(
        !call.contains("--wait") && !call.contains("--atomic"),
        "{call}"
    );
    assert_eq!(a.observe_installed().await.unwrap().version, "1.59.0");
    // A values file pinning the image tag is named, with what it does.
    assert!(a.image_tag_warnings().is_empty());
    let pinned = dir.write("pinned.yaml", "agones:\n  image:\n    tag: 1.58.0\n");
    a.values_files.push(pinned.clone());
    let w = a.image_tag_warnings();
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].starts_with(&format!(
            "{}: agones.image.tag is set (1.58.0)",
            pinned.display()
        )),
        "{w:?}"
    );
    stop.cancel();
}

/// On a cluster without a load balancer (kind, minikube, bare metal) the chart's LoadBalancer
/// Services never get an ingress, so helm's `--wait` (`pkg/kube/ready.go`, `serviceReady`)
/// runs out its timeout and `--atomic` rolls the upgrade back; with `wait: false` the same
/// upgrade goes through, the rollout guard alone judging readiness.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_load_balancer_wait_rolls_every_upgrade_back_and_no_wait_goes_through() {
    let (url, stop) = common::start_sim("upgrade_window: 300ms\nload_balancer: false", 1).await;
    let dir = TempDir::new("chaos-helm-no-lb");
    let fake = FakeHelm::new(&dir, &url, &[]);
    // Installed with the three Services as NodePort: helm waits on no load balancer.
    let user = dir.write(
        "user.yaml",
        "agones:\n  allocator:\n    service:\n      serviceType: NodePort\n  ping:\n    http:\n      serviceType: NodePort\n    udp:\n      serviceType: NodePort\n",
    );
    fake.seed("1.58.0", Some(&user));
    // Upgrades on the chart's defaults: LoadBalancer Services.
    let mut a = HelmApplier::new(fake.path.clone(), dir.to_path_buf());
    a.reuse_values = ReuseValues::None;
    a.timeout = Duration::from_secs(2);
    a.kill_after = Duration::from_secs(20);
    a.kill_grace = Duration::from_millis(500);
    let err = a.apply(&target("1.59.0", &[])).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("has been rolled back due to atomic"),
        "{err}"
    );
    assert_eq!(a.observe_installed().await.unwrap().version, "1.58.0");
    a.wait = false;
    a.apply(&target("1.59.0", &[])).await.unwrap();
    assert_eq!(a.observe_installed().await.unwrap().version, "1.59.0");
    stop.cancel();
}
