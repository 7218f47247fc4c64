//! The operational endpoints every binary serves: `/metrics` (OpenMetrics or Prometheus text,
//! see [`crate::exposition`]), `/healthz` (liveness) and `/readyz` (readiness), as an axum
//! [`Router`] a binary merges with its own routes.
//!
//! [`Health`] is the shared state behind the two probes. A process starts live and not ready:
//! it becomes ready only when its code says so ([`Health::mark_ready`], e.g. after the first
//! successful query or observation), and stops being live when something it cannot recover
//! from happens ([`Health::fail`]), so an orchestrator restarts it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::exposition;

/// Path of the metrics endpoint.
pub const METRICS_PATH: &str = "/metrics";
/// Path of the liveness probe.
pub const HEALTHZ_PATH: &str = "/healthz";
/// Path of the readiness probe.
pub const READYZ_PATH: &str = "/readyz";

#[derive(Debug, Default)]
struct HealthState {
    ready: AtomicBool,
    failure: Mutex<Option<String>>,
}

/// Liveness and readiness, shared by the code that knows and the probes that tell. Clones
/// share one state.
#[derive(Clone, Debug, Default)]
pub struct Health(Arc<HealthState>);

impl Health {
    /// Live and not ready.
    pub fn new() -> Health {
        Health::default()
    }

    /// From now on `/readyz` answers 200 (unless the process has failed).
    pub fn mark_ready(&self) {
        self.0.ready.store(true, Ordering::Release);
    }

    /// From now on `/readyz` answers 503 again, e.g. while a dependency is gone.
    pub fn mark_not_ready(&self) {
        self.0.ready.store(false, Ordering::Release);
    }

    /// Ready and not failed.
    pub fn is_ready(&self) -> bool {
        self.0.ready.load(Ordering::Acquire) && self.failure().is_none()
    }

    /// From now on `/healthz` (and `/readyz`) answer 503 with `reason`. The first reason is
    /// kept: later failures are usually consequences of it.
    pub fn fail(&self, reason: impl Into<String>) {
        // A poisoned lock only means another thread panicked while failing; the state is an
        // `Option<String>` and is still consistent.
        let mut failure = self.0.failure.lock().unwrap_or_else(|e| e.into_inner());
        if failure.is_none() {
            *failure = Some(reason.into());
        }
    }

    /// Why the process failed, if it did.
    pub fn failure(&self) -> Option<String> {
        self.0
            .failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Not failed.
    pub fn is_live(&self) -> bool {
        self.failure().is_none()
    }
}

#[derive(Clone)]
struct OpsState {
    registry: Arc<Registry>,
    health: Health,
}

/// `/metrics` for `registry`, `/healthz` and `/readyz` for `health`.
///
/// The router carries its own state, so it merges into a binary's router of any state type:
/// `ops::router(registry, health.clone()).merge(my_routes)` or
/// `my_routes.merge(ops::router(registry, health))`.
pub fn router<S>(registry: impl Into<Arc<Registry>>, health: Health) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route(METRICS_PATH, get(metrics))
        .route(HEALTHZ_PATH, get(healthz))
        .route(READYZ_PATH, get(readyz))
        .with_state(OpsState {
            registry: registry.into(),
            health,
        })
}

/// Serves `app` on `listener` until `shutdown` is cancelled, then lets requests in flight finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

async fn metrics(State(s): State<OpsState>, headers: HeaderMap) -> Response {
    exposition::response(&s.registry, &headers)
}

async fn healthz(State(s): State<OpsState>) -> Response {
    match s.health.failure() {
        None => (StatusCode::OK, "ok\n").into_response(),
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("failed: {reason}\n"),
        )
            .into_response(),
    }
}

async fn readyz(State(s): State<OpsState>) -> Response {
    if let Some(reason) = s.health.failure() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("failed: {reason}\n"),
        )
            .into_response()
    } else if s.health.is_ready() {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, header};
    use prometheus_client::metrics::counter::Counter;
    use tower::ServiceExt;

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
}
