//! Conformance of the simulator's Kubernetes API against three real, independent clients: kube-rs
//! (Rust), an unmodified `kubectl` (Go's client-go) and Python's official `kubernetes` package
//! (PyPI, pinned in `tests/conformance/requirements.txt`; `make test` installs it into
//! `target/conformance-venv`). Each drives the real `upsoak-sim` binary over HTTP through the same
//! scenario: discovery (with the trailing-slash roots `/version/`, `/api/`, `/apis/`), create,
//! get, list with label and field selectors, watch, patch (merge, JSON, server-side apply), the
//! `scale` subresource, a 409 on an update with a stale resourceVersion, allocation and deletion;
//! kubectl also `apply`s (client-side validation reads `/openapi/v2` before 1.29), and Python lists
//! in chunks (`limit`, `continue`).
//!
//! Where the simulator answered differently from Kubernetes, the simulator was fixed (its code
//! cites the Kubernetes behaviour), not the test. Each test fails, never skips, when its client
//! is missing: `make test` installs kubectl and the Python venv.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams,
    WatchEvent, WatchParams,
};
use kube::discovery::{Discovery, Scope};
use serde_json::{Value, json};
use upsoak_testkit::{POLL, Proc, TempDir, bin, eventually};

const NS: &str = "default";
const FLEET_LABEL: &str = "agones.dev/fleet";

/// The simulator with its built-in configuration and fast lifecycle timings.
struct Sim {
    proc: Proc,
    url: String,
    dir: TempDir,
}

impl Sim {
    async fn start() -> Sim {
        let dir = TempDir::new("conformance");
        let config = dir.write(
            "sim.yaml",
            &format!(
                "{}\nlifecycle: {{ scheduled_after: 50ms, request_ready_after: 50ms, ready_after: 50ms, delete_after_shutdown: 100ms, delete_after_failure: 2s, tick: 20ms }}\ngame: {{ port_min: 0 }}\n",
                std::fs::read_to_string(repo("sim/config/default.yaml")).unwrap()
            ),
        );
        let proc = Proc::start(
            "sim",
            Command::new(bin("upsoak-sim"))
                .args(["--listen", "127.0.0.1:0", "--config"])
                .arg(&config),
            &dir,
        )
        .await;
        let url = proc.url().unwrap();
        Sim { proc, url, dir }
    }

    fn client(&self) -> kube::Client {
        // In a workspace build rustls has two crypto providers; name the process-wide one.
        let _ = rustls::crypto::ring::default_provider().install_default();
        kube::Client::try_from(kube::Config::new(self.url.parse().unwrap())).unwrap()
    }
}

fn repo(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(rel)
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// The Fleet every client creates (Agones' `examples/simple-game-server/fleet.yaml`, smaller).
fn fleet(name: &str, replicas: i64) -> Value {
    json!({"apiVersion": "agones.dev/v1", "kind": "Fleet", "metadata": {"name": name},
        "spec": {"replicas": replicas, "template": {"spec": {
            "ports": [{"name": "default", "containerPort": 7654}],
            "template": {"spec": {"containers": [{"name": "simple-game-server",
                "image": "us-docker.pkg.dev/agones-images/examples/simple-game-server:0.43"}]}}}}}})
}

fn status_of(e: kube::Error) -> (u16, String) {
    match e {
        kube::Error::Api(s) => (s.code, s.reason),
        other => panic!("expected a Kubernetes Status, got {other:?}"),
    }
}

// ----- kube-rs -----

#[tokio::test]
async fn kube_rs_drives_the_simulator_through_every_verb() {
    let sim = Sim::start().await;
    let client = sim.client();
    let name = "kube-rs";
    let sel = format!("{FLEET_LABEL}={name}");

    // Discovery: the version, the core and group roots, and resolving the Agones kinds the way
    // kube-rs clients do (`Discovery::run` walks /api and /apis).
    let v = client.apiserver_version().await.unwrap();
    assert_eq!(v.major, "1");
    let core = client.list_core_api_versions().await.unwrap();
    assert!(core.versions.contains(&"v1".to_owned()), "{core:?}");
    let discovery = Discovery::new(client.clone()).run().await.unwrap();
    let find = |group: &str, kind: &str| -> ApiResource {
        let g = discovery
            .get(group)
            .unwrap_or_else(|| panic!("group {group} not discovered"));
        let (ar, caps) = g
            .recommended_kind(kind)
            .unwrap_or_else(|| panic!("{group}/{kind} not discovered"));
        assert_eq!(caps.scope, Scope::Namespaced, "{kind}");
        ar
    };
    let fleets: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), NS, &find("agones.dev", "Fleet"));
    let gss: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), NS, &find("agones.dev", "GameServer"));
    let gsas: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        NS,
        &find("allocation.agones.dev", "GameServerAllocation"),
    );
    // The trailing-slash roots answer like the slash-less ones (the API server's go-restful
    // WebServices route `GET /` under each root).
    for root in ["/version", "/api", "/apis"] {
        let get = |p: String| {
            let c = client.clone();
            async move {
                c.request_text(http::Request::get(p).body(Vec::new()).unwrap())
                    .await
                    .unwrap()
            }
        };
        assert_eq!(
            get(root.to_owned()).await,
            get(format!("{root}/")).await,
            "{root}/"
        );
    }

    // Create, and a second create of the same name.
    let obj: DynamicObject = serde_json::from_value(fleet(name, 2)).unwrap();
    let created = fleets.create(&PostParams::default(), &obj).await.unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    assert!(created.metadata.uid.is_some());
    let again = fleets
        .create(&PostParams::default(), &obj)
        .await
        .unwrap_err();
    assert_eq!(status_of(again), (409, "AlreadyExists".to_owned()));

    // Get.
    let got = fleets.get(name).await.unwrap();
    assert_eq!(got.metadata.uid, created.metadata.uid);
    assert_eq!(status_of(fleets.get("absent").await.unwrap_err()).0, 404);

    // List with label and field selectors.
    let ready = ListParams::default()
        .labels(&sel)
        .fields("status.state=Ready");
    eventually(secs(20), POLL, || async {
        (gss.list(&ready).await.unwrap().items.len() == 2).then_some(())
    })
    .await
    .expect("2 Ready GameServers");
    let listed = gss.list(&ListParams::default().labels(&sel)).await.unwrap();
    let names: Vec<String> = listed
        .items
        .iter()
        .filter_map(|g| g.metadata.name.clone())
        .collect();
    let by_name = gss
        .list(&ListParams::default().fields(&format!("metadata.name={}", names[0])))
        .await
        .unwrap();
    assert_eq!(by_name.items.len(), 1);
    let other = ListParams::default().labels(&format!("{FLEET_LABEL}!={name}"));
    assert!(gss.list(&other).await.unwrap().items.is_empty());
    // In chunks: a page of one, its continue token, then the rest.
    let first = gss
        .list(&ListParams::default().labels(&sel).limit(1))
        .await
        .unwrap();
    assert_eq!(first.items.len(), 1);
    let token = first.metadata.continue_.clone().expect("a continue token");
    let rest = gss
        .list(
            &ListParams::default()
                .labels(&sel)
                .limit(1)
                .continue_token(&token),
        )
        .await
        .unwrap();
    assert_eq!(rest.items.len(), 1);
    assert!(rest.metadata.continue_.is_none(), "{:?}", rest.metadata);
    let mut paged: Vec<_> = first
        .items
        .iter()
        .chain(&rest.items)
        .filter_map(|g| g.metadata.name.clone())
        .collect();
    paged.sort();
    let mut all = names.clone();
    all.sort();
    assert_eq!(paged, all);

    // Watch from the list's resourceVersion: a scale-up (through the scale subresource) shows
    // as ADDED events.
    let rv = listed.metadata.resource_version.unwrap();
    let mut stream = gss
        .watch(&WatchParams::default().labels(&sel).timeout(20), &rv)
        .await
        .unwrap()
        .boxed();
    let scale = fleets
        .patch_scale(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 3}})),
        )
        .await
        .unwrap();
    assert_eq!(scale.spec.unwrap().replicas, Some(3));
    let added = tokio::time::timeout(secs(20), async {
        while let Some(ev) = stream.try_next().await.unwrap() {
            if let WatchEvent::Added(g) = ev
                && !names.contains(g.metadata.name.as_ref().unwrap())
            {
                return g;
            }
        }
        panic!("the watch ended without the new GameServer");
    })
    .await
    .expect("an ADDED event within 20 s");
    assert_eq!(added.metadata.labels.unwrap()[FLEET_LABEL], name);

    // Patches: merge, JSON, server-side apply.
    let p = fleets
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"c": "merge"}}})),
        )
        .await
        .unwrap();
    assert_eq!(p.metadata.labels.unwrap()["c"], "merge");
    let jp: json_patch::Patch = serde_json::from_value(
        json!([{"op": "replace", "path": "/metadata/labels/c", "value": "json"}]),
    )
    .unwrap();
    let p = fleets
        .patch(name, &PatchParams::default(), &Patch::Json::<()>(jp))
        .await
        .unwrap();
    assert_eq!(p.metadata.labels.unwrap()["c"], "json");
    let applied = json!({"apiVersion": "agones.dev/v1", "kind": "Fleet",
        "metadata": {"name": name, "labels": {"applied": "kube-rs"}}});
    let p = fleets
        .patch(
            name,
            &PatchParams::apply("conformance-kube-rs"),
            &Patch::Apply(applied),
        )
        .await
        .unwrap();
    assert_eq!(p.metadata.labels.unwrap()["applied"], "kube-rs");

    // The scale subresource: get and replace.
    let mut scale = fleets.get_scale(name).await.unwrap();
    assert_eq!(scale.spec.as_ref().unwrap().replicas, Some(3));
    // Agones never sets the CRD's `labelSelectorPath` (`.status.labelSelector`): no selector.
    assert_eq!(scale.status.as_ref().unwrap().selector, None, "{scale:?}");
    scale.spec.as_mut().unwrap().replicas = Some(4);
    let replaced = fleets
        .replace_scale(name, &PostParams::default(), &scale)
        .await
        .unwrap();
    assert_eq!(replaced.spec.unwrap().replicas, Some(4));
    assert_eq!(fleets.get(name).await.unwrap().data["spec"]["replicas"], 4);

    // Optimistic concurrency: replace from a stale resourceVersion is a 409 Conflict. The
    // Fleet's controller keeps updating its status while the scale-up runs (each update a new
    // resourceVersion, as on a cluster), so the first replace is retried from a fresh read as
    // any client does; the stale copy is the one read before the replace that went through.
    let (stale, updated) = {
        let mut tries = 0;
        loop {
            let read = fleets.get(name).await.unwrap();
            let mut fresh = read.clone();
            fresh
                .metadata
                .labels
                .get_or_insert_default()
                .insert("c".into(), "update".into());
            match fleets.replace(name, &PostParams::default(), &fresh).await {
                Ok(updated) => break (read, updated),
                Err(kube::Error::Api(s)) if tries < 20 && s.code == 409 => tries += 1,
                Err(e) => panic!("replace after {tries} conflicts: {e}"),
            }
        }
    };
    assert_ne!(
        updated.metadata.resource_version,
        stale.metadata.resource_version
    );
    let err = fleets
        .replace(name, &PostParams::default(), &stale)
        .await
        .unwrap_err();
    assert_eq!(status_of(err), (409, "Conflict".to_owned()));

    // Allocation.
    let gsa: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "allocation.agones.dev/v1", "kind": "GameServerAllocation",
        "spec": {"selectors": [{"matchLabels": {FLEET_LABEL: name}}]}}))
    .unwrap();
    let out = gsas.create(&PostParams::default(), &gsa).await.unwrap();
    assert_eq!(out.data["status"]["state"], "Allocated", "{:?}", out.data);
    let gs_name = out.data["status"]["gameServerName"].as_str().unwrap();
    assert_eq!(
        gss.get(gs_name).await.unwrap().data["status"]["state"],
        "Allocated"
    );

    // Deletion: the Fleet goes, and its GameServers (Allocated too) with it.
    fleets.delete(name, &DeleteParams::default()).await.unwrap();
    assert_eq!(status_of(fleets.get(name).await.unwrap_err()).0, 404);
    eventually(secs(20), POLL, || async {
        gss.list(&ListParams::default().labels(&sel))
            .await
            .unwrap()
            .items
            .is_empty()
            .then_some(())
    })
    .await
    .expect("the Fleet's GameServers deleted");
    drop(sim.proc);
}

// ----- kubectl -----

/// Runs kubectl against the simulator; (success, stdout, stderr).
fn kubectl(url: &str, args: &[&str]) -> (bool, String, String) {
    upsoak_testkit::kubectl(url, NS, args)
}

fn kubectl_ok(url: &str, args: &[&str]) -> String {
    let (ok, out, err) = kubectl(url, args);
    assert!(ok, "kubectl {args:?} failed:\n{err}\n{out}");
    out
}

fn kubectl_err(url: &str, args: &[&str], want: &str) {
    let (ok, out, err) = kubectl(url, args);
    assert!(
        !ok && err.contains(want),
        "kubectl {args:?}: expected an error with `{want}`, got:\n{err}\n{out}"
    );
}

/// Polls kubectl until its output satisfies `want`.
async fn kubectl_until(url: &str, args: &[&str], want: impl Fn(&str) -> bool) -> String {
    eventually(secs(20), POLL, || async {
        let (ok, out, _) = kubectl(url, args);
        (ok && want(&out)).then_some(out)
    })
    .await
    .unwrap_or_else(|t| panic!("kubectl {args:?}: {t}"))
}

#[tokio::test]
async fn kubectl_drives_the_simulator_through_every_verb() {
    let sim = Sim::start().await;
    let url = sim.url.as_str();
    let name = "kubectl";
    let sel = format!("{FLEET_LABEL}={name}");

    // Discovery.
    let v = kubectl_ok(url, &["version", "-o", "json"]);
    let v: Value = serde_json::from_str(&v).unwrap();
    assert_eq!(v["serverVersion"]["major"], "1", "{v}");
    let groups = kubectl_ok(url, &["api-versions"]);
    for g in ["agones.dev/v1", "allocation.agones.dev/v1", "v1"] {
        assert!(groups.lines().any(|l| l == g), "{g} in:\n{groups}");
    }
    let resources = kubectl_ok(
        url,
        &["api-resources", "--api-group=agones.dev", "-o", "name"],
    );
    assert!(resources.contains("fleets.agones.dev"), "{resources}");

    // Create from a file, and again.
    let file = sim.dir.write("fleet.json", &fleet(name, 2).to_string());
    let file = file.to_str().unwrap();
    kubectl_ok(url, &["create", "-f", file]);
    kubectl_err(url, &["create", "-f", file], "AlreadyExists");

    // `kubectl apply` with its default client-side validation (kubectl before 1.29 reads
    // `/openapi/v2` for it): a new Fleet is created, then configured by a merge patch.
    let applied = sim
        .dir
        .write("applied.json", &fleet("kubectl-applied", 1).to_string());
    let applied = applied.to_str().unwrap();
    let out = kubectl_ok(url, &["apply", "-f", applied]);
    assert!(out.contains("kubectl-applied created"), "{out}");
    let applied = sim
        .dir
        .write("applied.json", &fleet("kubectl-applied", 0).to_string());
    let out = kubectl_ok(url, &["apply", "-f", applied.to_str().unwrap()]);
    assert!(out.contains("kubectl-applied configured"), "{out}");

    // Get and list with selectors (kubectl's Table answers).
    let uid = kubectl_ok(
        url,
        &["get", "fleet", name, "-o", "jsonpath={.metadata.uid}"],
    );
    assert!(!uid.is_empty());
    kubectl_err(url, &["get", "fleet", "absent"], "NotFound");
    let ready = kubectl_until(
        url,
        &[
            "get",
            "gs",
            "-l",
            &sel,
            "--field-selector",
            "status.state=Ready",
            "-o",
            "name",
        ],
        |o| o.lines().count() == 2,
    )
    .await;
    let first = ready
        .lines()
        .next()
        .unwrap()
        .trim_start_matches("gameserver.agones.dev/");
    let by_name = kubectl_ok(
        url,
        &[
            "get",
            "gs",
            "--field-selector",
            &format!("metadata.name={first}"),
            "-o",
            "name",
        ],
    );
    assert_eq!(by_name.lines().count(), 1, "{by_name}");
    let table = kubectl_ok(
        url,
        &["get", "gs", "-l", &format!("{FLEET_LABEL} in ({name})")],
    );
    assert!(
        table.starts_with("NAME") && table.contains("Ready"),
        "{table}"
    );

    // Watch: `kubectl get -w` prints the server a scale-up adds.
    let mut watch = Command::new("kubectl")
        .arg(format!("--server={url}"))
        .args([
            "--namespace",
            NS,
            "get",
            "gs",
            "-l",
            &sel,
            "-w",
            "-o",
            "name",
        ])
        .env("KUBECONFIG", "/dev/null")
        .stdout(std::fs::File::create(sim.dir.join("watch.out")).unwrap())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let watched = || std::fs::read_to_string(sim.dir.join("watch.out")).unwrap_or_default();
    eventually(secs(20), POLL, || async {
        (watched().lines().count() >= 2).then_some(())
    })
    .await
    .expect("kubectl get -w lists the 2 servers");
    kubectl_ok(url, &["scale", "fleet", name, "--replicas=3"]);
    let grew = eventually(secs(20), POLL, || async {
        let out = watched();
        let distinct: std::collections::BTreeSet<&str> = out.lines().collect();
        (distinct.len() >= 3).then_some(out)
    })
    .await;
    let _ = watch.kill();
    let _ = watch.wait();
    grew.expect("kubectl get -w shows the new server");

    // Patches: merge, JSON, server-side apply.
    kubectl_ok(
        url,
        &[
            "patch",
            "fleet",
            name,
            "--type",
            "merge",
            "-p",
            r#"{"metadata":{"labels":{"c":"merge"}}}"#,
        ],
    );
    kubectl_ok(
        url,
        &[
            "patch",
            "fleet",
            name,
            "--type",
            "json",
            "-p",
            r#"[{"op":"replace","path":"/metadata/labels/c","value":"json"}]"#,
        ],
    );
    let apply = sim.dir.write(
        "apply.json",
        &json!({"apiVersion": "agones.dev/v1", "kind": "Fleet",
            "metadata": {"name": name, "labels": {"applied": "kubectl"}}})
        .to_string(),
    );
    kubectl_ok(
        url,
        &["apply", "--server-side", "-f", apply.to_str().unwrap()],
    );
    let labels = kubectl_ok(
        url,
        &["get", "fleet", name, "-o", "jsonpath={.metadata.labels}"],
    );
    let labels: Value = serde_json::from_str(&labels).unwrap();
    assert_eq!(labels, json!({"c": "json", "applied": "kubectl"}));

    // The scale subresource (kubectl scale PATCHes …/scale; with a resourceVersion it is a
    // precondition).
    kubectl_ok(url, &["scale", "fleet", name, "--replicas=4"]);
    let replicas = kubectl_ok(
        url,
        &["get", "fleet", name, "-o", "jsonpath={.spec.replicas}"],
    );
    assert_eq!(replicas, "4");
    kubectl_until(
        url,
        &[
            "get",
            "gs",
            "-l",
            &sel,
            "--field-selector",
            "status.state=Ready",
            "-o",
            "name",
        ],
        |o| o.lines().count() == 4,
    )
    .await;

    // Optimistic concurrency: `kubectl replace` of a stale copy is a 409 Conflict.
    let stale = kubectl_ok(url, &["get", "fleet", name, "-o", "json"]);
    let stale = sim.dir.write("stale.json", &stale);
    kubectl_ok(url, &["label", "fleet", name, "c=update", "--overwrite"]);
    kubectl_err(
        url,
        &["replace", "-f", stale.to_str().unwrap()],
        "the object has been modified",
    );

    // Allocation.
    let gsa = sim.dir.write(
        "gsa.json",
        &json!({"apiVersion": "allocation.agones.dev/v1", "kind": "GameServerAllocation",
            "spec": {"selectors": [{"matchLabels": {FLEET_LABEL: name}}]}})
        .to_string(),
    );
    let out = kubectl_ok(url, &["create", "-f", gsa.to_str().unwrap(), "-o", "json"]);
    let out: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(out["status"]["state"], "Allocated", "{out}");
    let gs = out["status"]["gameServerName"].as_str().unwrap();
    let state = kubectl_ok(url, &["get", "gs", gs, "-o", "jsonpath={.status.state}"]);
    assert_eq!(state, "Allocated");

    // Deletion.
    kubectl_ok(url, &["delete", "fleet", name]);
    kubectl_err(url, &["get", "fleet", name], "NotFound");
    kubectl_until(url, &["get", "gs", "-l", &sel, "-o", "name"], str::is_empty).await;
}

// ----- Python's `kubernetes` client -----

/// The venv `make conformance-venv` makes (a dependency of `make test`).
fn python() -> PathBuf {
    let p = repo("target/conformance-venv/bin/python");
    assert!(
        p.exists(),
        "{} is missing: run `make conformance-venv` (make test does)",
        p.display()
    );
    p
}

#[tokio::test]
async fn python_kubernetes_client_drives_the_simulator_through_every_verb() {
    let sim = Sim::start().await;
    let script = repo("tests/conformance/python_client.py");
    let out = tokio::time::timeout(
        secs(120),
        tokio::process::Command::new(python())
            .arg(&script)
            .args([sim.url.as_str(), NS, "python"])
            .output(),
    )
    .await
    .expect("the Python client finishes within 120 s")
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "python_client.py failed:\n{stdout}\n{stderr}\n{}",
        sim.proc.logs()
    );
    // Every step ran: a script that stopped early without an error would not print them all.
    let steps: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("ok: "))
        .collect();
    assert_eq!(
        steps,
        [
            "discovery",
            "create",
            "get",
            "list with selectors",
            "watch",
            "patch",
            "scale",
            "list in chunks",
            "stale update",
            "allocation",
            "delete"
        ],
        "{stdout}\n{stderr}"
    );
}
