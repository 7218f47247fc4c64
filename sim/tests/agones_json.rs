//! The real `upsoak-sim` binary answers with Agones' JSON, read raw over HTTP: the `null` lists
//! of `GameServerStatus` (`pkg/apis/agones/v1/gameserver.go`, v1.60.0) while Creating, Ready and
//! Allocated, with PlayerTracking on and off; lists in chunks (`limit`, `continue`); and
//! `/openapi/v2` as JSON and as the protobuf client-go asks for.
// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{SimProcess, eventually};
use serde_json::{Value, json};
use tokio::net::UdpSocket;

const GS: &str = "/apis/agones.dev/v1/namespaces/default/gameservers";

/// The built-in configuration with PlayerTracking on (or off) from the start, the lifecycle
/// given, OS-picked game ports, no batch wait and `extra` appended.
fn config(player_tracking: bool, lifecycle: &str, extra: &str) -> String {
    let default = upsoak_sim::config::DEFAULT_CONFIG_YAML;
    let initial = "initial:\n  version: 1.60.0\n";
    assert!(
        default.contains(initial),
        "the default's initial install moved"
    );
    let gates = if player_tracking {
        "initial:\n  version: 1.60.0\n  featureGates: PlayerTracking=true\n"
    } else {
        initial
    };
    format!(
        "{}\nlifecycle: {lifecycle}\ngame: {{ port_min: 0 }}\nallocation: {{ batch_wait: 0ms }}\n{extra}\n",
        default.replacen(initial, gates, 1)
    )
}

const FAST: &str = "{ scheduled_after: 50ms, request_ready_after: 50ms, ready_after: 50ms, delete_after_shutdown: 100ms, delete_after_failure: 2s, tick: 20ms }";
/// Servers stay Creating: scheduling takes an hour.
const STUCK_CREATING: &str = "{ scheduled_after: 1h, tick: 20ms }";

/// The raw body of `GET path` and its JSON.
async fn get(url: &str, path: &str) -> (u16, String, Value) {
    let r = reqwest::get(format!("{url}{path}")).await.unwrap();
    let code = r.status().as_u16();
    let text = r.text().await.unwrap();
    let v = serde_json::from_str(&text).unwrap_or(Value::Null);
    (code, text, v)
}

/// The GameServers once `want` holds for every one of `n` of them.
async fn gameservers_when(url: &str, n: usize, want: impl Fn(&Value) -> bool) -> (String, Value) {
    eventually(
        10,
        &format!("{n} GameServers in the expected state"),
        || async {
            let (_, text, v) = get(url, GS).await;
            let items = v["items"].as_array()?;
            (items.len() == n && items.iter().all(&want)).then_some((text, v))
        },
    )
    .await
}

#[tokio::test]
async fn a_creating_gameserver_has_null_ports_addresses_and_with_player_tracking_ids_null() {
    for tracking in [true, false] {
        let sim = SimProcess::start(Some(&config(
            tracking,
            STUCK_CREATING,
            "fleets: [ { name: c, replicas: 2 } ]",
        )));
        let (text, v) = gameservers_when(&sim.url, 2, |g| g["status"]["state"] == "Creating").await;
        for g in v["items"].as_array().unwrap() {
            let st = &g["status"];
            for f in ["ports", "addresses", "reservedUntil"] {
                assert!(st.get(f).is_some_and(Value::is_null), "{f}: {st}");
            }
            assert_eq!(st["address"], "", "{st}");
            assert_eq!(st["nodeName"], "", "{st}");
            if tracking {
                assert_eq!(
                    st["players"],
                    json!({"count": 0, "capacity": 0, "ids": null})
                );
            } else {
                assert!(st.get("players").is_some_and(Value::is_null), "{st}");
            }
        }
        // On the wire, byte for byte, as Go writes a nil slice.
        if tracking {
            assert!(text.contains(r#""ids":null"#), "{text}");
        }
        assert!(text.contains(r#""ports":null"#), "{text}");
        sim.stop();
    }
}

async fn say(sock: &UdpSocket, port: u16, msg: &str) -> String {
    sock.send_to(msg.as_bytes(), ("127.0.0.1", port))
        .await
        .unwrap();
    let mut buf = [0u8; 512];
    let (n, _) = tokio::time::timeout(Duration::from_secs(5), sock.recv_from(&mut buf))
        .await
        .expect("the game server answered")
        .unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test]
async fn ready_and_allocated_gameservers_have_lists_and_ids_stay_null_until_a_player_connects() {
    let sim = SimProcess::start(Some(&config(
        true,
        FAST,
        "fleets: [ { name: r, replicas: 2 } ]",
    )));
    let (text, v) = gameservers_when(&sim.url, 2, |g| g["status"]["state"] == "Ready").await;
    assert!(text.contains(r#""ids":null"#), "{text}");
    for g in v["items"].as_array().unwrap() {
        let st = &g["status"];
        assert!(st["ports"][0]["port"].as_i64() > Some(0), "{st}");
        assert_eq!(st["addresses"][0]["type"], "InternalIP", "{st}");
        assert!(st["players"]["ids"].is_null(), "{st}");
    }

    let http = reqwest::Client::new();
    let gsa = common::post_json(
        &http,
        &format!(
            "{}/apis/allocation.agones.dev/v1/namespaces/default/gameserverallocations",
            sim.url
        ),
        &json!({"apiVersion": "allocation.agones.dev/v1", "kind": "GameServerAllocation",
            "spec": {"selectors": [{"matchLabels": {"agones.dev/fleet": "r"}}]}}),
    )
    .await;
    assert_eq!(gsa["status"]["state"], "Allocated", "{gsa}");
    let name = gsa["status"]["gameServerName"].as_str().unwrap().to_owned();
    let port = u16::try_from(gsa["status"]["ports"][0]["port"].as_i64().unwrap()).unwrap();
    let path = format!("{GS}/{name}");
    let (_, text, g) = get(&sim.url, &path).await;
    assert_eq!(g["status"]["state"], "Allocated");
    assert!(text.contains(r#""ids":null"#), "{text}");

    // A capacity change leaves the ids nil; a connect makes the list; the last disconnect
    // leaves it made and empty (`pkg/sdkserver/sdkserver.go`).
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let players = || async { get(&sim.url, &path).await.2["status"]["players"].clone() };
    assert_eq!(
        say(&sock, port, "PLAYER_CAPACITY 4").await.trim(),
        "ACK: PLAYER_CAPACITY 4"
    );
    eventually(5, "capacity 4", || async {
        let p = players().await;
        (p["capacity"] == 4).then_some(p)
    })
    .await;
    assert!(players().await["ids"].is_null());
    say(&sock, port, "PLAYER_CONNECT alice").await;
    eventually(5, "ids [alice]", || async {
        (players().await == json!({"count": 1, "capacity": 4, "ids": ["alice"]})).then_some(())
    })
    .await;
    say(&sock, port, "PLAYER_DISCONNECT alice").await;
    eventually(5, "ids []", || async {
        (players().await == json!({"count": 0, "capacity": 4, "ids": []})).then_some(())
    })
    .await;
    sim.stop();
}

#[tokio::test]
async fn lists_come_in_chunks_of_limit_with_a_continue_token_as_the_api_server_gives() {
    let sim = SimProcess::start(Some(&config(
        false,
        FAST,
        "fleets: [ { name: a, replicas: 3 }, { name: b, replicas: 2 } ]",
    )));
    gameservers_when(&sim.url, 5, |_| true).await;
    for base in [GS, "/apis/agones.dev/v1/gameservers"] {
        let (mut names, mut rvs, mut pages) = (Vec::new(), BTreeSet::new(), 0);
        let mut path = format!("{base}?limit=2");
        loop {
            let (code, _, v) = get(&sim.url, &path).await;
            assert_eq!(code, 200, "{v}");
            let items = v["items"].as_array().unwrap();
            assert!(items.len() <= 2, "{v}");
            names.extend(
                items
                    .iter()
                    .map(|g| g["metadata"]["name"].as_str().unwrap().to_owned()),
            );
            rvs.insert(v["metadata"]["resourceVersion"].to_string());
            pages += 1;
            match v["metadata"]["continue"].as_str() {
                Some(token) => {
                    assert_eq!(
                        v["metadata"]["remainingItemCount"].as_u64(),
                        Some(5 - names.len() as u64),
                        "{v}"
                    );
                    path = format!("{base}?limit=2&continue={token}");
                }
                None => break,
            }
        }
        assert_eq!(pages, 3, "{base}");
        let unique: BTreeSet<_> = names.iter().collect();
        assert_eq!((names.len(), unique.len()), (5, 5), "{names:?}");
        assert_eq!(
            rvs.len(),
            1,
            "every page answers at the first page's rv: {rvs:?}"
        );
    }
    // With a selector, no count of the rest (the API server counts only without one).
    let (_, _, v) = get(
        &sim.url,
        &format!("{GS}?limit=1&labelSelector=agones.dev/fleet%3Da"),
    )
    .await;
    assert_eq!(v["items"].as_array().unwrap().len(), 1);
    assert!(
        v["metadata"]["continue"].is_string() && v["metadata"].get("remainingItemCount").is_none(),
        "{v}"
    );
    // kubectl's tables come in chunks too.
    let table = reqwest::Client::new()
        .get(format!("{}{GS}?limit=4", sim.url))
        .header("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(table["rows"].as_array().unwrap().len(), 4, "{table}");
    assert!(table["metadata"]["continue"].is_string(), "{table}");
    // A token that does not decode is 400, as the API server says it.
    let (code, _, v) = get(&sim.url, &format!("{GS}?limit=2&continue=bm90LWEtdG9rZW4")).await;
    assert_eq!(code, 400, "{v}");
    assert_eq!(v["reason"], "BadRequest");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .starts_with("invalid continue token: continue key is not valid"),
        "{v}"
    );
    let (code, _, v) = get(&sim.url, &format!("{GS}?limit=x")).await;
    assert_eq!(code, 400, "{v}");
    // The other lists page the same way: Agones' Deployments, the Namespaces.
    for (base, total) in [
        ("/apis/apps/v1/namespaces/agones-system/deployments", 3),
        ("/apis/apps/v1/deployments", 3),
        ("/api/v1/namespaces", 2),
    ] {
        let (mut seen, mut path) = (0, format!("{base}?limit=1"));
        loop {
            let (code, _, v) = get(&sim.url, &path).await;
            assert_eq!(code, 200, "{path}: {v}");
            assert_eq!(v["items"].as_array().unwrap().len(), 1, "{path}: {v}");
            seen += 1;
            match v["metadata"]["continue"].as_str() {
                Some(t) => path = format!("{base}?limit=1&continue={t}"),
                None => break,
            }
        }
        assert_eq!(seen, total, "{base}");
    }
    sim.stop();
}

#[tokio::test]
async fn openapi_v2_is_swagger_json_and_protobuf_when_asked() {
    let sim = SimProcess::start(None);
    let (code, _, doc) = get(&sim.url, "/openapi/v2").await;
    assert_eq!(code, 200);
    assert_eq!(doc["swagger"], "2.0");
    for kind in ["Fleet", "GameServer", "GameServerAllocation"] {
        let found = doc["definitions"].as_object().unwrap().values().any(|d| {
            d["x-kubernetes-group-version-kind"]
                .as_array()
                .is_some_and(|g| g.iter().any(|g| g["kind"] == kind))
        });
        assert!(found, "{kind}: {doc}");
    }
    assert!(doc["paths"]["/apis/agones.dev/v1/namespaces/{namespace}/fleets"]["post"].is_object());
    let r = reqwest::Client::new()
        .get(format!("{}/openapi/v2", sim.url))
        .header(
            "Accept",
            "application/com.github.proto-openapi.spec.v2@v1.0+protobuf",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        r.headers()["content-type"],
        "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
    );
    let body = r.bytes().await.unwrap();
    // `Document.swagger` (field 1, a string) first, then the kinds' names somewhere inside.
    assert_eq!(&body[..5], b"\x0a\x032.0");
    let text = String::from_utf8_lossy(&body);
    assert!(
        text.contains("x-kubernetes-group-version-kind") && text.contains("\"kind\":\"Fleet\"")
    );
    sim.stop();
}
