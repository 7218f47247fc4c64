//! `upsoak-chaos preflight`, the real binary against a real simulator over HTTP: every check
//! passes and it exits 0 (with the simulator's applier, and with the helm applier through the
//! fake helm, `common/fake_helm.py`: helm cannot run here); a Fleet without Ready servers
//! fails the `fleets` check, exit 1, naming it; a Fleet too small for the load fails the
//! `capacity` check with its numbers, one the Producer will scale up warns; a chart version
//! the repository lacks fails `charts`, LoadBalancer Services without ingress warn in
//! `loadbalancer`, a verb denied on an object the chart renders fails `permissions` with its
//! triple; a bad configuration is exit 2.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::fake_helm::FakeHelm;
use upsoak_testkit::{POLL, TempDir, eventually};

const BIN: &str = env!("CARGO_BIN_EXE_upsoak-chaos");

fn space() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("spaces/agones.yaml")
}

/// A sidecar configuration on the simulator at `sim` with `applier`, allocating from `soak`:
/// a load it holds, 1 canary + ⌈0.5/s × (0.2 s session + 0.5 s to replace) × 1.5⌉ = 2 servers.
fn config(dir: &TempDir, sim: &str, applier: &str) -> PathBuf {
    config_with(
        dir,
        sim,
        applier,
        "  fleets: [ { name: soak, min_replicas: 2, max_replicas: 4, scale_every_min: 1s, scale_every_max: 2s } ]\n  allocation_rate: 0.5\n  canaries: { count: 1 }\n",
    )
}

/// A sidecar configuration with `producer` (its lines, indented) and quick sessions and
/// replacements, as the simulator's test lifecycle has.
fn config_with(dir: &TempDir, sim: &str, applier: &str, producer: &str) -> PathBuf {
    dir.write(
        "sidecar.yaml",
        &format!(
            "listen: 127.0.0.1:0\nstate_dir: {}\nkube_server: {sim}\nwanderer:\n  space: {}\n  seed: 1\n  apply_timeout: 130s\n  applier: {applier}\nproducer:\n{producer}  session: {{ min_length: 100ms, max_length: 300ms }}\n  capacity: {{ replace_time: 500ms }}\n",
            dir.join("state").display(),
            space().display(),
        ),
    )
}

async fn preflight(config: &Path) -> (Option<i32>, String, String) {
    let out = tokio::process::Command::new(BIN)
        .args(["preflight", "--timeout", "20s", "--config"])
        .arg(config)
        .output()
        .await
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The Fleet's `status` as the simulator serves it.
async fn fleet_status(sim: &str, name: &str) -> serde_json::Value {
    let url = format!("{sim}/apis/agones.dev/v1/namespaces/default/fleets/{name}");
    let doc: serde_json::Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
    doc["status"].clone()
}

async fn ready(sim: &str, name: &str, want: i64) {
    eventually(Duration::from_secs(20), POLL, || async {
        (fleet_status(sim, name).await["readyReplicas"].as_i64() >= Some(want)).then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("Fleet {name} never had {want} Ready servers: {e}"));
}

/// The line of check `name` in the report.
fn line<'a>(stdout: &'a str, name: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some(name))
        .unwrap_or_else(|| panic!("no `{name}` check in:\n{stdout}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn against_the_simulator_every_check_passes_and_the_server_is_released() {
    let (sim, stop) = common::start_sim("fleets: [ { name: soak, replicas: 3 } ]", 1).await;
    ready(&sim, "soak", 3).await;
    let dir = TempDir::new("chaos-preflight-ok");
    let cfg = config(&dir, &sim, &format!("{{ kind: sim, url: \"{sim}\" }}"));
    let (code, stdout, stderr) = preflight(&cfg).await;
    assert_eq!(code, Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    for (name, want) in [
        ("release", "PASS"),
        ("kubernetes", "PASS"),
        ("permissions", "PASS"),
        ("fleets", "PASS"),
        ("capacity", "PASS"),
        ("allocation", "PASS"),
        // The simulator's cluster has a load balancer by default: each Service has an ingress.
        ("loadbalancer", "PASS"),
        // The helm and charts checks apply only with the helm applier.
        ("helm", "SKIP"),
        ("charts", "SKIP"),
    ] {
        let l = line(&stdout, name);
        assert!(l.starts_with(want), "{name}: {l}\n{stdout}");
    }
    assert!(
        line(&stdout, "kubernetes").contains("cluster 1.34: supported by 6"),
        "{stdout}"
    );
    assert!(line(&stdout, "release").contains("Agones 1.60.0, in the space"));
    assert!(
        line(&stdout, "capacity").contains(
            "default/soak: 3 replicas (scaled within 2..=4), the load needs 2 (1 canaries + ⌈0.5/s × (0.2 s mean session + 0.5 s replace_time) × 1.5 headroom⌉ = 2)"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("preflight: every check passed"), "{stdout}");
    // The allocated server was played (it named itself) and released: none is left Allocated.
    let alloc = line(&stdout, "allocation");
    assert!(
        alloc.contains("answered GAMESERVER") && alloc.contains("NAME: soak-"),
        "{alloc}"
    );
    eventually(Duration::from_secs(10), POLL, || async {
        (fleet_status(&sim, "soak").await["allocatedReplicas"].as_i64() == Some(0)).then_some(())
    })
    .await
    .unwrap();
    stop.cancel();
}

/// With PlayerTracking on, the GameServer preflight allocates and reads back has
/// `status.players.ids: null`, as on Agones; the `allocation` check still passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_player_tracking_on_the_allocation_check_reads_ids_null_and_passes() {
    let (sim, stop) = common::start_sim(
        "initial: { version: 1.60.0, featureGates: PlayerTracking=true }\nfleets: [ { name: soak, replicas: 3 } ]",
        4,
    )
    .await;
    ready(&sim, "soak", 3).await;
    let body = reqwest::get(format!(
        "{sim}/apis/agones.dev/v1/namespaces/default/gameservers"
    ))
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    assert_eq!(body.matches(r#""ids":null"#).count(), 3, "{body}");
    let dir = TempDir::new("chaos-preflight-pt");
    let cfg = config(&dir, &sim, &format!("{{ kind: sim, url: \"{sim}\" }}"));
    let (code, stdout, stderr) = preflight(&cfg).await;
    let alloc = line(&stdout, "allocation");
    assert!(alloc.starts_with("PASS"), "{alloc}\n{stdout}\n{stderr}");
    assert!(alloc.contains("NAME: soak-"), "{alloc}");
    assert_eq!(code, Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_without_ready_servers_fails_its_check_with_exit_1() {
    let (sim, stop) = common::start_sim("fleets: [ { name: soak, replicas: 0 } ]", 2).await;
    let dir = TempDir::new("chaos-preflight-empty");
    let cfg = config(&dir, &sim, &format!("{{ kind: sim, url: \"{sim}\" }}"));
    let (code, stdout, stderr) = preflight(&cfg).await;
    assert_eq!(code, Some(1), "stdout:\n{stdout}\nstderr:\n{stderr}");
    let fleets = line(&stdout, "fleets");
    assert!(
        fleets.starts_with("FAIL")
            && fleets.contains("default/soak: 0 Ready of 0: no Ready servers"),
        "{stdout}"
    );
    assert!(stdout.contains("hint: create the Fleets"), "{stdout}");
    assert!(line(&stdout, "allocation").starts_with("SKIP"), "{stdout}");
    // The others still pass: only the broken part is named. The Producer scales the empty
    // Fleet to its min_replicas, which hold the load: a warning, not a failure.
    assert!(line(&stdout, "permissions").starts_with("PASS"), "{stdout}");
    let capacity = line(&stdout, "capacity");
    assert!(
        capacity.starts_with("WARN")
            && capacity.contains("default/soak: 0 replicas now, and the load needs 2"),
        "{stdout}"
    );
    assert!(
        stdout.contains("preflight: 1 of 9 checks failed: fleets"),
        "{stdout}"
    );
    assert!(stderr.contains("preflight failed: fleets"), "{stderr}");
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_helm_applier_helm_and_the_release_are_checked() {
    let (sim, stop) = common::start_sim(
        "upgrade_window: 300ms\nfleets: [ { name: soak, replicas: 2 } ]",
        3,
    )
    .await;
    ready(&sim, "soak", 1).await;
    let dir = TempDir::new("chaos-preflight-helm");
    let fake = FakeHelm::new(&dir, &sim, &[]);
    let helm = |extra: &str| {
        format!(
            "{{ kind: helm, helm: {}, timeout: 30s, reuse_values: reset-then-reuse{extra} }}",
            fake.path.display()
        )
    };
    // Nothing installed yet under the release name: the release check says so.
    let cfg = config(&dir, &sim, &helm(""));
    let (code, stdout, _) = preflight(&cfg).await;
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        line(&stdout, "helm").starts_with("PASS  helm         v3.16.4+gfake"),
        "{stdout}"
    );
    assert!(
        line(&stdout, "release").contains("release `agones` is not installed in `agones-system`"),
        "{stdout}"
    );
    fake.seed("1.59.0", None);
    let (code, stdout, stderr) = preflight(&cfg).await;
    assert_eq!(code, Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        line(&stdout, "release").contains("revision 1 deployed: Agones 1.59.0, in the space"),
        "{stdout}"
    );
    // Every version's chart is found, and every permission the rendered chart needs is allowed.
    assert!(
        line(&stdout, "charts")
            .contains("PASS  charts       the chart of each of the 6 versions can be pulled"),
        "{stdout}"
    );
    let permissions = line(&stdout, "permissions");
    assert!(permissions.starts_with("PASS"), "{stdout}");
    assert!(
        line(&stdout, "loadbalancer").starts_with("PASS"),
        "{stdout}"
    );
    let calls = fake.calls().join("\n");
    assert!(
        calls.contains("show chart agones/agones --version 1.55.0")
            && calls.contains(
                "template agones agones/agones --version 1.60.0 --namespace agones-system"
            ),
        "{calls}"
    );
    // A helm missing is a failed check, not a crash.
    let gone = config(
        &dir,
        &sim,
        "{ kind: helm, helm: /nonexistent/helm, timeout: 30s, reuse_values: reuse }",
    );
    let (code, stdout, _) = preflight(&gone).await;
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        line(&stdout, "helm").contains("cannot run `/nonexistent/helm`"),
        "{stdout}"
    );
    stop.cancel();
}

/// The chart's three Services as NodePort (the advice for clusters without a load balancer).
const NODEPORT_VALUES: &str = "agones:\n  allocator:\n    service:\n      serviceType: NodePort\n  ping:\n    http:\n      serviceType: NodePort\n    udp:\n      serviceType: NodePort\n";

/// On a cluster without a load balancer, a repository without one of the space's versions and
/// credentials denied one verb of what the chart renders (the simulator's `access.deny`: real
/// RBAC cannot run here), preflight names each: `charts` fails with the version and helm's
/// words, `loadbalancer` warns with the NodePort advice, `permissions` fails with the triple.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_chart_a_pending_load_balancer_and_a_denied_verb_are_each_named() {
    let (sim, stop) = common::start_sim(
        "upgrade_window: 300ms
load_balancer: false
access: { deny: [ { verb: patch, group: admissionregistration.k8s.io, resource: validatingwebhookconfigurations } ] }
fleets: [ { name: soak, replicas: 2 } ]",
        5,
    )
    .await;
    ready(&sim, "soak", 1).await;
    let dir = TempDir::new("chaos-preflight-gaps");
    let fake = FakeHelm::new(&dir, &sim, &[]);
    // Installed with NodePort values, so the person's own `helm --wait` finished; the
    // simulator does not render values into its Services, which stay the chart's default
    // LoadBalancer without an ingress: what preflight reads and warns about.
    let nodeport = dir.write("nodeport.yaml", NODEPORT_VALUES);
    fake.seed("1.59.0", Some(&nodeport));
    // The repository's index lacks 1.56.0 (as before `helm repo update`, or a yanked release).
    std::fs::write(
        fake.state.join("chart-versions"),
        "1.55.0\n1.57.0\n1.58.0\n1.59.0\n1.60.0\n",
    )
    .unwrap();
    let cfg = config(
        &dir,
        &sim,
        &format!(
            "{{ kind: helm, helm: {}, timeout: 30s, reuse_values: reset-then-reuse }}",
            fake.path.display()
        ),
    );
    let (code, stdout, stderr) = preflight(&cfg).await;
    assert_eq!(code, Some(1), "stdout:\n{stdout}\nstderr:\n{stderr}");
    let charts = line(&stdout, "charts");
    assert!(
        charts.starts_with("FAIL")
            && charts.contains(
                "1 of 6 versions cannot be pulled: 1.56.0: chart \"agones\" version \"1.56.0\" not found in agones repository"
            ),
        "{stdout}"
    );
    assert!(stdout.contains("hint: run `helm repo update`"), "{stdout}");
    let lb = line(&stdout, "loadbalancer");
    assert!(
        lb.starts_with("WARN")
            && lb.contains("without an ingress in `agones-system`: agones-allocator, agones-ping-http-service, agones-ping-udp-service"),
        "{stdout}"
    );
    assert!(
        stdout.contains("agones.allocator.service.serviceType: NodePort"),
        "{stdout}"
    );
    let permissions = line(&stdout, "permissions");
    assert!(
        permissions.starts_with("FAIL")
            && permissions.contains(
                "denied (verb, resource, namespace): (patch, validatingwebhookconfigurations.admissionregistration.k8s.io, cluster-wide);"
            ),
        "{stdout}"
    );
    assert!(
        stdout.contains("checks failed: charts, permissions"),
        "{stdout}"
    );
    // A WARN is no failure: the loadbalancer check is not among them.
    assert!(
        stderr.contains("preflight failed: charts, permissions"),
        "{stderr}"
    );
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_too_small_for_the_load_fails_the_capacity_check_with_its_numbers() {
    let (sim, stop) = common::start_sim(
        "fleets: [ { name: soak, replicas: 3 }, { name: fixed, replicas: 2 } ]",
        4,
    )
    .await;
    ready(&sim, "soak", 3).await;
    ready(&sim, "fixed", 2).await;
    let dir = TempDir::new("chaos-preflight-capacity");
    // 2/s over two Fleets, one canary each: 1 + ⌈1/s × (0.2 + 0.5) s × 1.5⌉ = 3 servers each.
    // `fixed` is not scaled by the Producer: its own 2 replicas are all it gets.
    let cfg = config_with(
        &dir,
        &sim,
        &format!("{{ kind: sim, url: \"{sim}\" }}"),
        "  fleets: [ { name: soak, min_replicas: 3, max_replicas: 4, scale_every_min: 1s, scale_every_max: 2s }, { name: fixed, scale_every_min: 0s, scale_every_max: 0s } ]\n  allocation_rate: 2\n  canaries: { count: 2 }\n",
    );
    let (code, stdout, stderr) = preflight(&cfg).await;
    assert_eq!(code, Some(1), "stdout:\n{stdout}\nstderr:\n{stderr}");
    let capacity = line(&stdout, "capacity");
    assert!(
        capacity.starts_with("FAIL")
            && capacity.contains("default/fixed: 2 replicas, the Producer does not scale it, and the load needs 3 (1 canaries + ⌈1/s × (0.2 s mean session + 0.5 s replace_time) × 1.5 headroom⌉ = 3): allocations will answer FleetFull"),
        "{stdout}"
    );
    // The Fleet that holds its share is not named.
    assert!(!capacity.contains("default/soak"), "{stdout}");
    assert!(stdout.contains("hint: scale the Fleet"), "{stdout}");
    assert!(stderr.contains("preflight failed: capacity"), "{stderr}");

    // Scaled to hold it, the check passes.
    let scale = reqwest::Client::new()
        .patch(format!(
            "{sim}/apis/agones.dev/v1/namespaces/default/fleets/fixed/scale"
        ))
        .header("content-type", "application/merge-patch+json")
        .body(r#"{"spec":{"replicas":3}}"#)
        .send()
        .await
        .unwrap();
    assert!(scale.status().is_success(), "{scale:?}");
    ready(&sim, "fixed", 3).await;
    let (code, stdout, stderr) = preflight(&cfg).await;
    assert_eq!(code, Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(line(&stdout, "capacity").starts_with("PASS"), "{stdout}");
    stop.cancel();
}

#[tokio::test]
async fn a_bad_configuration_is_exit_2() {
    let dir = TempDir::new("chaos-preflight-bad");
    let cfg = dir.write(
        "sidecar.yaml",
        "state_dir: /tmp/x\nwanderer: { space: /nonexistent.yaml, seed: 1, applier: { kind: sim, url: \"http://127.0.0.1:9\" } }\n",
    );
    let (code, _, stderr) = preflight(&cfg).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("/nonexistent.yaml"), "{stderr}");
}
