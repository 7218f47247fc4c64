//! The `/metrics` + `/healthz` + `/readyz` router: probes that tell the truth, format
//! negotiation, merging with a binary's own routes, and shutdown.

#![allow(clippy::expect_used)] // a failed request in a helper is a failed test

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::{Request, header};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use upsoak_common::exposition;
use upsoak_common::ops::{Health, router, serve};

async fn get(app: &Router, path: &str, accept: Option<&str>) -> (StatusCode, String, String) {
    let mut req = Request::get(path);
    if let Some(a) = accept {
        req = req.header(header::ACCEPT, a);
    }
    let res = app
        .clone()
        .oneshot(req.body(Body::empty()).expect("request"))
        .await
        .expect("infallible");
    let status = res.status();
    let content_type = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .expect("body");
    (
        status,
        content_type,
        String::from_utf8_lossy(&body).into_owned(),
    )
}

fn app(health: &Health) -> Router {
    let mut r = Registry::default();
    let c: Counter = Counter::default();
    c.inc();
    r.register("upsoak_test_things", "Things seen.", c);
    router(r, health.clone())
}

#[tokio::test]
async fn ready_only_when_marked() {
    let health = Health::new();
    let app = app(&health);
    assert_eq!(
        get(&app, "/readyz", None).await,
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain; charset=utf-8".into(),
            "not ready\n".into()
        )
    );
    assert_eq!(get(&app, "/healthz", None).await.0, StatusCode::OK);
    health.mark_ready();
    assert_eq!(get(&app, "/readyz", None).await.2, "ok\n");
    health.mark_not_ready();
    assert_eq!(
        get(&app, "/readyz", None).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
}

#[tokio::test]
async fn a_failure_fails_both_probes_with_the_first_reason() {
    let health = Health::new();
    health.mark_ready();
    let app = app(&health);
    health.fail("the wanderer task panicked");
    health.fail("later consequence");
    assert!(!health.is_live() && !health.is_ready());
    for path in ["/healthz", "/readyz"] {
        let (status, _, body) = get(&app, path, None).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert_eq!(body, "failed: the wanderer task panicked\n", "{path}");
    }
}

#[tokio::test]
async fn metrics_negotiates_the_format() {
    let app = app(&Health::new());
    let (status, ct, body) = get(&app, "/metrics", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(ct.starts_with("text/plain"), "{ct}");
    assert!(body.contains("upsoak_test_things_total 1"), "{body}");
    let (_, ct, body) = get(
        &app,
        "/metrics",
        Some("application/openmetrics-text;version=1.0.0"),
    )
    .await;
    assert_eq!(ct, exposition::OPENMETRICS_CONTENT_TYPE);
    assert!(body.ends_with("# EOF\n"), "{body}");
}

#[derive(Clone)]
struct AppState(&'static str);

#[tokio::test]
async fn merges_with_a_binarys_own_routes_and_state() {
    let own: Router = Router::new()
        .route(
            "/upsoak/v1/hello",
            axum::routing::get(|State(s): State<AppState>| async move { s.0 }),
        )
        .merge(router(Registry::default(), Health::new()))
        .with_state(AppState("hello"));
    assert_eq!(get(&own, "/upsoak/v1/hello", None).await.2, "hello");
    assert_eq!(get(&own, "/healthz", None).await.2, "ok\n");
}

#[tokio::test]
async fn serve_stops_on_shutdown() -> std::io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(serve(
        listener,
        router(Registry::default(), Health::new()),
        shutdown.clone(),
    ));
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply).await?;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.ends_with("ok\n"), "{reply}");
    shutdown.cancel();
    let served = tokio::time::timeout(std::time::Duration::from_secs(5), server).await;
    assert!(matches!(served, Ok(Ok(Ok(())))), "{served:?}");
    Ok(())
}

#[tokio::test]
async fn an_overdue_watchdog_fails_both_probes_until_it_beats_again() {
    let health = Health::new();
    health.mark_ready();
    let app = app(&health);
    let beat = health.watchdog("the evaluation loop", std::time::Duration::from_millis(100));
    assert_eq!(get(&app, "/healthz", None).await.0, StatusCode::OK);
    beat.note("prometheus timed out");
    // Real time passes: the watchdog's clock is monotonic, not tokio's.
    std::thread::sleep(std::time::Duration::from_millis(150));
    for path in ["/healthz", "/readyz"] {
        let (status, _, body) = get(&app, path, None).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert!(
            body.starts_with("stalled: the evaluation loop has not made progress for")
                && body.ends_with("(limit 100ms): prometheus timed out\n"),
            "{path}: {body}"
        );
    }
    beat.beat();
    assert_eq!(get(&app, "/healthz", None).await.2, "ok\n");
    assert_eq!(get(&app, "/readyz", None).await.2, "ok\n");
}

#[tokio::test]
async fn warnings_are_shown_on_healthz_without_failing_it() {
    let health = Health::new();
    let app = app(&health);
    health.warn(
        "history",
        Some("cannot write history.json: no space left (retry in 4s)".into()),
    );
    assert_eq!(
        get(&app, "/healthz", None).await,
        (
            StatusCode::OK,
            "text/plain; charset=utf-8".into(),
            "ok\nwarning: cannot write history.json: no space left (retry in 4s)\n".into()
        )
    );
    health.warn("history", None);
    assert_eq!(get(&app, "/healthz", None).await.2, "ok\n");
}
