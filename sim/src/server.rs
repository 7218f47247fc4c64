//! Assembles the simulator: the world, its controller loop, the Kubernetes API, the control
//! endpoint that installs versions, `/metrics`, `/healthz` and `/readyz`, on one listener.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::registry::Registry;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use upsoak_common::exposition;
use upsoak_common::process::ProcessCollector;

use crate::api::{self, ApiState};
use crate::config::{InstallSpec, SimConfig, gate_query};
use crate::game::PortPool;
use crate::metrics::{SimMetrics, WorldCollector};
use crate::status::{ApiError, Cause};
use crate::world::World;

/// Path of the control endpoint that installs a version (what `helm upgrade` does).
pub const INSTALL_PATH: &str = "/upsoak/v1/install";
/// Path that reports what is installed.
pub const INSTALLED_PATH: &str = "/upsoak/v1/installed";

#[derive(Clone)]
struct AppState {
    world: Arc<Mutex<World>>,
    registry: Arc<Registry>,
}

/// A running simulator.
pub struct Sim {
    pub world: Arc<Mutex<World>>,
    pub addr: std::net::SocketAddr,
}

impl Sim {
    /// Builds the world from `cfg`, starts its controllers and serves on `listener` until
    /// `shutdown` is cancelled. Returns once serving; `serve` runs on a spawned task whose
    /// handle is returned so callers can await a clean stop.
    pub fn start(
        cfg: SimConfig,
        listener: TcpListener,
        shutdown: CancellationToken,
        seed: u64,
    ) -> std::io::Result<(Sim, tokio::task::JoinHandle<()>)> {
        let addr = listener.local_addr()?;
        let cfg = Arc::new(cfg);
        let metrics = SimMetrics::default();
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        let world = World::new(cfg.clone(), metrics, seed);
        let allocator = world.allocator().clone();
        let world = Arc::new(Mutex::new(world));
        let pool = PortPool::new(cfg.game.port_min, cfg.game.port_max)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
        World::attach_game_runtime(&world, Arc::new(pool));
        registry.register_collector(Box::new(WorldCollector(world.clone())));
        registry.register_collector(Box::new(ProcessCollector));
        let app = router(
            AppState {
                world: world.clone(),
                registry: Arc::new(registry),
            },
            ApiState {
                world: world.clone(),
                allocator,
                shutdown: shutdown.clone(),
            },
        );
        let ticker = tokio::spawn(run_controllers(
            world.clone(),
            cfg.lifecycle.tick,
            shutdown.clone(),
        ));
        let stop = shutdown.clone();
        let handle = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "server stopped");
            }
            shutdown.cancel();
            let _ = ticker.await;
        });
        Ok((Sim { world, addr }, handle))
    }
}

/// The controllers: one tick every `period` on fixed slots until shutdown.
async fn run_controllers(world: Arc<Mutex<World>>, period: Duration, shutdown: CancellationToken) {
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = interval.tick() => {
                match world.lock() {
                    Ok(mut w) => w.tick(Instant::now()),
                    Err(_) => {
                        tracing::error!("world lock poisoned; controllers stop");
                        return;
                    }
                }
            }
        }
    }
}

fn router(app: AppState, api_state: ApiState) -> Router {
    let control = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(|| async { "ok\n" }))
        .route(INSTALLED_PATH, get(installed))
        .route(INSTALL_PATH, axum::routing::post(install))
        .with_state(app);
    api::router(api_state)
        .merge(control)
        .fallback(|req: Request| async move { ApiError::no_route(req.uri().path()) })
}

async fn metrics(State(app): State<AppState>, headers: HeaderMap) -> Response {
    exposition::response(&app.registry, &headers)
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
        "featureGates": gate_query(&i.gates),
        "gates": i.gates,
        "tunables": i.spec.tunables,
        "since": i.since.to_string(),
        "upgrading": w.upgrading().map(|u| json!({
            "version": u.spec.version,
            "featureGates": gate_query(&u.gates),
        })),
        "faults": faults,
    })
}

async fn installed(State(app): State<AppState>) -> Response {
    match app.world.lock() {
        Ok(w) => axum::Json(installed_doc(&w)).into_response(),
        Err(_) => ApiError::internal("simulator state lock poisoned").into_response(),
    }
}

/// `POST /upsoak/v1/install {version, featureGates, tunables}`: 202 with the target, 422 with
/// every reason the chart would refuse it, 409 while another install is in progress.
async fn install(State(app): State<AppState>, body: Bytes) -> Response {
    let spec: InstallSpec = match serde_json::from_slice::<serde_json::Value>(&body) {
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
    let Ok(mut w) = app.world.lock() else {
        return ApiError::internal("simulator state lock poisoned").into_response();
    };
    let in_progress = w.in_upgrade_window();
    match w.install(spec) {
        Ok(target) => (
            StatusCode::ACCEPTED,
            axum::Json(json!({
                "version": target.spec.version,
                "featureGates": gate_query(&target.gates),
                "upgradeWindowSeconds": w.config().upgrade_window.as_secs_f64(),
            })),
        )
            .into_response(),
        Err(reasons) if in_progress => ApiError {
            code: 409,
            reason: "Conflict",
            message: reasons.join("; "),
            kind: None,
            name: None,
            causes: Vec::new(),
        }
        .into_response(),
        Err(reasons) => {
            let causes: Vec<Cause> = reasons
                .iter()
                .map(|r| {
                    let (field, message) = r.split_once(": ").unwrap_or(("", r));
                    Cause {
                        field: field.to_owned(),
                        message: message.to_owned(),
                    }
                })
                .collect();
            let e = ApiError {
                code: 422,
                reason: "Invalid",
                message: format!("the install is invalid: {}", reasons.join("; ")),
                kind: None,
                name: None,
                causes,
            };
            e.into_response()
        }
    }
}
