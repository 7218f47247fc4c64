//! `/metrics` of the real binary: Agones' names and labels, `promtool check metrics`, counts
//! that match the API, the install window and fault profiles seen from outside.
// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{SimProcess, eventually, get_json, post_json, test_config, wait_ready};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use upsoak_agones::{Fleet, GameServer, GameServerAllocation, GameServerState};
use upsoak_testkit::{promtool_check, sample as value, scrape};

#[tokio::test]
async fn metrics_pass_promtool_and_match_the_api() {
    let sim = SimProcess::start(Some(&test_config("fleets: [ { name: m1, replicas: 4 } ]")));
    let client = sim.client();
    let gss: Api<GameServer> = Api::namespaced(client.clone(), "default");
    wait_ready(&gss, 4).await;
    let gsa: Api<GameServerAllocation> = Api::namespaced(client.clone(), "default");
    gsa.create(
        &PostParams::default(),
        &GameServerAllocation::from_fleet("m1"),
    )
    .await
    .unwrap();

    // Fleet status follows on the next reconcile, as in Agones.
    let fleets: Api<Fleet> = Api::namespaced(client.clone(), "default");
    let st = eventually(10, "fleet status to count the allocation", || async {
        let st = fleets.get("m1").await.unwrap().status.unwrap();
        (st.allocated_replicas == 1).then_some(st)
    })
    .await;
    let text = scrape(&sim.url).await.unwrap();
    // Agones' gauges are named `*_count` and one histogram `*_total`, which promtool's linter
    // flags; they are Agones' real names, so these findings are expected and nothing else is.
    assert_eq!(
        promtool_check(&text),
        Err(vec![
            "agones_fleets_replicas_count non-histogram and non-summary metrics should not have \"_count\" suffix".to_owned(),
            "agones_gameserver_allocations_retry_total non-counter metrics should not have \"_total\" suffix".to_owned(),
            "agones_gameservers_count non-histogram and non-summary metrics should not have \"_count\" suffix".to_owned(),
            "agones_nodes_count non-histogram and non-summary metrics should not have \"_count\" suffix".to_owned(),
        ]),
        "\n{text}"
    );
    // Every family of Agones' `pkg/metrics` (and the allocator's and GameServerSets') that
    // one node without FleetAutoscalers, Counters or Lists gives.
    for family in [
        "# TYPE agones_gameservers_count gauge",
        "# TYPE agones_gameservers_total counter",
        "# TYPE agones_gameservers_allocations_total counter",
        "# TYPE agones_gameserver_state_duration histogram",
        "# TYPE agones_fleets_replicas_count gauge",
        "# TYPE agones_fleet_rollout_percent gauge",
        "# TYPE agones_gameserver_allocations_duration_seconds histogram",
        "# TYPE agones_gameserver_allocations_retry_total histogram",
        "# TYPE agones_gameserver_creation_duration histogram",
        "# TYPE agones_nodes_count gauge",
        "# TYPE agones_gameservers_node_count histogram",
    ] {
        assert!(text.contains(family), "{family}\n{text}");
    }
    assert_eq!(
        value(&text, "agones_nodes_count{empty=\"false\"}"),
        Some(1.0)
    );
    assert_eq!(
        value(&text, "agones_nodes_count{empty=\"true\"}"),
        Some(0.0)
    );
    assert_eq!(
        value(
            &text,
            "agones_fleet_rollout_percent{name=\"m1\",namespace=\"default\",type=\"desired_replicas\"}"
        ),
        Some(4.0)
    );
    assert_eq!(
        value(
            &text,
            "agones_gameserver_allocations_retry_total_count{fleet_name=\"\",cluster_name=\"\",is_multicluster=\"\",status=\"Success\",scheduling_strategy=\"\"}"
        ),
        Some(1.0),
        "{text}"
    );
    // Counts in /metrics equal counts in the API.
    let list = gss.list(&ListParams::default()).await.unwrap();
    for state in [GameServerState::Ready, GameServerState::Allocated] {
        let api = list
            .items
            .iter()
            .filter(|g| g.state() == Some(state))
            .count() as f64;
        let series = format!(
            "agones_gameservers_count{{type=\"{state}\",fleet_name=\"m1\",namespace=\"default\"}}"
        );
        assert_eq!(value(&text, &series), Some(api), "{series}\n{text}");
    }
    assert_eq!(
        value(
            &text,
            "agones_fleets_replicas_count{name=\"m1\",namespace=\"default\",type=\"allocated\"}"
        ),
        Some(f64::from(st.allocated_replicas))
    );
    assert_eq!(
        value(
            &text,
            "agones_gameservers_allocations_total{fleet_name=\"m1\",namespace=\"default\"}"
        ),
        Some(1.0)
    );
    assert!(text.contains("agones_gameserver_allocations_duration_seconds_bucket{fleet_name=\"m1\",cluster_name=\"none\",is_multicluster=\"false\",status=\"Allocated\",scheduling_strategy=\"Packed\",le=\"0.01\"}"), "{text}");
    assert!(
        text.contains("agones_gameserver_state_duration_bucket{type=\"Creating\""),
        "{text}"
    );
    assert!(
        text.contains("upsoak_sim_installed_info{version=\"1.60.0\",feature_gates=\""),
        "{text}"
    );
    assert!(value(&text, "process_resident_memory_bytes").unwrap() > 1e6);
    // Prometheus gets OpenMetrics when it asks.
    let om = reqwest::Client::new()
        .get(format!("{}/metrics", sim.url))
        .header("accept", "application/openmetrics-text;version=1.0.0")
        .send()
        .await
        .unwrap();
    assert!(
        om.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    assert!(om.text().await.unwrap().ends_with("# EOF\n"));
}

#[tokio::test]
async fn an_install_opens_an_upgrade_window_seen_from_outside() {
    let extra = "upgrade_window: 4s\nfleets: [ { name: u1, replicas: 2 } ]";
    let sim = SimProcess::start(Some(&test_config(extra)));
    let http = reqwest::Client::new();
    wait_ready(&sim.gameservers(), 2).await;

    // Invalid installs: 422 with every reason.
    let r = http
        .post(format!("{}/upsoak/v1/install", sim.url))
        .json(&serde_json::json!({"version": "1.59.0", "featureGates": "PortRanges=false&Bogus=true"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 422);
    let body: serde_json::Value = r.json().await.unwrap();
    let causes: Vec<String> = body["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        causes,
        vec!["featureGates.Bogus", "featureGates.PortRanges"]
    );

    let r = http
        .post(format!("{}/upsoak/v1/install", sim.url))
        .json(&serde_json::json!({"version": "1.59.0", "featureGates": {"PlayerTracking": true}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    // During the window: the Recreate Deployments unready, the allocator rolling with its 3
    // replicas ready and one surge pod, allocations (through extensions) 503, webhook-admitted
    // writes 500, reads, scales and deletes fine.
    let deps: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(sim.client(), "agones-system");
    for name in ["agones-controller", "agones-extensions"] {
        let st = deps.get(name).await.unwrap().status.unwrap();
        assert_eq!(st.ready_replicas, Some(0), "{name}");
        assert!(st.unavailable_replicas.unwrap() > 0, "{name}");
    }
    let st = deps.get("agones-allocator").await.unwrap().status.unwrap();
    assert_eq!(
        (st.replicas, st.ready_replicas, st.unavailable_replicas),
        (Some(4), Some(3), Some(1)),
        "{st:?}"
    );
    assert!(st.updated_replicas.unwrap() >= 1, "{st:?}");
    let available = st.conditions.unwrap();
    assert_eq!(available[0].status, "True", "{available:?}");
    // kube-rs retries 503 by itself, so the raw answers are checked over plain HTTP.
    let r = http
        .post(format!(
            "{}/apis/allocation.agones.dev/v1/namespaces/default/gameserverallocations",
            sim.url
        ))
        .json(&GameServerAllocation::from_fleet("u1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 503);
    let r = http
        .post(format!(
            "{}/apis/agones.dev/v1/namespaces/default/fleets",
            sim.url
        ))
        .json(&Fleet::new(
            "late",
            1,
            upsoak_sim::world::default_template(),
        ))
        .send()
        .await
        .unwrap();
    // A Fleet create needs the mutating webhook: 500 InternalError, as the apiserver answers
    // when a `failurePolicy: Fail` webhook cannot be called.
    assert_eq!(r.status().as_u16(), 500);
    let status: serde_json::Value = r.json().await.unwrap();
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["reason"], "InternalError", "{status}");
    assert_eq!(status["code"], 500, "{status}");
    let message = status["message"].as_str().unwrap();
    assert!(
        message.starts_with(
            "Internal error occurred: failed calling webhook \"mutations.agones.dev\""
        ),
        "{status}"
    );
    assert_eq!(
        status["details"]["causes"][0]["message"].as_str(),
        message.strip_prefix("Internal error occurred: "),
        "{status}"
    );
    // An update of the Fleet needs the validating webhook (kube-rs: an Api error, 500).
    let fleets: Api<Fleet> = Api::namespaced(sim.client(), "default");
    let e = fleets
        .patch(
            "u1",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"metadata": {"labels": {"a": "b"}}})),
        )
        .await
        .unwrap_err();
    match e {
        kube::Error::Api(s) => {
            assert_eq!((s.code, s.reason.as_str()), (500, "InternalError"));
            assert!(
                s.message.contains("validations.agones.dev"),
                "{}",
                s.message
            );
        }
        other => panic!("expected a 500 Status, got {other}"),
    }
    // The scale subresource and deletes are not covered by Agones' webhooks: they succeed.
    let scaled = fleets
        .patch_scale(
            "u1",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"replicas": 3}})),
        )
        .await
        .unwrap();
    assert_eq!(scaled.spec.unwrap().replicas, Some(3));
    let gameservers: Api<upsoak_agones::GameServer> = Api::namespaced(sim.client(), "default");
    let one = gameservers.list(&Default::default()).await.unwrap().items[0]
        .metadata
        .name
        .clone()
        .unwrap();
    gameservers.delete(&one, &Default::default()).await.unwrap();
    let gsa: Api<GameServerAllocation> = Api::namespaced(sim.client(), "default");
    assert!(fleets.get("u1").await.is_ok());
    let text = scrape(&sim.url).await.unwrap();
    assert_eq!(value(&text, "upsoak_sim_upgrade_in_progress"), Some(1.0));
    assert!(
        text.contains("upsoak_sim_installed_info{version=\"1.60.0\""),
        "{text}"
    );
    // A second install while one is in progress: 409.
    let r = http
        .post(format!("{}/upsoak/v1/install", sim.url))
        .json(&serde_json::json!({"version": "1.58.0"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 409);

    // After the window: the new version is live and allocation works.
    eventually(10, "the upgrade to finish", || async {
        let t = scrape(&sim.url).await.unwrap();
        (value(&t, "upsoak_sim_upgrade_in_progress") == Some(0.0)).then_some(())
    })
    .await;
    let text = scrape(&sim.url).await.unwrap();
    assert!(
        text.contains("upsoak_sim_installed_info{version=\"1.59.0\",feature_gates=\""),
        "{text}"
    );
    assert!(text.contains("PlayerTracking=true"), "{text}");
    let out = gsa
        .create(
            &PostParams::default(),
            &GameServerAllocation::from_fleet("u1"),
        )
        .await
        .unwrap();
    assert_eq!(
        out.status.unwrap().state,
        upsoak_agones::AllocationState::Allocated
    );
    let installed = get_json(&http, &format!("{}/upsoak/v1/installed", sim.url)).await;
    assert_eq!(installed["version"], "1.59.0");
    assert!(installed["upgrading"].is_null());
}

#[tokio::test]
async fn allocation_latency_is_labelled_with_the_allocated_servers_fleet() {
    let sim = SimProcess::start(Some(&test_config("fleets: [ { name: a1, replicas: 1 } ]")));
    wait_ready(&sim.gameservers(), 1).await;
    let http = reqwest::Client::new();
    let url = format!(
        "{}/apis/allocation.agones.dev/v1/namespaces/default/gameserverallocations",
        sim.url
    );
    // No selector names a Fleet: the server it gets still belongs to one.
    let any = serde_json::json!({"apiVersion": "allocation.agones.dev/v1",
        "kind": "GameServerAllocation", "spec": {}});
    let mut states = Vec::new();
    for _ in 0..2 {
        let r = post_json(&http, &url, &any).await;
        states.push(r["status"]["state"].as_str().unwrap().to_owned());
    }
    assert_eq!(states, ["Allocated", "UnAllocated"]);
    let text = scrape(&sim.url).await.unwrap();
    let count = |fleet: &str, status: &str| {
        value(
            &text,
            &format!(
                "agones_gameserver_allocations_duration_seconds_count{{fleet_name=\"{fleet}\",cluster_name=\"none\",is_multicluster=\"false\",status=\"{status}\""
            ),
        )
    };
    assert_eq!(count("a1", "Allocated"), Some(1.0), "{text}");
    assert_eq!(count("none", "Allocated"), None, "{text}");
    // Nothing was allocated the second time: `none`, as Agones labels every result but a
    // local Allocated one.
    assert_eq!(count("none", "UnAllocated"), Some(1.0), "{text}");
}
