//! Bad input never panics the server and always gets a Kubernetes `Status` with a 4xx code:
//! thousands of generated bodies against every endpoint that takes one.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{SimProcess, test_config};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};

/// A valid body to mutate for each endpoint.
fn seeds() -> Vec<Value> {
    vec![
        serde_json::to_value(upsoak_agones::Fleet::new(
            "x",
            1,
            upsoak_sim::world::default_template(),
        ))
        .unwrap(),
        json!({"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "f"}, "spec": {"replicas": 2}}),
        serde_json::to_value(upsoak_agones::GameServerAllocation::from_fleet("f")).unwrap(),
        json!({"version": "1.59.0", "featureGates": "PlayerTracking=true", "tunables": {"logLevel": "debug"}}),
        json!([{"op": "replace", "path": "/spec/replicas", "value": 3}]),
    ]
}

/// Replaces a random node of `v` with something of another type or shape.
fn mutate(v: &mut Value, rng: &mut StdRng) {
    let replacement = match rng.random_range(0..10) {
        0 => Value::Null,
        1 => json!(-1),
        2 => json!(i64::MAX),
        3 => json!(1.5e300),
        4 => json!("\u{0}\u{202e}ünïcödé"),
        5 => json!([[[[[]]]]]),
        6 => json!({"unknown": {"deeper": true}}),
        7 => json!(true),
        8 => json!("A=true&&=&B"),
        _ => json!(""),
    };
    descend(v, rng, replacement);
}

fn descend(v: &mut Value, rng: &mut StdRng, replacement: Value) {
    match v {
        Value::Object(m) if !m.is_empty() && rng.random_bool(0.7) => {
            let i = rng.random_range(0..m.len());
            let k = m.keys().nth(i).cloned().unwrap();
            descend(m.get_mut(&k).unwrap(), rng, replacement);
        }
        Value::Array(a) if !a.is_empty() && rng.random_bool(0.7) => {
            let i = rng.random_range(0..a.len());
            descend(&mut a[i], rng, replacement);
        }
        _ => *v = replacement,
    }
}

fn body(rng: &mut StdRng) -> Vec<u8> {
    match rng.random_range(0..6) {
        0 => (0..rng.random_range(0..200))
            .map(|_| rng.random())
            .collect(),
        1 => {
            // Truncated valid JSON.
            let s = seeds()[rng.random_range(0..5)].to_string();
            s.as_bytes()[..rng.random_range(0..s.len())].to_vec()
        }
        2 => format!("{}1{}", "[".repeat(5000), "]".repeat(5000)).into_bytes(),
        _ => {
            let mut v = seeds()[rng.random_range(0..5)].clone();
            for _ in 0..rng.random_range(1..4) {
                mutate(&mut v, rng);
            }
            v.to_string().into_bytes()
        }
    }
}

#[tokio::test]
async fn generated_bad_bodies_get_4xx_status_objects_and_never_kill_the_server() {
    let sim = SimProcess::start(Some(&test_config(
        "upgrade_window: 0ms\nfleets: [ { name: f, replicas: 2 } ]",
    )));
    let http = reqwest::Client::new();
    let base = format!("{}/apis/agones.dev/v1/namespaces/default", sim.url);
    let endpoints: Vec<(reqwest::Method, String, &str)> = vec![
        (
            reqwest::Method::POST,
            format!("{base}/fleets"),
            "application/json",
        ),
        (
            reqwest::Method::PUT,
            format!("{base}/fleets/f"),
            "application/json",
        ),
        (
            reqwest::Method::PATCH,
            format!("{base}/fleets/f"),
            "application/merge-patch+json",
        ),
        (
            reqwest::Method::PATCH,
            format!("{base}/fleets/f"),
            "application/json-patch+json",
        ),
        (
            reqwest::Method::PATCH,
            format!("{base}/fleets/f"),
            "application/apply-patch+yaml",
        ),
        (
            reqwest::Method::PUT,
            format!("{base}/fleets/f/scale"),
            "application/json",
        ),
        (
            reqwest::Method::PATCH,
            format!("{base}/fleets/f/scale"),
            "application/merge-patch+json",
        ),
        (
            reqwest::Method::POST,
            format!(
                "{}/apis/allocation.agones.dev/v1/namespaces/default/gameserverallocations",
                sim.url
            ),
            "application/json",
        ),
        (
            reqwest::Method::POST,
            format!("{}/upsoak/v1/install", sim.url),
            "application/json",
        ),
    ];
    let mut rng = StdRng::seed_from_u64(20261125);
    let mut by_code = std::collections::BTreeMap::<u16, usize>::new();
    for i in 0..2500 {
        let (method, url, ct) = &endpoints[i % endpoints.len()];
        let b = body(&mut rng);
        let r = http
            .request(method.clone(), url)
            .header("content-type", *ct)
            .body(b.clone())
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "request {i} to {url} failed (server crashed?): {e}\nbody: {}",
                    String::from_utf8_lossy(&b)
                )
            });
        let code = r.status().as_u16();
        *by_code.entry(code).or_default() += 1;
        assert!(
            // 503: allocations and 500: webhook-admitted writes, while an accepted install's
            // upgrade window is open (checked below to be the webhook's InternalError).
            code < 500 || code == 503 || code == 500,
            "request {i}: {code} for {method} {url}\nbody: {}",
            String::from_utf8_lossy(&b)
        );
        if code >= 400 {
            let status: Value = r
                .json()
                .await
                .unwrap_or_else(|e| panic!("request {i}: {code} without a JSON Status: {e}"));
            assert_eq!(status["kind"], "Status", "request {i}: {status}");
            assert_eq!(status["code"], code, "request {i}: {status}");
            if code == 500 {
                assert_eq!(status["reason"], "InternalError", "request {i}: {status}");
                let m = status["message"].as_str().unwrap_or_default();
                assert!(
                    m.contains("failed calling webhook"),
                    "request {i}: {status}"
                );
            }
        }
    }
    // Most generated bodies are bad; the mix must include real rejections of each kind.
    assert!(by_code.get(&400).copied().unwrap_or(0) > 100, "{by_code:?}");
    assert!(by_code.get(&422).copied().unwrap_or(0) > 100, "{by_code:?}");
    let health = http
        .get(format!("{}/healthz", sim.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
}

#[test]
fn invalid_config_exits_2_listing_every_problem() {
    let dir = upsoak_testkit::TempDir::new("badcfg");
    let path = dir.write(
        "bad.yaml",
        "initial: { version: 9.9.9 }\nversions: [ { version: 1.60.0, gates: {} } ]\nfleets: [ { name: Bad, replicas: -1 } ]\n",
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_upsoak-sim"))
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for want in [
        "invalid configuration",
        "(3 problems)",
        "initial.version: unknown version `9.9.9`",
        "fleets[0].name: `Bad` is not a DNS label",
        "fleets[0].replicas: -1 is negative",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_upsoak-sim"))
        .args(["--config", "/nonexistent/sim.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));
}
