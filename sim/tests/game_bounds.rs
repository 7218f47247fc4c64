//! The game port's bounds on the real binary over real UDP (D3): labels and annotations past the
//! API server's limits are refused with an `ERROR: …` reply and change nothing, the watch event
//! log is bounded in bytes (a watch from a dropped event gets 410 Gone), and no reply is larger
//! than the reply bound.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{SimProcess, test_config, wait_ready};
use kube::ResourceExt;
use tokio::net::UdpSocket;
use upsoak_sim::game::MAX_REPLY_BYTES;
use upsoak_sim::game::metadata::{ANNOTATIONS_MAX_BYTES, MAX_KEYS};

/// Sends `text` to `port` and returns the raw reply.
async fn say(sock: &UdpSocket, port: u16, text: &str) -> Vec<u8> {
    sock.send_to(text.as_bytes(), ("127.0.0.1", port))
        .await
        .unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let (n, _) = tokio::time::timeout(Duration::from_secs(5), sock.recv_from(&mut buf))
        .await
        .unwrap_or_else(|_| panic!("no reply to {:.40?} from port {port}", text))
        .unwrap();
    buf.truncate(n);
    buf
}

async fn say_text(sock: &UdpSocket, port: u16, text: &str) -> String {
    String::from_utf8(say(sock, port, text).await).unwrap()
}

/// A simulator with one Ready GameServer: the simulator, its name and its game port.
async fn one_server() -> (SimProcess, String, u16) {
    let sim = SimProcess::start(Some(&test_config("fleets: [ { name: g1, replicas: 1 } ]")));
    let gs = wait_ready(&sim.gameservers(), 1).await.remove(0);
    let port = gs.status.as_ref().unwrap().ports[0].port;
    let name = gs.metadata.name.clone().unwrap();
    (sim, name, u16::try_from(port).unwrap())
}

#[tokio::test]
async fn labels_past_the_api_servers_limits_are_refused_and_change_nothing() {
    let (sim, name, port) = one_server().await;
    let gss = sim.gameservers();
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let rv_before = gss.get(&name).await.unwrap().metadata.resource_version;

    // The reproduction's datagram: a 900-byte label value.
    let reply = say_text(&sock, port, &format!("LABEL k0 {}", "v".repeat(900))).await;
    assert_eq!(
        reply,
        "ERROR: label \"agones.dev/sdk-k0\": value must be no more than 63 characters, got 900\n"
    );
    let reply = say_text(&sock, port, &format!("LABEL {} v", "k".repeat(60))).await;
    assert!(
        reply.contains("name part must be no more than 63"),
        "{reply}"
    );
    // Nothing changed: not even the resourceVersion.
    let g = gss.get(&name).await.unwrap();
    assert_eq!(g.metadata.resource_version, rv_before);
    assert!(!g.labels().keys().any(|k| k.starts_with("agones.dev/sdk-")));

    // Keys up to the cap are kept, the next new one is refused, an old one may change.
    let mut refused = Vec::new();
    for i in 0..MAX_KEYS {
        let reply = say_text(&sock, port, &format!("LABEL k{i} v")).await;
        if reply.starts_with("ERROR: ") {
            refused.push(reply);
        }
    }
    let labels = gss.get(&name).await.unwrap().metadata.labels.unwrap();
    assert_eq!(
        labels.len(),
        MAX_KEYS,
        "the GameServer holds the cap exactly"
    );
    let others = labels
        .keys()
        .filter(|k| !k.starts_with("agones.dev/sdk-"))
        .count();
    assert_eq!(
        refused.len(),
        others,
        "one refusal per label the server already had"
    );
    assert!(
        refused[0].contains(&format!("already has {MAX_KEYS} labels")),
        "{}",
        refused[0]
    );
    assert_eq!(
        say_text(&sock, port, "LABEL k0 w").await,
        "ACK: LABEL k0 w\n"
    );
    let labels = gss.get(&name).await.unwrap().metadata.labels.unwrap();
    assert_eq!(labels["agones.dev/sdk-k0"], "w");
    assert_eq!(labels.len(), MAX_KEYS);
}

#[tokio::test]
async fn annotations_stop_at_256_kib_and_the_event_log_is_bounded_in_bytes() {
    let (sim, name, port) = one_server().await;
    let gss = sim.gameservers();
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let first_rv = gss
        .get(&name)
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();

    // 900-byte annotations until the total is refused.
    let value = "v".repeat(900);
    let mut accepted = 0;
    let refusal = loop {
        let reply = say_text(&sock, port, &format!("ANNOTATION a{accepted} {value}")).await;
        if reply.starts_with("ERROR: ") {
            break reply;
        }
        accepted += 1;
        assert!(accepted < 1000, "no refusal after {accepted} annotations");
    };
    assert!(
        refusal.contains(&format!("must have at most {ANNOTATIONS_MAX_BYTES} bytes")),
        "{refusal}"
    );
    let annotations = gss.get(&name).await.unwrap().metadata.annotations.unwrap();
    let total: usize = annotations.iter().map(|(k, v)| k.len() + v.len()).sum();
    assert!(total <= ANNOTATIONS_MAX_BYTES, "{total}");
    assert!(
        total > ANNOTATIONS_MAX_BYTES - 1000,
        "{total}: the refusal came early"
    );
    assert!(!annotations.contains_key(&format!("agones.dev/sdk-a{accepted}")));

    // Each change of the ~256 KiB object is now one ~256 KiB snapshot; 300 of them are more
    // than the log's byte bound and far fewer than its 20 000 events, so only the byte bound
    // drops the first ones.
    for i in 0..300 {
        let reply = say_text(&sock, port, &format!("ANNOTATION a0 {i}{value}")).await;
        assert!(reply.starts_with("ACK: "), "{reply:.80}");
    }
    let http = reqwest::Client::new();
    let watch = |rv: String| {
        let url = format!(
            "{}/apis/agones.dev/v1/namespaces/default/gameservers?watch=true&resourceVersion={rv}&timeoutSeconds=1",
            sim.url
        );
        let http = http.clone();
        async move {
            let r = http.get(url).send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.text().await.unwrap()
        }
    };
    let body = watch(first_rv).await;
    let first = body.lines().next().expect("a watch line");
    assert!(
        first.contains("\"type\":\"ERROR\"") && first.contains("\"code\":410"),
        "{first:.200}"
    );
    // A recent resourceVersion still resumes.
    let now = gss.get(&name).await.unwrap().metadata.resource_version;
    let recent = now.unwrap().parse::<u64>().unwrap() - 5;
    let body = watch(recent.to_string()).await;
    assert_eq!(body.lines().count(), 5, "the last five changes");
    assert!(
        body.lines()
            .all(|l| l.starts_with("{\"type\":\"MODIFIED\""))
    );
}

#[tokio::test]
async fn replies_are_never_larger_than_the_reply_bound() {
    let (_sim, _name, port) = one_server().await;
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    // A list whose values are far longer than a datagram.
    for i in 0..100 {
        let value = format!("v{i:03}{}", "x".repeat(60));
        let reply = say_text(&sock, port, &format!("APPEND_LIST_VALUE maps {value}")).await;
        assert_eq!(reply, "SUCCESS\n");
    }
    let reply = say_text(&sock, port, "GET_LIST_VALUES maps").await;
    assert_eq!(reply.len(), MAX_REPLY_BYTES, "cut to the bound");
    assert!(
        reply.starts_with("VALUES: v000x") && reply.ends_with('\n'),
        "{reply:.80}"
    );
    // Invalid UTF-8 is read as U+FFFD, three bytes each: the echo is cut too.
    sock.send_to(&[0xff; 1024], ("127.0.0.1", port))
        .await
        .unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let (n, _) = tokio::time::timeout(Duration::from_secs(5), sock.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(n <= MAX_REPLY_BYTES, "{n}");
    assert!(String::from_utf8(buf[..n].to_vec()).is_ok());
}
