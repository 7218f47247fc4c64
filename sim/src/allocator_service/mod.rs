//! `agones-allocator`'s mTLS endpoint: the REST allocation API ([`rest`]) over TLS on a
//! listener of its own, requiring a client certificate from the current client CA, doing the
//! Kubernetes API path's allocation (`api/allocation.rs`).
//!
//! Like the chart with `generateTLS`/`generateClientTLS` on (the default), every install
//! issues a new CA, server certificate and client certificate ([`certs`]) when its upgrade
//! window opens; with [`AllocatorServiceSpec::generate_tls`] off, the set made at start stays
//! (the chart's `generateTLS: false` with certificates given in the values, which an operator
//! sets once for the whole soak, so it is a simulator setting rather than an install value).
//! Each window also restarts the allocator's pods: open connections are closed, and until the
//! window closes allocations answer `UNAVAILABLE` like the other Agones components. The
//! current client material is written as the mounted Secret `allocator-client.default` would
//! be: `tls.crt`, `tls.key` and `tls-ca.crt` (the `allocator-tls-ca` a client trusts the
//! server with) in [`AllocatorServiceSpec::client_dir`], each replaced atomically.

pub mod certs;
pub mod rest;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use upsoak_agones::GameServerAllocation;

use crate::api::ApiState;
use crate::world::World;
use certs::Material;
use rest::{AllocationRequest, INTERNAL, INVALID_ARGUMENT, RestError};

/// Path of the REST allocation endpoint (Agones' gateway route).
pub const ALLOCATE_PATH: &str = "/gameserverallocation";
/// Largest allocation response read back from the API path.
const MAX_BODY: usize = 4 << 20;
/// How often the service looks for a new upgrade window.
const WATCH_EVERY: Duration = Duration::from_millis(20);

/// `allocator_service:` in the simulator's config; absent: no allocator service.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AllocatorServiceSpec {
    /// Where to serve TLS, e.g. `127.0.0.1:8443` (loopback unless the simulator's
    /// `--allow-remote`, checked at start like the API's address).
    pub listen: String,
    /// Where the current `allocator-client.default` material is written.
    pub client_dir: PathBuf,
    /// The chart's `generateTLS`/`generateClientTLS`: new certificates on every install
    /// (default, as the chart); `false` keeps the ones made at start.
    #[serde(default = "yes")]
    pub generate_tls: bool,
    /// Names the server certificate is for.
    #[serde(default = "default_names")]
    pub names: Vec<String>,
}

fn yes() -> bool {
    true
}
fn default_names() -> Vec<String> {
    vec!["localhost".to_owned(), "127.0.0.1".to_owned()]
}

/// The running service's shared state.
#[derive(Clone)]
struct Service {
    api: ApiState,
    namespace: String,
}

/// Writes `text` to `dir/name` atomically (a temporary file renamed over it).
fn write_atomic(dir: &Path, name: &str, text: &str) -> std::io::Result<()> {
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, dir.join(name))
}

/// Writes the client's material as the mounted Secret has it.
pub fn publish(dir: &Path, m: &Material) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    write_atomic(dir, "tls-ca.crt", &m.ca_pem)?;
    write_atomic(dir, "tls.key", &m.client_key_pem)?;
    write_atomic(dir, "tls.crt", &m.client_cert_pem)
}

/// The material in use and the token that closes the connections made with it.
struct Current {
    material: Arc<Material>,
    pods: CancellationToken,
}

/// Binds the service's listener, makes and publishes the first material. Serving starts with
/// [`serve`].
pub fn bind(spec: &AllocatorServiceSpec) -> Result<(std::net::TcpListener, Material), String> {
    let listener = std::net::TcpListener::bind(&spec.listen).map_err(|e| {
        format!(
            "allocator_service.listen: cannot listen on `{}`: {e}",
            spec.listen
        )
    })?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("allocator_service.listen: {e}"))?;
    let material = certs::generate(&spec.names).map_err(|e| e.to_string())?;
    publish(&spec.client_dir, &material).map_err(|e| {
        format!(
            "allocator_service.client_dir: cannot write `{}`: {e}",
            spec.client_dir.display()
        )
    })?;
    Ok((listener, material))
}

/// Serves until `shutdown`: accepts TLS connections with the current material, and rotates
/// it when an upgrade window opens.
pub fn serve(
    spec: AllocatorServiceSpec,
    listener: std::net::TcpListener,
    material: Material,
    api: ApiState,
    namespace: String,
    shutdown: CancellationToken,
) -> Result<JoinHandle<()>, String> {
    let listener =
        TcpListener::from_std(listener).map_err(|e| format!("allocator_service: {e}"))?;
    let current = Arc::new(RwLock::new(Current {
        material: Arc::new(material),
        pods: shutdown.child_token(),
    }));
    let world = api.world.clone();
    let app = Router::new()
        .route(ALLOCATE_PATH, axum::routing::post(allocate))
        .with_state(Service { api, namespace });
    tokio::spawn(watch_installs(
        spec,
        world,
        current.clone(),
        shutdown.clone(),
    ));
    Ok(tokio::spawn(accept(listener, app, current, shutdown)))
}

async fn accept(
    listener: TcpListener,
    app: Router,
    current: Arc<RwLock<Current>>,
    shutdown: CancellationToken,
) {
    loop {
        let (tcp, _) = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "allocator service: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let (config, pods) = {
            let c = current
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            (c.material.server.clone(), c.pods.clone())
        };
        let app = app.clone();
        tokio::spawn(async move {
            let acceptor = tokio_rustls::TlsAcceptor::from(config);
            let tls = tokio::select! {
                _ = pods.cancelled() => return,
                r = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)) => match r {
                    Ok(Ok(s)) => s,
                    // A client without a certificate from the current client CA, or not
                    // trusting this server: refused in the handshake.
                    Ok(Err(e)) => {
                        tracing::debug!(error = %e, "allocator service: TLS handshake refused");
                        return;
                    }
                    Err(_) => return,
                },
            };
            let service = TowerToHyperService::new(app);
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                // The allocator's pods restart with the install: its connections end.
                _ = pods.cancelled() => {}
            }
        });
    }
}

/// Looks for each new upgrade window; on one, closes the open connections and (with
/// `generate_tls`) issues and publishes a new set of certificates.
async fn watch_installs(
    spec: AllocatorServiceSpec,
    world: Arc<Mutex<World>>,
    current: Arc<RwLock<Current>>,
    shutdown: CancellationToken,
) {
    let mut seen = None;
    let mut every = tokio::time::interval(WATCH_EVERY);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = every.tick() => {}
        }
        let window = match world.lock() {
            Ok(w) => w.upgrading().map(|i| i.since),
            Err(_) => return,
        };
        let Some(since) = window else { continue };
        if seen == Some(since) {
            continue;
        }
        seen = Some(since);
        let material = if spec.generate_tls {
            match certs::generate(&spec.names) {
                Ok(m) => {
                    if let Err(e) = publish(&spec.client_dir, &m) {
                        tracing::warn!(error = %e, dir = %spec.client_dir.display(), "allocator service: cannot publish the client material");
                    }
                    Some(Arc::new(m))
                }
                Err(e) => {
                    tracing::warn!(error = %e, "allocator service: cannot rotate certificates");
                    None
                }
            }
        } else {
            None
        };
        let mut c = current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        c.pods.cancel();
        c.pods = shutdown.child_token();
        if let Some(m) = material {
            c.material = m;
        }
        tracing::info!(
            rotated = spec.generate_tls,
            "allocator service: install started; connections closed"
        );
    }
}

/// `POST /gameserverallocation`: the request converted to a `GameServerAllocation`, allocated
/// as the Kubernetes API path does, the result converted back.
async fn allocate(State(s): State<Service>, body: Bytes) -> Response {
    let req: AllocationRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return RestError::new(INVALID_ARGUMENT, format!("invalid AllocationRequest: {e}"))
                .into_response();
        }
    };
    let gsa = match rest::to_gsa(&req) {
        Ok(g) => g,
        Err(e) => return e.into_response(),
    };
    let ns = if req.namespace.is_empty() {
        s.namespace.clone()
    } else {
        req.namespace.clone()
    };
    let body = match serde_json::to_vec(&gsa) {
        Ok(b) => Bytes::from(b),
        Err(e) => return RestError::new(INTERNAL, e.to_string()).into_response(),
    };
    let answer = crate::api::allocation::allocate(State(s.api.clone()), UrlPath(ns), body).await;
    let created = match answer {
        Ok(r) => r,
        Err(e) => return RestError::from_http(e.code, e.message).into_response(),
    };
    let bytes = match axum::body::to_bytes(created.into_body(), MAX_BODY).await {
        Ok(b) => b,
        Err(e) => return RestError::new(INTERNAL, e.to_string()).into_response(),
    };
    let gsa: GameServerAllocation = match serde_json::from_slice(&bytes) {
        Ok(g) => g,
        Err(e) => return RestError::new(INTERNAL, e.to_string()).into_response(),
    };
    match rest::to_response(&gsa) {
        Ok(r) => axum::Json(r).into_response(),
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests;
