//! The types decode Agones' own JSON, `null` lists included, and write the same `null`s back.
//!
//! The fixtures in `tests/fixtures/` are hand-written from the Go struct tags of Agones v1.60.0
//! (`pkg/apis/agones/v1/{gameserver,fleet,common}.go`, `pkg/apis/allocation/v1/
//! gameserverallocation.go`); `tests/fixtures/README.md` says which tag gives each `null`.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde::de::DeserializeOwned;
use serde_json::Value;
use upsoak_agones::{
    AllocationState, Fleet, GameServer, GameServerAllocation, GameServerState, NullableVec,
};

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Decodes a fixture as kube-rs would (`serde_json::from_slice` of the body).
fn decode<T: DeserializeOwned>(name: &str) -> T {
    let bytes = serde_json::to_vec(&fixture(name)).unwrap();
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn a_creating_gameserver_has_null_ports_and_addresses_and_no_players() {
    let raw = fixture("gameserver-creating.json");
    for f in ["ports", "addresses", "players", "reservedUntil"] {
        assert!(raw["status"][f].is_null(), "fixture {f}");
    }
    let gs: GameServer = decode("gameserver-creating.json");
    let st = gs.status.as_ref().unwrap();
    assert_eq!(st.state, GameServerState::Creating);
    assert!(st.ports.is_nil() && st.addresses.is_nil());
    assert_eq!(st.players, None);
    assert_eq!(gs.spec.ports[0].host_port, Some(7201));
}

#[test]
fn under_player_tracking_a_new_gameserver_has_ids_null() {
    for name in [
        "gameserver-creating-playertracking.json",
        "gameserver-ready-playertracking.json",
    ] {
        assert!(
            fixture(name)["status"]["players"]["ids"].is_null(),
            "{name}"
        );
        let gs: GameServer = decode(name);
        let p = gs.status.unwrap().players.expect(name);
        assert_eq!((p.count, p.capacity), (0, 10), "{name}");
        assert!(p.ids.is_nil(), "{name}");
    }
}

#[test]
fn ready_and_allocated_gameservers_carry_ports_and_addresses() {
    for (name, state) in [
        ("gameserver-ready.json", GameServerState::Ready),
        (
            "gameserver-ready-playertracking.json",
            GameServerState::Ready,
        ),
        ("gameserver-allocated.json", GameServerState::Allocated),
        (
            "gameserver-allocated-playertracking.json",
            GameServerState::Allocated,
        ),
        (
            "gameserver-allocated-players-left.json",
            GameServerState::Allocated,
        ),
    ] {
        let gs: GameServer = decode(name);
        let st = gs.status.unwrap();
        assert_eq!(st.state, state, "{name}");
        assert_eq!(st.ports.first().map(|p| p.port), Some(7201), "{name}");
        assert_eq!(st.addresses.len(), 3, "{name}");
        assert_eq!(st.addresses[2].type_, "PodIP", "{name}");
        assert_eq!(st.node_name, "gke-agones-default-pool-1a2b3c4d-xz12");
    }
}

#[test]
fn player_ids_are_a_list_once_a_player_connected_even_after_the_last_left() {
    let gs: GameServer = decode("gameserver-allocated-playertracking.json");
    let p = gs.status.unwrap().players.unwrap();
    assert_eq!(&*p.ids, ["player-1".to_owned()]);
    let gs: GameServer = decode("gameserver-allocated-players-left.json");
    let p = gs.status.unwrap().players.unwrap();
    assert!(!p.ids.is_nil() && p.ids.is_empty());
}

/// What the simulator writes for a GameServer is what Agones writes: the same `null`s and the
/// same made-but-empty lists, field by field in `status`.
#[test]
fn a_decoded_gameserver_writes_its_status_back_as_agones_does() {
    for name in [
        "gameserver-creating.json",
        "gameserver-creating-playertracking.json",
        "gameserver-ready.json",
        "gameserver-ready-playertracking.json",
        "gameserver-allocated.json",
        "gameserver-allocated-playertracking.json",
        "gameserver-allocated-players-left.json",
    ] {
        let raw = fixture(name);
        let gs: GameServer = decode(name);
        let back = serde_json::to_value(&gs).unwrap();
        for f in [
            "state",
            "ports",
            "address",
            "addresses",
            "nodeName",
            "reservedUntil",
            "players",
        ] {
            assert_eq!(
                back["status"].get(f),
                raw["status"].get(f),
                "{name}: status.{f}"
            );
        }
    }
}

#[test]
fn a_fleet_with_a_null_template_timestamp_decodes() {
    let raw = fixture("fleet.json");
    assert!(raw["spec"]["template"]["metadata"]["creationTimestamp"].is_null());
    let f: Fleet = decode("fleet.json");
    assert_eq!(f.spec.replicas, 2);
    assert_eq!(f.spec.template.spec.ports[0].container_port, Some(7654));
    let st = f.status.unwrap();
    assert_eq!(
        (st.replicas, st.ready_replicas, st.allocated_replicas),
        (2, 1, 1)
    );
    assert_eq!(st.allocations, Some(3));
}

#[test]
fn gameserverallocation_answers_decode_allocated_and_unallocated() {
    let raw = fixture("gameserverallocation-allocated.json");
    assert!(raw["metadata"]["creationTimestamp"].is_null());
    let a: GameServerAllocation = decode("gameserverallocation-allocated.json");
    let st = a.status.unwrap();
    assert_eq!(st.state, AllocationState::Allocated);
    assert_eq!(st.ports[0].port, 7201);
    assert_eq!(st.addresses.len(), 3);
    assert_eq!(st.source, "local");

    let a: GameServerAllocation = decode("gameserverallocation-unallocated.json");
    let st = a.status.unwrap();
    assert_eq!(st.state, AllocationState::UnAllocated);
    assert!(st.ports.is_empty() && st.addresses.is_empty() && st.address.is_empty());
    // Written back, the omitempty fields stay out, as Agones leaves them out.
    let back = serde_json::to_value(&st).unwrap();
    for f in ["ports", "address", "addresses", "nodeName"] {
        assert!(back.get(f).is_none(), "{f}: {back}");
    }
}

#[test]
fn null_for_an_omitempty_list_reads_as_empty_too() {
    // Agones never sends these as `null`, but a hand-written manifest or another client may.
    let mut raw = fixture("gameserverallocation-allocated.json");
    raw["status"]["ports"] = Value::Null;
    raw["status"]["addresses"] = Value::Null;
    let a: GameServerAllocation = serde_json::from_value(raw).unwrap();
    let st = a.status.unwrap();
    assert!(st.ports.is_empty() && st.addresses.is_empty());
    let mut raw = fixture("fleet.json");
    raw["spec"]["template"]["spec"]["ports"] = Value::Null;
    let f: Fleet = serde_json::from_value(raw).unwrap();
    assert!(f.spec.template.spec.ports.is_empty());
    let _: NullableVec<String> = serde_json::from_str("null").unwrap();
}
