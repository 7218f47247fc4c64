//! The simulator's server: POST and PUT bodies must be JSON (415 otherwise) while what kubectl,
//! kube-rs and the Python client send still works; a client that sends its headers slowly is
//! cut off; a body over the limit is 413; connections above the limit are 503; a non-loopback
//! `--listen` is refused (exit 2) without `--allow-remote`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use upsoak_testkit::{Proc, TempDir, sample, scrape};

const BIN: &str = env!("CARGO_BIN_EXE_upsoak-sim");

async fn start(args: &[&str]) -> (Proc, String, TempDir) {
    let dir = TempDir::new("sim-limits");
    let p = Proc::start(
        "upsoak-sim",
        Command::new(BIN)
            .args(["--listen", "127.0.0.1:0"])
            .args(args),
        dir.path(),
    )
    .await;
    let url = p.url().unwrap();
    (p, url, dir)
}

async fn read_all(s: &mut TcpStream, within: Duration) -> Option<String> {
    let mut out = Vec::new();
    tokio::time::timeout(within, s.read_to_end(&mut out))
        .await
        .ok()?
        .ok()?;
    Some(String::from_utf8_lossy(&out).into_owned())
}

#[tokio::test]
async fn post_and_put_need_json_and_what_real_clients_send_is_served() {
    let (_p, url, _d) = start(&[]).await;
    let http = reqwest::Client::new();
    let install = format!("{url}/upsoak/v1/install");
    let body = r#"{"version":"1.59.0"}"#;
    for ct in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ] {
        let r = http
            .post(&install)
            .header("content-type", ct)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 415, "{ct:?}");
        let status: serde_json::Value = r.json().await.unwrap();
        assert_eq!(status["reason"], "UnsupportedMediaType", "{status}");
    }
    // kubectl and kube-rs send `application/json` for create and replace, sometimes with a
    // charset.
    let fleets = format!("{url}/apis/agones.dev/v1/namespaces/default/fleets");
    let fleet = r#"{"apiVersion":"agones.dev/v1","kind":"Fleet","metadata":{"name":"f"},"spec":{"replicas":0,"template":{"spec":{}}}}"#;
    let r = http
        .post(&fleets)
        .header("content-type", "application/json; charset=utf-8")
        .body(fleet)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201, "{}", r.text().await.unwrap());
    // No Content-Type at all is read as JSON, as the API server does (Python's client sends
    // custom objects without one).
    let r = http
        .post(&fleets)
        .body(fleet.replace(r#""name":"f""#, r#""name":"g""#))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201, "{}", r.text().await.unwrap());
    let r = http
        .put(format!("{fleets}/f/scale"))
        .header("content-type", "text/plain")
        .body(r#"{"spec":{"replicas":1}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 415);
    // PATCH keeps its own media types (kubectl scale: merge-patch+json).
    let r = http
        .patch(format!("{fleets}/f/scale"))
        .header("content-type", "application/merge-patch+json")
        .body(r#"{"spec":{"replicas":1}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().await.unwrap());
}

#[tokio::test]
async fn a_slow_loris_is_cut_off_an_oversized_body_is_413_and_extra_connections_503() {
    let (_p, url, _d) = start(&["--header-read-timeout", "1s", "--max-connections", "3"]).await;
    let addr = url.trim_start_matches("http://").to_owned();
    // Headers that never end: cut off after the header read timeout.
    let mut loris = TcpStream::connect(&addr).await.unwrap();
    let began = Instant::now();
    loris
        .write_all(b"GET /version HTTP/1.1\r\nhost: x\r\nx-slow: ")
        .await
        .unwrap();
    assert_eq!(
        read_all(&mut loris, Duration::from_secs(10)).await,
        Some(String::new())
    );
    let took = began.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(10),
        "{took:?}"
    );
    // A body above the 2 MiB limit: refused from its declared length, before it is sent.
    let mut big = TcpStream::connect(&addr).await.unwrap();
    big.write_all(
        b"POST /upsoak/v1/install HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 3145728\r\n\r\n",
    )
    .await
    .unwrap();
    let answer = read_all(&mut big, Duration::from_secs(10)).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    // Three connections held open (each served once), the fourth refused.
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut s = TcpStream::connect(&addr).await.unwrap();
        s.write_all(b"GET /version HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 12];
        s.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"HTTP/1.1 200");
        held.push(s);
    }
    let mut fourth = TcpStream::connect(&addr).await.unwrap();
    let answer = read_all(&mut fourth, Duration::from_secs(5)).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    drop(held);
    let m = common::eventually(10, "the refusals counted", || async {
        let m = scrape(&url).await.ok()?;
        (sample(
            &m,
            "upsoak_sim_http_refused_total{reason=\"too_many_connections\"}",
        )? >= 1.0)
            .then_some(m)
    })
    .await;
    for reason in ["header_timeout", "body_too_large"] {
        let v = sample(
            &m,
            &format!("upsoak_sim_http_refused_total{{reason=\"{reason}\"}}"),
        );
        assert!(v.is_some_and(|v| v >= 1.0), "{reason}: {m}");
    }
}

#[test]
fn a_non_loopback_listen_is_refused_without_allow_remote() {
    let out = Command::new(BIN)
        .args(["--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("not loopback") && stderr.contains("--allow-remote"),
        "{stderr}"
    );
    let dir = TempDir::new("sim-remote");
    let mut p = Proc::start_blocking(
        "upsoak-sim",
        Command::new(BIN).args(["--listen", "0.0.0.0:0", "--allow-remote"]),
        dir.path(),
    );
    assert!(p.url().is_some());
    p.kill();
}
