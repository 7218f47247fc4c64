//! Assembles the simulator: the world, its controller loop, the Kubernetes API, the control
//! endpoint that installs versions, `/metrics`, `/healthz` and `/readyz`, on one listener,
//! served within the workspace's server limits ([`upsoak_common::server`]: header and body read
//! timeouts, body size, connections). POST and PUT bodies must be `application/json` (what
//! kubectl, kube-rs and the Python client send for create and replace; PATCH has its own media
//! types, checked per request), so a web page cannot post to it as a "simple" cross-site
//! request. Writes must also come from its own origin, and on loopback be addressed to a
//! loopback name ([`api::origin`]), against cross-site requests and DNS rebinding.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::registry::Registry;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use upsoak_agones::release::{Install, to_query};
use upsoak_common::ops::{self, Health};
use upsoak_common::process::ProcessCollector;
use upsoak_common::server::{Limits, ServerMetrics};

use crate::api::{self, ApiState};
use crate::config::SimConfig;
use crate::error::{Error, Result};
use crate::events::{self, SimMetrics};
use crate::game::PortPool;
use crate::metrics::{GaugeCollector, GaugeSource};
use crate::status::{ApiError, Cause};
use crate::world::{InstallError, World};

/// Path of the control endpoint that installs a version (what `helm upgrade` does).
pub const INSTALL_PATH: &str = "/upsoak/v1/install";
/// Path that reports what is installed.
pub const INSTALLED_PATH: &str = "/upsoak/v1/installed";

/// A running simulator.
pub struct Sim {
    pub world: Arc<Mutex<World>>,
    pub addr: std::net::SocketAddr,
    /// Readiness and liveness as `/readyz` and `/healthz` report them.
    pub health: Health,
    /// Where the allocator service listens, when configured.
    pub allocator_service: Option<std::net::SocketAddr>,
}

impl Sim {
    /// Builds the world from `cfg`, starts its controllers and serves on `listener` until
    /// `shutdown` is cancelled. Returns once the world is built; serving runs on a spawned task
    /// whose handle is returned so callers can await the stop. The task ends `Ok` after a
    /// requested stop and with the error otherwise; either way it cancels `shutdown`, which
    /// stops the controllers and every game port.
    pub fn start(
        cfg: SimConfig,
        listener: TcpListener,
        shutdown: CancellationToken,
        seed: u64,
    ) -> Result<(Sim, JoinHandle<Result<()>>)> {
        Sim::start_with(cfg, listener, shutdown, seed, default_limits())
    }

    /// [`Sim::start`] within `limits`.
    pub fn start_with(
        cfg: SimConfig,
        listener: TcpListener,
        shutdown: CancellationToken,
        seed: u64,
        limits: Limits,
    ) -> Result<(Sim, JoinHandle<Result<()>>)> {
        let addr = listener.local_addr().map_err(Error::ListenerAddress)?;
        let cfg = Arc::new(cfg);
        let pool = PortPool::new(cfg.game.port_min, cfg.game.port_max).map_err(Error::GamePorts)?;
        let metrics = SimMetrics::default();
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        let world = World::new(cfg.clone(), metrics, seed);
        let allocator = world.allocator().clone();
        let world = Arc::new(Mutex::new(world));
        World::attach_game_runtime(&world, Arc::new(pool), shutdown.clone());
        let gauges: Arc<dyn GaugeSource> = world.clone();
        registry.register_collector(Box::new(GaugeCollector(gauges)));
        registry.register_collector(Box::new(ProcessCollector));
        let server_metrics = ServerMetrics::new("sim");
        server_metrics.register(&mut registry, "upsoak_sim");
        let health = Health::new();
        let api_state = ApiState {
            world: world.clone(),
            allocator,
            shutdown: shutdown.clone(),
        };
        let allocator_service = match &cfg.allocator_service {
            None => None,
            Some(spec) => {
                let (listener, material) =
                    crate::allocator_service::bind(spec).map_err(Error::AllocatorService)?;
                let bound = listener
                    .local_addr()
                    .map_err(|e| Error::AllocatorService(e.to_string()))?;
                crate::allocator_service::serve(
                    spec.clone(),
                    listener,
                    material,
                    api_state.clone(),
                    cfg.namespace.clone(),
                    shutdown.clone(),
                )
                .map_err(Error::AllocatorService)?;
                Some(bound)
            }
        };
        let app = router(addr, world.clone(), registry, health.clone(), api_state);
        let ticker = tokio::spawn(run_controllers(
            world.clone(),
            cfg.lifecycle.tick,
            shutdown.clone(),
            health.clone(),
        ));
        let serving = health.clone();
        let handle = tokio::spawn(async move {
            // The world is built and the listener bound: from the first accept on, answers
            // come from a complete world.
            events::Serving { addr: &addr }.emit();
            serving.mark_ready();
            let served = upsoak_common::server::serve(
                listener,
                app,
                limits,
                server_metrics,
                shutdown.clone(),
            )
            .await;
            serving.mark_not_ready();
            if let Err(e) = &served {
                events::ServerFailed { error: e }.emit();
                serving.fail(format!("serving failed: {e}"));
            }
            shutdown.cancel();
            let controllers = ticker.await.map_err(Error::Task)?;
            served.map_err(Error::Serve)?;
            controllers
        });
        Ok((
            Sim {
                world,
                addr,
                health,
                allocator_service,
            },
            handle,
        ))
    }
}

/// The controllers: one tick every `period` on fixed slots until shutdown. A poisoned world
/// stops them and the simulator: nothing it answers could be trusted any more.
async fn run_controllers(
    world: Arc<Mutex<World>>,
    period: Duration,
    shutdown: CancellationToken,
    health: Health,
) -> Result<()> {
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = interval.tick() => {
                match world.lock() {
                    Ok(mut w) => w.tick(Instant::now()),
                    Err(_) => {
                        events::ControllersStopped.emit();
                        health.fail(Error::Poisoned.to_string());
                        shutdown.cancel();
                        return Err(Error::Poisoned);
                    }
                }
            }
        }
    }
}

fn router(
    listen: std::net::SocketAddr,
    world: Arc<Mutex<World>>,
    registry: Registry,
    health: Health,
    api_state: ApiState,
) -> Router {
    let control = Router::new()
        .route(INSTALLED_PATH, get(installed))
        .route(INSTALL_PATH, axum::routing::post(install))
        .with_state(world);
    api::router(api_state)
        .merge(control)
        .merge(ops::router(registry, health))
        .fallback(|req: Request| async move { ApiError::no_route(req.uri().path()) })
        .layer(axum::middleware::from_fn(require_json))
        .layer(axum::middleware::from_fn_with_state(
            listen,
            require_own_origin,
        ))
}

/// A write (POST, PUT, PATCH, DELETE) must come from the simulator's own origin and, when it
/// listens on loopback, be addressed to a loopback name: 403 with a Status otherwise
/// ([`api::origin::check`], M9). Reads are not checked.
async fn require_own_origin(
    State(listen): State<std::net::SocketAddr>,
    req: Request,
    next: axum::middleware::Next,
) -> Response {
    if !api::origin::is_write(req.method()) {
        return next.run(req).await;
    }
    let verdict = {
        let headers = req.headers();
        let header = |name: axum::http::HeaderName| {
            headers
                .get(name)
                .map(|v| v.to_str().unwrap_or("<not text>"))
        };
        api::origin::check(
            listen,
            header(axum::http::header::HOST),
            header(axum::http::header::ORIGIN),
        )
    };
    match verdict {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

/// The simulator's server limits by default: watches hold a connection each, so more
/// connections than the agent's; headers within 30 s, as the Kubernetes API server's
/// `ReadHeaderTimeout` (32 s).
pub fn default_limits() -> Limits {
    Limits {
        header_read_timeout: Duration::from_secs(30),
        ..Limits::default()
    }
}

/// Whether `content_type` names JSON (`application/json`, any parameters, any case).
fn is_json(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
}

/// POST and PUT bodies must be `application/json`: 415 otherwise, as the API server answers an
/// unknown media type. A request without a `Content-Type` is read as JSON, as the API server
/// reads it as its first serializer's (k8s.io/apiserver `pkg/endpoints/handlers/negotiation/
/// negotiate.go`, `NegotiateInputSerializerForMediaType`): Python's official client sends custom
/// objects so. A browser's form always names its type (`text/plain`, form-urlencoded,
/// multipart), and is refused.
async fn require_json(req: Request, next: axum::middleware::Next) -> Response {
    let method = req.method();
    if method != axum::http::Method::POST && method != axum::http::Method::PUT {
        return next.run(req).await;
    }
    let ct = req
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    if ct.is_empty() || is_json(&ct) {
        return next.run(req).await;
    }
    ApiError {
        code: 415,
        reason: "UnsupportedMediaType",
        message: format!("the body of a {method} request must be application/json (got `{ct}`)"),
        kind: None,
        name: None,
        causes: Vec::new(),
    }
    .into_response()
}

fn installed_doc(w: &World) -> serde_json::Value {
    let i = w.installed();
    let faults: Vec<serde_json::Value> = w
        .config()
        .faults
        .iter()
        .map(|f| json!({"name": f.name, "kind": f.kind.name(), "active": w.fault_active(f)}))
        .collect();
    json!({
        "version": i.spec.version,
        "featureGates": to_query(&i.gates),
        "gates": i.gates,
        "tunables": i.spec.tunables,
        "since": i.since.to_string(),
        "upgrading": w.upgrading().map(|u| json!({
            "version": u.spec.version,
            "featureGates": to_query(&u.gates),
        })),
        "faults": faults,
    })
}

async fn installed(State(world): State<Arc<Mutex<World>>>) -> Response {
    match world.lock() {
        Ok(w) => axum::Json(installed_doc(&w)).into_response(),
        Err(_) => ApiError::internal("simulator state lock poisoned").into_response(),
    }
}

/// `POST /upsoak/v1/install {version, featureGates, tunables}`: 202 with the target, 422 with
/// every reason the chart would refuse it, 409 while another install is in progress.
async fn install(State(world): State<Arc<Mutex<World>>>, body: Bytes) -> Response {
    let spec: Install = match serde_json::from_slice::<serde_json::Value>(&body) {
        Err(e) => {
            return ApiError::bad_request(format!("the request body is not valid JSON: {e}"))
                .into_response();
        }
        Ok(v) => match serde_path_to_error::deserialize(v) {
            Ok(s) => s,
            Err(e) => {
                return ApiError::invalid(
                    "install",
                    "",
                    vec![Cause {
                        field: e.path().to_string(),
                        message: e.inner().to_string(),
                    }],
                )
                .into_response();
            }
        },
    };
    let Ok(mut w) = world.lock() else {
        return ApiError::internal("simulator state lock poisoned").into_response();
    };
    match w.install(spec) {
        Ok(target) => (
            StatusCode::ACCEPTED,
            axum::Json(json!({
                "version": target.spec.version,
                "featureGates": to_query(&target.gates),
                "upgradeWindowSeconds": w.config().upgrade_window.as_secs_f64(),
            })),
        )
            .into_response(),
        Err(e) => install_refused(&e).into_response(),
    }
}

/// The API's answer to a refused install: 409 while one is in progress, 422 with a cause per
/// problem when it is invalid.
fn install_refused(e: &InstallError) -> ApiError {
    let (code, reason, causes) = match e {
        InstallError::InProgress => (409, "Conflict", Vec::new()),
        InstallError::Invalid(problems) => (
            422,
            "Invalid",
            problems
                .iter()
                .map(|p| Cause {
                    field: p.path.clone(),
                    message: p.message.clone(),
                })
                .collect(),
        ),
    };
    ApiError {
        code,
        reason,
        message: e.to_string(),
        kind: None,
        name: None,
        causes,
    }
}
