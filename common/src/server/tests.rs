//! The limits against real sockets: a slow-loris client is cut off, a slow or oversized body is
//! refused, connections above the limit are answered 503 while the ones within it still work.

use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::routing::{get, post};
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::*;

struct Running {
    addr: std::net::SocketAddr,
    metrics: ServerMetrics,
    stop: CancellationToken,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn start(limits: Limits) -> Running {
    let app = Router::new()
        .route("/", get(|| async { "hi" }))
        .route("/echo", post(|b: Bytes| async move { b }));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let metrics = ServerMetrics::new("test");
    let stop = CancellationToken::new();
    tokio::spawn(serve(listener, app, limits, metrics.clone(), stop.clone()));
    Running {
        addr,
        metrics,
        stop,
    }
}

/// Everything the server sends until it closes the connection (or `within` runs out: then
/// `None`).
async fn read_until_closed(s: &mut TcpStream, within: Duration) -> Option<String> {
    let mut out = Vec::new();
    let read = tokio::time::timeout(within, s.read_to_end(&mut out)).await;
    match read {
        Ok(_) => Some(String::from_utf8_lossy(&out).into_owned()),
        Err(_) => None,
    }
}

fn shown(m: &ServerMetrics) -> String {
    let mut r = Registry::default();
    m.register(&mut r, "t");
    let mut s = String::new();
    prometheus_client::encoding::text::encode(&mut s, &r).unwrap();
    s
}

fn quick(limits: Limits) -> Limits {
    Limits {
        header_read_timeout: Duration::from_millis(300),
        body_read_timeout: Duration::from_millis(300),
        ..limits
    }
}

#[tokio::test]
async fn a_client_that_sends_its_headers_slowly_is_cut_off() {
    let srv = start(quick(Limits::default())).await;
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    let began = Instant::now();
    s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n").await.unwrap();
    // One header byte now and then, never the blank line that ends the headers.
    let trickle = async {
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if s.write_all(b"x").await.is_err() {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), trickle).await;
    let cut = began.elapsed();
    assert!(cut < Duration::from_secs(5), "never cut off");
    assert!(
        cut >= Duration::from_millis(300),
        "cut before the timeout: {cut:?}"
    );
    testkit_eventually(|| {
        shown(&srv.metrics).contains("t_http_refused_total{reason=\"header_timeout\"} 1")
    })
    .await;
}

#[tokio::test]
async fn an_idle_connection_is_closed_after_the_header_timeout() {
    let srv = start(quick(Limits::default())).await;
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    assert_eq!(
        read_until_closed(&mut s, Duration::from_secs(5)).await,
        Some(String::new())
    );
}

#[tokio::test]
async fn a_body_sent_too_slowly_is_answered_408() {
    let srv = start(quick(Limits::default())).await;
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    s.write_all(b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\nonly ten b")
        .await
        .unwrap();
    let answer = read_until_closed(&mut s, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(shown(&srv.metrics).contains("t_http_refused_total{reason=\"body_timeout\"} 1"));
}

#[tokio::test]
async fn a_body_over_the_limit_is_answered_413_declared_or_chunked() {
    let srv = start(Limits {
        max_body_bytes: 16,
        ..Limits::default()
    })
    .await;
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    s.write_all(b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 17\r\n\r\n")
        .await
        .unwrap();
    let answer = read_until_closed(&mut s, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    s.write_all(b"POST /echo HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n20\r\n0123456789abcdef0123456789abcdef\r\n0\r\n\r\n")
        .await
        .unwrap();
    let answer = read_until_closed(&mut s, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    // Within the limit the body reaches the handler whole.
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    s.write_all(b"POST /echo HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: 16\r\n\r\n0123456789abcdef")
        .await
        .unwrap();
    let answer = read_until_closed(&mut s, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 200") && answer.ends_with("0123456789abcdef"),
        "{answer}"
    );
    assert!(shown(&srv.metrics).contains("t_http_refused_total{reason=\"body_too_large\"} 2"));
}

#[tokio::test]
async fn connections_above_the_limit_are_refused_and_the_others_still_served() {
    let srv = start(Limits {
        max_connections: 2,
        ..Limits::default()
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(srv.addr).await.unwrap();
        // A served request proves the connection holds a slot.
        s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 12];
        s.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"HTTP/1.1 200");
        held.push(s);
    }
    let mut third = TcpStream::connect(srv.addr).await.unwrap();
    let answer = read_until_closed(&mut third, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(
        shown(&srv.metrics).contains("t_http_refused_total{reason=\"too_many_connections\"} 1")
    );
    assert!(shown(&srv.metrics).contains("t_http_connections_open 2"));
    // A closed connection frees its slot.
    drop(held.pop());
    testkit_eventually(|| shown(&srv.metrics).contains("t_http_connections_open 1")).await;
    let mut again = TcpStream::connect(srv.addr).await.unwrap();
    again
        .write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let answer = read_until_closed(&mut again, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test]
async fn slow_clients_holding_every_slot_are_shed_for_a_probe() {
    // The header timeout is long: only shedding can make room.
    let srv = start(Limits {
        max_connections: 4,
        ..Limits::default()
    })
    .await;
    let probe = || async {
        let mut s = TcpStream::connect(srv.addr).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        read_until_closed(&mut s, Duration::from_secs(5))
            .await
            .unwrap()
    };
    // A slow-loris that keeps every slot and reconnects as its connections close: more
    // connections than slots, each sending a part of its headers and never the rest.
    let mut loris = Vec::new();
    for _ in 0..12 {
        let mut s = TcpStream::connect(srv.addr).await.unwrap();
        let _ = s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n").await;
        loris.push(s);
    }
    testkit_eventually(|| shown(&srv.metrics).contains("t_http_connections_open 4")).await;
    for _ in 0..3 {
        let answer = probe().await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
    let m = shown(&srv.metrics);
    assert!(
        m.contains("t_http_refused_total{reason=\"too_many_connections\"} 0"),
        "{m}"
    );
    assert!(
        !m.contains("t_http_refused_total{reason=\"shed_waiting\"} 0"),
        "{m}"
    );
    // A client being served is never shed: with every slot busy, a new one is refused.
    drop(loris);
    testkit_eventually(|| shown(&srv.metrics).contains("t_http_connections_open 0")).await;
    let mut busy = Vec::new();
    for _ in 0..4 {
        let mut s = TcpStream::connect(srv.addr).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 12];
        s.read_exact(&mut buf).await.unwrap();
        busy.push(s);
    }
    let answer = probe().await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
}

#[test]
fn a_zero_limit_is_refused() {
    assert!(Limits::default().check().is_ok());
    assert!(
        Limits {
            max_connections: 0,
            ..Limits::default()
        }
        .check()
        .is_err()
    );
}

/// Polls `cond` until it holds (10 s at most); common cannot depend on the testkit.
async fn testkit_eventually(cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "condition not reached within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
