//! The bomb bodies of the reliability audit (H4, L9) against the real simulator over HTTP: each
//! one is refused with a Kubernetes `Status` naming the limit, and right after it `/version`
//! answers within 100 ms (issue 15's done-when), so no bomb holds the world's lock or a worker.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{SimProcess, test_config};
use serde_json::{Value, json};

/// What `/version` must answer within after each bomb (issue 15, item 4).
const VERSION_WITHIN: Duration = Duration::from_millis(100);

/// One `GET /version`, no retry: its status and how long it took.
async fn version_time(http: &reqwest::Client, sim: &SimProcess) -> Duration {
    let start = Instant::now();
    let r = http
        .get(format!("{}/version", sim.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.bytes().await.unwrap();
    start.elapsed()
}

/// Sends a bomb and checks its answer's code and that its message names `names`; then times
/// `/version`.
async fn bomb(
    http: &reqwest::Client,
    sim: &SimProcess,
    what: &str,
    req: reqwest::RequestBuilder,
    code: u16,
    names: &str,
) {
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, code, "{what}: {body}");
    assert_eq!(body["kind"], "Status", "{what}: {body}");
    assert_eq!(body["code"], code, "{what}: {body}");
    let message = body.to_string();
    assert!(message.contains(names), "{what}: `{names}` not in {body}");
    let took = version_time(http, sim).await;
    assert!(
        took < VERSION_WITHIN,
        "{what}: /version took {took:?} after the bomb"
    );
}

#[tokio::test]
async fn every_audit_bomb_is_refused_and_version_answers_within_100ms() {
    let sim = SimProcess::start(Some(&test_config(
        "upgrade_window: 0ms\nfleets: [ { name: f, replicas: 1 } ]",
    )));
    let http = reqwest::Client::new();
    let fleets = format!("{}/apis/agones.dev/v1/namespaces/default/fleets", sim.url);
    let patch = |url: &str, ct: &str, body: String| {
        http.patch(url)
            .header("Content-Type", ct)
            .body(body)
            .timeout(Duration::from_secs(30))
    };
    // Baseline: the unloaded simulator answers well within the bound.
    assert!(version_time(&http, &sim).await < VERSION_WITHIN);

    // H4.1: 30 copies of the whole document into itself (2^30 times its size).
    let ops: Vec<Value> = (0..30)
        .map(|i| json!({"op": "copy", "from": "", "path": format!("/c{i}")}))
        .collect();
    let max_weight = upsoak_sim::api::MAX_PATCHED_WEIGHT.to_string();
    bomb(
        &http,
        &sim,
        "JSON-Patch copy doubling",
        patch(
            &format!("{fleets}/f"),
            "application/json-patch+json",
            json!(ops).to_string(),
        ),
        422,
        &max_weight,
    )
    .await;

    // H4.2: copy `/z` into its own deepest object, doubling the depth with each op.
    let mut ops = vec![json!({"op": "add", "path": "/z", "value": {"a": {}}})];
    let mut depth = 1;
    for _ in 0..17 {
        ops.push(
            json!({"op": "copy", "from": "/z", "path": format!("/z{}/a", "/a".repeat(depth))}),
        );
        depth = 2 * depth + 1;
    }
    bomb(
        &http,
        &sim,
        "JSON-Patch deep chain",
        patch(
            &format!("{fleets}/f"),
            "application/json-patch+json",
            json!(ops).to_string(),
        ),
        422,
        &format!(
            "more than the {} allowed",
            upsoak_sim::api::MAX_PATCHED_DEPTH
        ),
    )
    .await;

    // H4.3: a wide YAML alias bomb (K² nodes from ~5K bytes), on a Fleet that does not exist.
    let k = 20_000;
    let yaml = format!(
        "a: &a [{}]\nb: [{}]\n",
        vec!["0"; k].join(","),
        vec!["*a"; k].join(",")
    );
    bomb(
        &http,
        &sim,
        "YAML alias bomb",
        patch(
            // An apply names its field manager, as kubectl and kube-rs do.
            &format!("{fleets}/new?fieldManager=bomb"),
            "application/apply-patch+yaml",
            yaml,
        ),
        400,
        &max_weight,
    )
    .await;

    // H4.4: the replica bomb, through scale, a merge patch, create and PUT of the scale.
    let limit = upsoak_sim::world::OS_PICKED_PORTS.to_string();
    bomb(
        &http,
        &sim,
        "replica bomb (scale)",
        patch(
            &format!("{fleets}/f/scale"),
            "application/merge-patch+json",
            json!({"spec": {"replicas": i32::MAX}}).to_string(),
        ),
        422,
        &limit,
    )
    .await;
    bomb(
        &http,
        &sim,
        "replica bomb (fleet patch)",
        patch(
            &format!("{fleets}/f"),
            "application/merge-patch+json",
            json!({"spec": {"replicas": 1_000_000}}).to_string(),
        ),
        422,
        &limit,
    )
    .await;
    let mut big = serde_json::to_value(upsoak_agones::Fleet::new(
        "big",
        i32::MAX,
        upsoak_sim::world::default_template(),
    ))
    .unwrap();
    big["metadata"]["namespace"] = json!("default");
    bomb(
        &http,
        &sim,
        "replica bomb (create)",
        http.post(&fleets).json(&big),
        422,
        &limit,
    )
    .await;

    // H4.5: selector CPU, a label selector of 5,000 values (as long as a client lets a URI be)
    // and an allocation of 100,000.
    let values: Vec<String> = (0..5_000).map(|i| format!("v{i}")).collect();
    bomb(
        &http,
        &sim,
        "label selector set",
        http.get(format!(
            "{}/apis/agones.dev/v1/gameservers?labelSelector=k%20in%20({})",
            sim.url,
            values.join(",")
        )),
        400,
        &upsoak_sim::selector::MAX_SET_VALUES.to_string(),
    )
    .await;
    let values: Vec<String> = (0..100_000).map(|i| format!("v{i}")).collect();
    let gsa = json!({"apiVersion": "allocation.agones.dev/v1", "kind": "GameServerAllocation",
        "spec": {"selectors": [{"matchExpressions": [{"key": "k", "operator": "In", "values": values}]}]}});
    let alloc_url = format!(
        "{}/apis/allocation.agones.dev/v1/namespaces/default/gameserverallocations",
        sim.url
    );
    bomb(
        &http,
        &sim,
        "allocation selector set",
        http.post(&alloc_url).json(&gsa),
        422,
        &upsoak_sim::selector::MAX_SET_VALUES.to_string(),
    )
    .await;
    let gsa = json!({"apiVersion": "allocation.agones.dev/v1", "kind": "GameServerAllocation",
        "spec": {"selectors": vec![json!({}); 50_000]}});
    bomb(
        &http,
        &sim,
        "allocation of 50,000 selectors",
        http.post(&alloc_url).json(&gsa),
        422,
        "at most",
    )
    .await;

    // L9: a watch timeout past what an Instant holds is no timeout, not a panic.
    let r = http
        .get(format!(
            "{fleets}?watch=true&timeoutSeconds=18446744073709551615"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    drop(r);
    assert!(version_time(&http, &sim).await < VERSION_WITHIN);

    // H4.5: watches are bounded; the one past the limit gets 429.
    let max = upsoak_sim::api::MAX_WATCHES;
    let mut open = Vec::new();
    let refused = loop {
        let r = http
            .get(format!("{fleets}?watch=true"))
            .send()
            .await
            .unwrap();
        if r.status() != 200 {
            break r;
        }
        open.push(r);
        assert!(open.len() <= max, "more than {max} watches were opened");
    };
    assert!(open.len() >= max - 1, "only {} watches opened", open.len());
    assert_eq!(refused.status(), 429);
    let body: Value = refused.json().await.unwrap();
    assert!(body["message"].as_str().unwrap().contains(&max.to_string()));
    let took = version_time(&http, &sim).await;
    assert!(
        took < VERSION_WITHIN,
        "/version took {took:?} with {max} watches"
    );
    drop(open);

    // Nothing was applied, and ordinary patches still are (outside the lock, then written).
    let f: Value = http
        .patch(format!("{fleets}/f"))
        .header("Content-Type", "application/json-patch+json")
        .body(
            json!([{"op": "copy", "from": "/spec/replicas", "path": "/metadata/labels"}, {"op": "replace", "path": "/spec/replicas", "value": 2}, {"op": "remove", "path": "/metadata/labels"}])
                .to_string(),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(f["spec"]["replicas"], 2, "{f}");
    assert!(f.get("c0").is_none() && f.get("z").is_none(), "{f}");
    let s: Value = http
        .patch(format!("{fleets}/f/scale"))
        .header("Content-Type", "application/merge-patch+json")
        .body(json!({"spec": {"replicas": 3}}).to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(s["spec"]["replicas"], 3, "{s}");
    assert_eq!(
        http.get(format!("{fleets}/new"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}
