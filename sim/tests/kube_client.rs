//! kube-rs against the real `upsoak-sim` binary over HTTP: list, watch, patch, scale,
//! allocate, optimistic concurrency, errors as `Status`.
// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{SimProcess, eventually, test_config};
use futures::{StreamExt, TryStreamExt};
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use serde_json::json;
use upsoak_agones::{
    AllocationState, FLEET_LABEL, Fleet, GameServer, GameServerAllocation, GameServerState,
};

fn fleet(name: &str, replicas: i32) -> Fleet {
    Fleet::new(name, replicas, upsoak_sim::world::default_template())
}

async fn ready_count(api: &Api<GameServer>, fleet: &str) -> usize {
    api.list(&ListParams::default().labels(&format!("{FLEET_LABEL}={fleet}")))
        .await
        .unwrap()
        .items
        .iter()
        .filter(|g| g.state() == Some(GameServerState::Ready))
        .count()
}

#[tokio::test]
async fn create_list_scale_and_allocate_through_kube_rs() {
    let sim = SimProcess::start(Some(&test_config("")));
    let client = sim.client();
    let fleets: Api<Fleet> = Api::namespaced(client.clone(), "default");
    let gss: Api<GameServer> = Api::namespaced(client.clone(), "default");

    let created = fleets
        .create(&PostParams::default(), &fleet("f1", 3))
        .await
        .unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    assert!(created.metadata.uid.is_some());

    eventually(10, "3 Ready GameServers", || async {
        (ready_count(&gss, "f1").await == 3).then_some(())
    })
    .await;
    // The Fleet's status follows its GameServers on the controller's next pass, as on Agones
    // (`pkg/gameserversets/controller.go` `syncGameServerSetStatus`, then
    // `pkg/fleets/controller.go` `updateFleetStatus`), so it is waited for too.
    eventually(10, "the Fleet's status to count 3 Ready", || async {
        let st = fleets.get("f1").await.unwrap().status.unwrap();
        ((st.replicas, st.ready_replicas) == (3, 3)).then_some(())
    })
    .await;

    // Each Ready GameServer has a UDP port and an address.
    let list = gss.list(&ListParams::default()).await.unwrap();
    for g in &list.items {
        let st = g.status.as_ref().unwrap();
        assert_eq!(st.address, "127.0.0.1");
        assert!(st.ports[0].port > 0, "{:?}", st.ports);
    }

    // Scale subresource.
    let scale = fleets.get_scale("f1").await.unwrap();
    assert_eq!(scale.spec.unwrap().replicas, Some(3));
    fleets
        .patch_scale(
            "f1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 5}})),
        )
        .await
        .unwrap();
    eventually(10, "5 Ready", || async {
        (ready_count(&gss, "f1").await == 5).then_some(())
    })
    .await;

    // Allocation.
    let gsa: Api<GameServerAllocation> = Api::namespaced(client.clone(), "default");
    let out = gsa
        .create(
            &PostParams::default(),
            &GameServerAllocation::from_fleet("f1"),
        )
        .await
        .unwrap();
    let status = out.status.unwrap();
    assert_eq!(status.state, AllocationState::Allocated);
    let gs = gss.get(&status.game_server_name).await.unwrap();
    assert_eq!(gs.state(), Some(GameServerState::Allocated));
    assert_eq!(status.ports, gs.status.unwrap().ports.to_vec());

    // Label selectors and field selectors.
    let allocated = gss
        .list(&ListParams::default().fields("status.state=Allocated"))
        .await
        .unwrap();
    assert_eq!(allocated.items.len(), 1);
    let none = gss
        .list(&ListParams::default().labels(&format!("{FLEET_LABEL}=other")))
        .await
        .unwrap();
    assert!(none.items.is_empty());

    // Scale to zero: the Allocated server stays.
    fleets
        .patch(
            "f1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 0}})),
        )
        .await
        .unwrap();
    eventually(10, "only the allocated server left", || async {
        let l = gss.list(&ListParams::default()).await.unwrap();
        (l.items.len() == 1).then_some(l)
    })
    .await;
    assert_eq!(
        gss.get(&status.game_server_name).await.unwrap().state(),
        Some(GameServerState::Allocated)
    );

    // Nothing Ready: UnAllocated.
    let out = gsa
        .create(
            &PostParams::default(),
            &GameServerAllocation::from_fleet("f1"),
        )
        .await
        .unwrap();
    assert_eq!(out.status.unwrap().state, AllocationState::UnAllocated);
}

#[tokio::test]
async fn stale_update_is_a_409_conflict_and_json_patch_works() {
    let sim = SimProcess::start(Some(&test_config("")));
    let fleets: Api<Fleet> = Api::namespaced(sim.client(), "default");
    fleets
        .create(&PostParams::default(), &fleet("c1", 1))
        .await
        .unwrap();
    // The Fleet controller updates the status (and so the resourceVersion) until its server is
    // Ready; replace from a version it no longer changes.
    let v1 = eventually(10, "the Fleet's status to settle", || async {
        let f = fleets.get("c1").await.unwrap();
        (f.status.as_ref().is_some_and(|s| s.ready_replicas == 1)).then_some(f)
    })
    .await;
    let mut a = v1.clone();
    a.spec.replicas = 2;
    let v2 = fleets
        .replace("c1", &PostParams::default(), &a)
        .await
        .unwrap();
    assert_eq!(v2.metadata.generation, Some(2));
    // Replacing from the old version must fail.
    let mut stale = v1.clone();
    stale.spec.replicas = 4;
    let err = fleets
        .replace("c1", &PostParams::default(), &stale)
        .await
        .unwrap_err();
    match err {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 409);
            assert_eq!(s.reason, "Conflict");
        }
        other => panic!("expected a 409, got {other:?}"),
    }
    // A JSON patch with a stale resourceVersion test fails too; a correct one applies.
    let p: json_patch::Patch = serde_json::from_value(json!([
        {"op": "replace", "path": "/spec/replicas", "value": 3}
    ]))
    .unwrap();
    let v3 = fleets
        .patch("c1", &PatchParams::default(), &Patch::Json::<()>(p))
        .await
        .unwrap();
    assert_eq!(v3.spec.replicas, 3);
    let stale_merge = json!({"metadata": {"resourceVersion": v1.metadata.resource_version}, "spec": {"replicas": 9}});
    let err = fleets
        .patch("c1", &PatchParams::default(), &Patch::Merge(stale_merge))
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 409),
        "{err:?}"
    );
}

#[tokio::test]
async fn errors_are_kubernetes_status_objects() {
    let sim = SimProcess::start(Some(&test_config("")));
    let fleets: Api<Fleet> = Api::namespaced(sim.client(), "default");
    let err = fleets.get("missing").await.unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 404 && s.reason == "NotFound"),
        "{err:?}"
    );
    fleets
        .create(&PostParams::default(), &fleet("dup", 0))
        .await
        .unwrap();
    let err = fleets
        .create(&PostParams::default(), &fleet("dup", 0))
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 409 && s.reason == "AlreadyExists"),
        "{err:?}"
    );
    let mut bad = fleet("bad", -1);
    bad.spec.scheduling = Some("Sideways".into());
    let err = fleets
        .create(&PostParams::default(), &bad)
        .await
        .unwrap_err();
    match err {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 422);
            assert!(s.message.contains("spec.replicas"), "{}", s.message);
            assert!(s.message.contains("spec.scheduling"), "{}", s.message);
        }
        other => panic!("expected 422, got {other:?}"),
    }
    // Raw HTTP: malformed JSON is a 400 Status, a wrong type a 422 naming the field.
    let http = reqwest::Client::new();
    let url = format!("{}/apis/agones.dev/v1/namespaces/default/fleets", sim.url);
    let r = http
        .post(&url)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["kind"], "Status");
    assert_eq!(body["reason"], "BadRequest");
    let r = http
        .post(&url)
        .header("content-type", "application/json")
        .body(r#"{"metadata":{"name":"x"},"spec":{"replicas":"many","template":{"spec":{}}}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 422);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        body["details"]["causes"][0]["field"], "spec.replicas",
        "{body}"
    );
    // Strategic merge patch is not supported for custom resources: 415.
    let r = http
        .patch(format!("{url}/dup"))
        .header("content-type", "application/strategic-merge-patch+json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 415);
    fleets
        .delete("dup", &DeleteParams::default())
        .await
        .unwrap();
    assert!(fleets.get("dup").await.is_err());
}

#[tokio::test]
async fn watch_streams_changes_and_resumes_from_a_resource_version() {
    let sim = SimProcess::start(Some(&test_config("")));
    let fleets: Api<Fleet> = Api::namespaced(sim.client(), "default");
    let list = fleets.list(&ListParams::default()).await.unwrap();
    let rv = list.metadata.resource_version.unwrap();
    let mut stream = fleets
        .watch(&WatchParams::default().timeout(20), &rv)
        .await
        .unwrap()
        .boxed();
    fleets
        .create(&PostParams::default(), &fleet("w1", 2))
        .await
        .unwrap();
    let first = tokio::time::timeout(Duration::from_secs(10), stream.try_next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        matches!(first, WatchEvent::Added(ref f) if f.metadata.name.as_deref() == Some("w1")),
        "{first:?}"
    );
    // Status updates follow as the Fleet's servers become Ready.
    let ready = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(ev) = stream.try_next().await.unwrap() {
            if let WatchEvent::Modified(f) = ev
                && f.status.as_ref().is_some_and(|s| s.ready_replicas == 2)
            {
                return f;
            }
        }
        panic!("watch ended early");
    })
    .await
    .unwrap();
    // A watch from the old resourceVersion replays the same history.
    let mut replay = fleets
        .watch(&WatchParams::default().timeout(5), &rv)
        .await
        .unwrap()
        .boxed();
    let again = replay.try_next().await.unwrap().unwrap();
    assert!(matches!(again, WatchEvent::Added(_)), "{again:?}");
    assert!(
        ready
            .metadata
            .resource_version
            .unwrap()
            .parse::<u64>()
            .unwrap()
            > rv.parse::<u64>().unwrap()
    );

    // kube-runtime's watcher (list then watch) sees the scale-up.
    let gss: Api<GameServer> = Api::namespaced(sim.client(), "default");
    let mut w = kube::runtime::watcher(gss, kube::runtime::watcher::Config::default()).boxed();
    let seen = tokio::time::timeout(Duration::from_secs(10), async {
        let mut n = 0;
        while let Some(ev) = w.try_next().await.unwrap() {
            if let kube::runtime::watcher::Event::InitApply(_) = ev {
                n += 1;
            }
            if let kube::runtime::watcher::Event::InitDone = ev {
                return n;
            }
        }
        n
    })
    .await
    .unwrap();
    assert_eq!(seen, 2);
}

#[tokio::test]
async fn deployments_and_discovery_are_served() {
    let sim = SimProcess::start(Some(&test_config("upgrade_window: 300ms")));
    let client = sim.client();
    let deps: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(client.clone(), "agones-system");
    // The chart's three Deployments with its default replicas and images.
    for (name, replicas, strategy) in [
        ("agones-controller", 2, "Recreate"),
        ("agones-extensions", 2, "Recreate"),
        ("agones-allocator", 3, "RollingUpdate"),
    ] {
        let d = deps.get(name).await.unwrap();
        let spec = d.spec.unwrap();
        assert_eq!(spec.replicas, Some(replicas), "{name}");
        assert_eq!(
            spec.strategy.unwrap().type_.as_deref(),
            Some(strategy),
            "{name}"
        );
        let image = spec.template.spec.unwrap().containers[0]
            .image
            .clone()
            .unwrap();
        assert_eq!(
            image,
            format!("us-docker.pkg.dev/agones-images/release/{name}:1.60.0")
        );
        let st = d.status.unwrap();
        assert_eq!(
            (st.ready_replicas, st.unavailable_replicas),
            (Some(replicas), Some(0)),
            "{name}"
        );
    }
    assert_eq!(deps.list(&Default::default()).await.unwrap().items.len(), 3);
    // A release installed with `agones.allocator.replicas: 1` runs one allocator pod.
    let r = reqwest::Client::new()
        .post(format!("{}/upsoak/v1/install", sim.url))
        .json(&serde_json::json!({"version": "1.59.0", "tunables": {"allocatorReplicas": 1}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    eventually(10, "one allocator replica, ready", || async {
        let d = deps.get("agones-allocator").await.unwrap();
        let (spec, st) = (d.spec.unwrap(), d.status.unwrap());
        (spec.replicas == Some(1) && st.ready_replicas == Some(1) && st.replicas == Some(1))
            .then_some(())
    })
    .await;
    let v = client.apiserver_version().await.unwrap();
    assert_eq!(v.major, "1");
    let discovery = kube::Discovery::new(client).run().await.unwrap();
    let groups: Vec<String> = discovery.groups().map(|g| g.name().to_owned()).collect();
    for want in ["agones.dev", "allocation.agones.dev", "apps"] {
        assert!(groups.iter().any(|g| g == want), "{groups:?}");
    }
}

#[tokio::test]
async fn discovery_roots_answer_with_a_trailing_slash_as_without() {
    let sim = SimProcess::start(Some(&test_config("")));
    let http = reqwest::Client::new();
    for path in ["/version", "/api", "/apis"] {
        let plain = http.get(format!("{}{path}", sim.url)).send().await.unwrap();
        let slashed = http
            .get(format!("{}{path}/", sim.url))
            .send()
            .await
            .unwrap();
        assert_eq!(plain.status(), 200, "{path}");
        assert_eq!(slashed.status(), 200, "{path}/");
        assert_eq!(
            plain.text().await.unwrap(),
            slashed.text().await.unwrap(),
            "{path}"
        );
    }
}

#[tokio::test]
async fn a_node_name_watch_selects_what_the_list_selects() {
    let sim = SimProcess::start(Some(&test_config("")));
    let gss = sim.gameservers();
    let fleets: Api<Fleet> = Api::namespaced(sim.client(), "default");
    let on_node = "status.nodeName=upsoak-sim-node";
    let rv = gss
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut stream = gss
        .watch(&WatchParams::default().fields(on_node).timeout(20), &rv)
        .await
        .unwrap()
        .boxed();
    fleets
        .create(&PostParams::default(), &fleet("n1", 1))
        .await
        .unwrap();
    // A Creating server has no node yet: the list leaves it out, and so must the watch. The
    // first event is the server once it is scheduled on the node.
    let first = tokio::time::timeout(Duration::from_secs(10), stream.try_next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let gs = match first {
        WatchEvent::Added(g) | WatchEvent::Modified(g) => g,
        other => panic!("{other:?}"),
    };
    let st = gs.status.unwrap();
    assert_eq!(st.node_name, "upsoak-sim-node");
    assert_ne!(st.state, GameServerState::Creating);
    let listed = gss
        .list(&ListParams::default().fields(on_node))
        .await
        .unwrap();
    assert!(
        listed
            .items
            .iter()
            .all(|g| g.state() != Some(GameServerState::Creating)),
        "{:?}",
        listed.items
    );
}

/// The chart's LoadBalancer Services through kube-rs: ingress on a cluster with a load
/// balancer, none without one (what helm `--wait` and preflight's `loadbalancer` read).
#[tokio::test]
async fn services_show_load_balancer_ingress_only_where_the_cluster_has_one() {
    use k8s_openapi::api::core::v1::Service;
    for (load_balancer, ingress) in [(true, 1), (false, 0)] {
        let sim = SimProcess::start(Some(&test_config(&format!(
            "load_balancer: {load_balancer}"
        ))));
        let services: Api<Service> = Api::namespaced(sim.client(), "agones-system");
        let list = services.list(&ListParams::default()).await.unwrap();
        let names: Vec<_> = list
            .items
            .iter()
            .filter_map(|s| s.metadata.name.clone())
            .collect();
        assert_eq!(
            names,
            [
                "agones-allocator",
                "agones-ping-http-service",
                "agones-ping-udp-service"
            ]
        );
        for s in list.items {
            assert_eq!(s.spec.unwrap().type_.as_deref(), Some("LoadBalancer"));
            let seen = s
                .status
                .and_then(|st| st.load_balancer)
                .and_then(|lb| lb.ingress)
                .map_or(0, |i| i.len());
            assert_eq!(seen, ingress, "load_balancer: {load_balancer}");
        }
        let missing = services.get("agones-nothing").await.unwrap_err();
        assert!(matches!(missing, kube::Error::Api(e) if e.code == 404));
    }
}
