//! The simulator's Fleets and GameServers, as served over HTTP, validate against Agones' own
//! CRD schemas (`../shared/reference/agones-crds/`), the contract a real cluster enforces.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;

use common::{SimProcess, eventually, get_json, test_config};
use serde_json::Value;

/// The `openAPIV3Schema` of a CRD file in the shared reference.
fn crd_schema(file: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/reference/agones-crds")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (CI checks out ../shared beside the repo)",
            path.display()
        )
    });
    let crd: Value = serde_yaml::from_str(&text).unwrap();
    let mut schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone();
    allow_nullable(&mut schema);
    schema
}

/// OpenAPI's `nullable: true` as JSON Schema: the type also admits `null`. The API server
/// accepts and keeps a `null` exactly there (k8s.io/apiextensions-apiserver, structural
/// schemas: `nullable`), which is how Agones' `null` lists are stored and served
/// (`_gameserverstatus.yaml`: `ports`, `addresses`, `reservedUntil`, `players`, `players.ids`).
fn allow_nullable(schema: &mut Value) {
    if let Some(obj) = schema.as_object_mut() {
        if obj.get("nullable") == Some(&Value::Bool(true))
            && let Some(t) = obj.get("type").and_then(Value::as_str).map(str::to_owned)
        {
            obj.insert("type".into(), serde_json::json!([t, "null"]));
        }
        for v in obj.values_mut() {
            allow_nullable(v);
        }
    } else if let Some(a) = schema.as_array_mut() {
        a.iter_mut().for_each(allow_nullable);
    }
}

fn validate(schema: &Value, object: &Value, what: &str) {
    let validator = jsonschema::validator_for(schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(object)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{what} violates the CRD schema:\n{}\n{object:#}",
        errors.join("\n")
    );
}

#[tokio::test]
async fn served_objects_validate_against_agones_crds() {
    let sim = SimProcess::start(Some(&test_config("fleets: [ { name: s1, replicas: 3 } ]")));
    let http = reqwest::Client::new();
    let base = format!("{}/apis/agones.dev/v1/namespaces/default", sim.url);
    let list: Value = eventually(10, "3 Ready", || async {
        let l = get_json(&http, &format!("{base}/gameservers")).await;
        let ready = l["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|g| g["status"]["state"] == "Ready")
            .count();
        (ready == 3).then_some(l)
    })
    .await;
    // Allocate one so an Allocated server is checked too.
    http.post(format!(
        "{}/apis/allocation.agones.dev/v1/namespaces/default/gameserverallocations",
        sim.url
    ))
    .json(&upsoak_agones::GameServerAllocation::from_fleet("s1"))
    .send()
    .await
    .unwrap();
    let gs_schema = crd_schema("gameservers.agones.dev.yaml");
    for g in list["items"].as_array().unwrap() {
        validate(&gs_schema, g, "a GameServer");
    }
    let fleet_schema = crd_schema("fleets.agones.dev.yaml");
    let fleets = get_json(&http, &format!("{base}/fleets")).await;
    assert_eq!(fleets["items"].as_array().unwrap().len(), 1);
    for f in fleets["items"].as_array().unwrap() {
        validate(&fleet_schema, f, "a Fleet");
    }
    // The Fleet body clients send (the default template) is valid as well.
    let body = serde_json::to_value(upsoak_agones::Fleet::new(
        "x",
        2,
        upsoak_sim::world::default_template(),
    ))
    .unwrap();
    validate(&fleet_schema, &body, "the default Fleet body");
    // And the schema is not vacuous: a bad state is caught, and so is a `null` where the CRD
    // does not allow one (only the `nullable` fields may be `null`).
    let mut bad = list["items"][0].clone();
    bad["status"]["state"] = Value::from("Sleeping");
    let validator = jsonschema::validator_for(&gs_schema).unwrap();
    assert!(!validator.is_valid(&bad));
    let mut bad = list["items"][0].clone();
    bad["status"]["address"] = Value::Null;
    assert!(!validator.is_valid(&bad));
    // The served servers do carry Agones' nulls, so the check above covered them.
    assert!(
        list["items"][0]["status"]
            .get("players")
            .is_some_and(Value::is_null),
        "{list}"
    );
}
