//! The sidecar with the helm applier (the fake helm, `common/fake_helm.py`, on a real
//! simulator), killed with SIGKILL while its helm upgrade holds the release pending: the
//! restarted sidecar starts its Producer at once and recovers the release per `on_stuck`
//! beside it, journalled and counted, while the Producer's counters keep moving.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::fake_helm::{FakeHelm, gone};
use upsoak_chaos::wanderer::journal::{Entry, Journal, Outcome};
use upsoak_testkit::{POLL, Proc, TempDir, eventually_blocking};

const BIN: &str = env!("CARGO_BIN_EXE_upsoak-chaos");

fn sidecar(name: &str, config: &Path, dir: &Path) -> Proc {
    let mut cmd = Command::new(BIN);
    cmd.args(["run", "--config"]).arg(config);
    Proc::start_blocking(name, &mut cmd, dir)
}

fn entries(path: &Path) -> Vec<Entry> {
    if !path.exists() {
        return Vec::new();
    }
    let copy = path.with_extension("copy");
    std::fs::copy(path, &copy).unwrap();
    Journal::open(&copy).unwrap().1.entries
}

fn wait_until(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    eventually_blocking(Duration::from_secs(secs), POLL, || f().then_some(()))
        .unwrap_or_else(|e| panic!("waiting for {what}: {e}"));
}

/// The sum of every series of `name` on the sidecar's /metrics.
fn metric(p: &Proc, name: &str) -> f64 {
    // curl: the test's waits are blocking, and reqwest here is async only.
    let out = Command::new("curl")
        .args(["-sf", &format!("{}/metrics", p.url().unwrap())])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn releases(journal: &Path) -> Vec<(u64, String, String, String)> {
    entries(journal)
        .into_iter()
        .filter_map(|e| match e {
            Entry::Release {
                step,
                status,
                policy,
                result,
                ..
            } => Some((step, status, policy, result)),
            _ => None,
        })
        .collect()
}

#[test]
fn kill_9_during_a_pending_upgrade_the_restart_produces_at_once_and_rolls_the_release_back() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (sim, stop) = rt.block_on(common::start_sim(
        "upgrade_window: 300ms\nfleets: [ { name: soak, replicas: 4 } ]",
        1,
    ));
    let dir = TempDir::new("chaos-helm-kill9");
    let fake = FakeHelm::new(&dir, &sim, &[]);
    let user = dir.write(
        "user.yaml",
        "agones:\n  metrics:\n    serviceMonitor:\n      enabled: true\n",
    );
    fake.seed("1.55.0", Some(&user));
    let space = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("spaces/agones.yaml");
    let config = dir.write(
        "sidecar.yaml",
        &format!(
            "listen: 127.0.0.1:0\nstate_dir: {}\nkube_server: {sim}\nwanderer:\n  space: {}\n  seed: 3\n  schedule: {{ period: 300ms, jitter: 0 }}\n  apply_timeout: 130s\n  applier: {{ kind: helm, helm: {}, timeout: 30s, values_files: [{}], on_stuck: rollback, stuck_wait: 4s, kill_grace: 1s }}\nproducer:\n  fleets: [ {{ name: soak, min_replicas: 3, max_replicas: 6, scale_every_min: 1s, scale_every_max: 2s }} ]\n  allocation_rate: 10\n  # A small Fleet kept busy on purpose: the walk is under test, not the load.\n  capacity: {{ on_short: warn }}\n",
            dir.join("state").display(),
            space.display(),
            fake.path.display(),
            user.display(),
        ),
    );
    let journal = dir.join("state/journal.jsonl");

    // The first upgrade hangs holding the release: kill -9 the sidecar there, and its helm with
    // it (the pod's death takes every process of the container).
    fake.set_mode("hang");
    let mut first = sidecar("sidecar-1", &config, &dir);
    wait_until(30, "an upgrade pending", || {
        fake.revisions()
            .last()
            .is_some_and(|r| r["status"] == "pending-upgrade")
            && matches!(entries(&journal).last(), Some(Entry::Intent { .. }))
            && fake.pid("child.pid").is_some()
    });
    first.kill();
    let helm = fake.pid("upgrade.pid").unwrap();
    let killed = Command::new("kill")
        .args(["-KILL", "--", &format!("-{helm}")])
        .status()
        .unwrap();
    assert!(killed.success());
    wait_until(10, "the old helm gone", || gone(helm));
    let Some(Entry::Intent { step: crashed, .. }) = entries(&journal).last().cloned() else {
        panic!("an intent last")
    };
    assert_eq!(
        fake.revisions().last().unwrap()["status"],
        "pending-upgrade"
    );

    // Restarted: the Producer works at once, while the release is still waited for (4 s).
    fake.set_mode("ok");
    let mut second = sidecar("sidecar-2", &config, &dir);
    let allocations = "upsoak_producer_allocations_total";
    wait_until(10, "allocations after the restart", || {
        metric(&second, allocations) > 0.0
    });
    let a = metric(&second, allocations);
    wait_until(10, "more allocations", || metric(&second, allocations) > a);
    assert!(
        releases(&journal).is_empty(),
        "the Producer's counters moved only after the recovery: {:?}",
        releases(&journal)
    );
    assert_eq!(
        fake.revisions().last().unwrap()["status"],
        "pending-upgrade"
    );

    // Then the release is rolled back per on_stuck, journalled and counted; the walk goes on.
    wait_until(30, "the recovery journalled", || {
        !releases(&journal).is_empty()
    });
    assert_eq!(
        releases(&journal),
        [(
            crashed,
            "pending-upgrade".into(),
            "rollback".into(),
            "rolled_back".into()
        )]
    );
    assert!(
        fake.calls()
            .iter()
            .any(|c| c.starts_with("rollback agones 1 --namespace agones-system")),
        "{:?}",
        fake.calls()
    );
    let outcomes = || -> Vec<(u64, Outcome)> {
        entries(&journal)
            .iter()
            .filter_map(|e| match e {
                Entry::Outcome { step, result, .. } => Some((*step, *result)),
                _ => None,
            })
            .collect()
    };
    // Journalled indeterminate before the recovery; observed after it.
    wait_until(10, "the interrupted step observed", || {
        outcomes().contains(&(crashed, Outcome::Observed))
    });
    assert_eq!(
        outcomes()[..2],
        [
            (crashed, Outcome::Indeterminate),
            (crashed, Outcome::Observed)
        ]
    );
    assert_eq!(metric(&second, "upsoak_wanderer_stuck_releases_total"), 1.0);
    wait_until(30, "a step applied after the recovery", || {
        entries(&journal).iter().any(|e| {
            matches!(e, Entry::Outcome { step, result: Outcome::Applied, .. } if *step > crashed)
        })
    });
    // The user's values went with every upgrade.
    let last = fake.revisions().last().cloned().unwrap();
    assert_eq!(
        last["config"]["agones"]["metrics"]["serviceMonitor"]["enabled"],
        true
    );
    let status = second
        .terminate(Duration::from_secs(15))
        .expect("stops on SIGTERM");
    assert_eq!(status.code(), Some(0), "{}", second.logs());
    stop.cancel();
}

#[test]
fn with_on_stuck_fail_the_wanderer_halts_and_the_producer_goes_on() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (sim, stop) = rt.block_on(common::start_sim(
        "upgrade_window: 300ms\nfleets: [ { name: soak, replicas: 4 } ]",
        1,
    ));
    let dir = TempDir::new("chaos-helm-fail");
    let fake = FakeHelm::new(&dir, &sim, &[]);
    let user = dir.write("user.yaml", "agones: {}\n");
    let upgrade = |version: &str| {
        let mut c = Command::new(&fake.path);
        c.args(FakeHelm::upgrade_args(version, Some(&user)));
        c
    };
    assert!(upgrade("1.55.0").status().unwrap().success());
    // A person's upgrade whose helm died: the release stays pending-upgrade.
    fake.set_mode("hang");
    // In a group of its own, as the sidecar runs helm.
    let mut hung = std::os::unix::process::CommandExt::process_group(&mut upgrade("1.56.0"), 0)
        .spawn()
        .unwrap();
    wait_until(10, "the upgrade pending", || {
        fake.pid("child.pid").is_some()
    });
    let helm = fake.pid("upgrade.pid").unwrap();
    Command::new("kill")
        .args(["-KILL", "--", &format!("-{helm}")])
        .status()
        .unwrap();
    hung.wait().unwrap();
    let space = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("spaces/agones.yaml");
    let config = dir.write(
        "sidecar.yaml",
        &format!(
            "listen: 127.0.0.1:0\nstate_dir: {}\nkube_server: {sim}\nwanderer:\n  space: {}\n  seed: 3\n  schedule: {{ period: 300ms, jitter: 0 }}\n  apply_timeout: 130s\n  applier: {{ kind: helm, helm: {}, timeout: 30s, values_files: [{}], on_stuck: fail, stuck_wait: 1s }}\nproducer:\n  fleets: [ {{ name: soak, min_replicas: 3, max_replicas: 6, scale_every_min: 1s, scale_every_max: 2s }} ]\n  allocation_rate: 10\n  # A small Fleet kept busy on purpose: the walk is under test, not the load.\n  capacity: {{ on_short: warn }}\n",
            dir.join("state").display(),
            space.display(),
            fake.path.display(),
            user.display(),
        ),
    );
    let journal = dir.join("state/journal.jsonl");
    let mut p = sidecar("sidecar", &config, &dir);
    wait_until(20, "the Wanderer halted", || {
        metric(&p, "upsoak_wanderer_halted") == 1.0
    });
    assert_eq!(
        releases(&journal),
        [(0, "pending-upgrade".into(), "fail".into(), "failed".into())]
    );
    assert_eq!(metric(&p, "upsoak_wanderer_stuck_releases_total"), 1.0);
    // The release is left as found, and the load goes on.
    assert_eq!(
        fake.revisions().last().unwrap()["status"],
        "pending-upgrade"
    );
    let a = metric(&p, "upsoak_producer_allocations_total");
    wait_until(10, "allocations after the halt", || {
        metric(&p, "upsoak_producer_allocations_total") > a
    });
    // At the signal, the halt is the exit status: a runtime failure, with what to do.
    let status = p
        .terminate(Duration::from_secs(15))
        .expect("stops on SIGTERM");
    assert_eq!(status.code(), Some(4), "{}", p.logs());
    let err = p.stderr();
    assert!(
        err.contains("stuck in `pending-upgrade` (revision 2)"),
        "{err}"
    );
    assert!(err.contains("hint: recover the release by hand"), "{err}");
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_space_with_no_release_for_the_clusters_kubernetes_exits_2() {
    // The simulator's /version is Kubernetes 1.34.
    let (sim, stop) = common::start_sim("", 1).await;
    let dir = TempDir::new("chaos-kube-range");
    let space = dir.write(
        "space.yaml",
        "versions:\n  - version: 1.60.0\n    kubernetes: { min: \"1.35\", max: \"1.36\" }\n    gates: { PlayerTracking: Alpha }\nhops: { max_up: 1, max_down: 1, allow_downgrade: false }\n",
    );
    let config = dir.write(
        "sidecar.yaml",
        &format!(
            "listen: 127.0.0.1:0\nstate_dir: {}\nkube_server: {sim}\nwanderer:\n  space: {}\n  seed: 1\n  applier: {{ kind: sim, url: \"{sim}\" }}\nproducer:\n  fleets: []\n  allocation_rate: 0\n",
            dir.join("state").display(),
            space.display(),
        ),
    );
    let out = tokio::process::Command::new(BIN)
        .args(["run", "--config"])
        .arg(&config)
        .output()
        .await
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("versions: no release supports the cluster's Kubernetes 1.34 (the ranges of 1.60.0 exclude it)"),
        "{err}"
    );
    stop.cancel();
}
