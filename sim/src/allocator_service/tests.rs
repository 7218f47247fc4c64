//! The REST shapes: Agones' JSON names in, the `GameServerAllocation` they become, the
//! response and error bodies out.
#![allow(clippy::unwrap_used)]

use serde_json::json;
use upsoak_agones::gameserver::NodeAddress;
use upsoak_agones::{AllocationState, GameServerAllocationStatus, GameServerStatusPort};

use super::rest::*;

#[test]
fn a_request_with_agones_field_names_becomes_the_same_allocation() {
    let req: AllocationRequest = serde_json::from_value(json!({
        "namespace": "games",
        "gameServerSelectors": [
            {"matchLabels": {"agones.dev/fleet": "f"}, "gameServerState": "ALLOCATED"},
            {"matchLabels": {"agones.dev/fleet": "f"}}
        ],
        "scheduling": "Distributed",
        "metadata": {"labels": {"mode": "ranked"}, "annotations": {"a": "b"}},
        "multiClusterSetting": {"enabled": false}
    }))
    .unwrap();
    assert_eq!(req.namespace, "games");
    let gsa = to_gsa(&req).unwrap();
    let v = serde_json::to_value(&gsa).unwrap();
    assert_eq!(v["kind"], "GameServerAllocation");
    assert_eq!(
        v["spec"]["selectors"],
        json!([
            {"matchLabels": {"agones.dev/fleet": "f"}, "gameServerState": "Allocated"},
            {"matchLabels": {"agones.dev/fleet": "f"}}
        ])
    );
    assert_eq!(v["spec"]["scheduling"], "Distributed");
    assert_eq!(v["spec"]["metadata"]["labels"]["mode"], "ranked");
}

#[test]
fn the_deprecated_selectors_are_preferred_then_required() {
    let req: AllocationRequest = serde_json::from_value(json!({
        "requiredGameServerSelector": {"matchLabels": {"k": "required"}},
        "preferredGameServerSelectors": [{"matchLabels": {"k": "preferred"}}]
    }))
    .unwrap();
    let gsa = to_gsa(&req).unwrap();
    let labels: Vec<_> = gsa
        .spec
        .selectors
        .iter()
        .map(|s| s.selector.match_labels.clone().unwrap()["k"].clone())
        .collect();
    assert_eq!(labels, ["preferred", "required"]);
}

#[test]
fn a_bad_enum_is_invalid_argument() {
    let req: AllocationRequest =
        serde_json::from_value(json!({"gameServerSelectors": [{"gameServerState": "Ready"}]}))
            .unwrap();
    let e = to_gsa(&req).unwrap_err();
    assert_eq!(e.code, INVALID_ARGUMENT);
    assert_eq!(e.http_status().as_u16(), 400);
    let req: AllocationRequest = serde_json::from_value(json!({"scheduling": "Spread"})).unwrap();
    assert_eq!(to_gsa(&req).unwrap_err().code, INVALID_ARGUMENT);
}

fn allocated(state: AllocationState) -> upsoak_agones::GameServerAllocation {
    let mut gsa = upsoak_agones::GameServerAllocation::from_fleet("f");
    gsa.status = Some(GameServerAllocationStatus {
        state,
        game_server_name: "f-abc".into(),
        ports: vec![GameServerStatusPort {
            name: "default".into(),
            port: 7001,
        }],
        address: "10.0.0.1".into(),
        addresses: vec![NodeAddress {
            address: "10.0.0.1".into(),
            type_: "InternalIP".into(),
        }],
        node_name: "node-1".into(),
        source: "local".into(),
    });
    gsa
}

#[test]
fn the_response_has_agones_field_names() {
    let r = to_response(&allocated(AllocationState::Allocated)).unwrap();
    let v = serde_json::to_value(&r).unwrap();
    assert_eq!(v["gameServerName"], "f-abc");
    assert_eq!(v["ports"], json!([{"name": "default", "port": 7001}]));
    assert_eq!(v["address"], "10.0.0.1");
    assert_eq!(
        v["addresses"],
        json!([{"type": "InternalIP", "address": "10.0.0.1"}])
    );
    assert_eq!(v["nodeName"], "node-1");
    assert_eq!(v["source"], "local");
}

#[test]
fn unallocated_and_contention_are_the_allocator_errors() {
    let e = to_response(&allocated(AllocationState::UnAllocated)).unwrap_err();
    assert_eq!(
        (e.code, e.http_status().as_u16()),
        (RESOURCE_EXHAUSTED, 429)
    );
    assert_eq!(e.message, "there is no available GameServer to allocate");
    let e = to_response(&allocated(AllocationState::Contention)).unwrap_err();
    assert_eq!((e.code, e.http_status().as_u16()), (ABORTED, 409));
    let v = serde_json::to_value(&e).unwrap();
    assert_eq!(v["details"], json!([]));
}

#[test]
fn api_statuses_map_to_grpc_codes() {
    assert_eq!(RestError::from_http(503, String::new()).code, UNAVAILABLE);
    assert_eq!(RestError::from_http(500, String::new()).code, INTERNAL);
    assert_eq!(
        RestError::from_http(422, String::new()).code,
        INVALID_ARGUMENT
    );
}
