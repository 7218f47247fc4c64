//! The Kubernetes API the simulator serves: discovery, `agones.dev/v1` Fleets and GameServers,
//! `allocation.agones.dev/v1` GameServerAllocations, `apps/v1` Deployments of Agones, with
//! list, watch, get, create, update, patch, delete and the `scale` subresource.
//!
//! Shapes follow the real API server closely enough for kube-rs and an unmodified
//! `kubectl --server URL`: `Status` errors, resourceVersions, watch streams of JSON lines,
//! and `Table` answers when kubectl asks for them.
//!
//! - [`discovery`]: `/version`, namespaces, API groups and resources, OpenAPI v3.
//! - [`request`]: query parameters, selectors, request bodies and patches.
//! - [`table`]: kubectl's `Table` answers.
//! - [`fleets`], [`gameservers`]: their handlers (list and get shared through [`Served`]).
//! - [`allocation`]: `GameServerAllocation` create.
//! - [`deployments`]: the Agones control plane's Deployments.
//! - [`watch`]: watch streams.

mod allocation;
mod deployments;
mod discovery;
mod fleets;
mod gameservers;
mod request;
mod table;
mod watch;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::Query;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio_util::sync::CancellationToken;

use crate::status::ApiError;
use crate::world::World;

/// What every handler shares.
#[derive(Clone)]
pub struct ApiState {
    pub world: Arc<Mutex<World>>,
    pub shutdown: CancellationToken,
}

pub(crate) type ApiResult = Result<Response, ApiError>;
pub(super) type Params = Query<HashMap<String, String>>;

impl ApiState {
    pub(super) fn lock(&self) -> Result<std::sync::MutexGuard<'_, World>, ApiError> {
        self.world
            .lock()
            .map_err(|_| ApiError::internal("simulator state lock poisoned"))
    }
}

/// The Kubernetes API routes.
pub fn router(state: ApiState) -> Router {
    let agones = "/apis/agones.dev/v1";
    Router::new()
        .route("/version", get(discovery::version))
        .route("/api", get(discovery::core_versions))
        .route("/api/v1", get(discovery::core_resources))
        .route("/api/v1/namespaces", get(discovery::namespaces))
        .route("/api/v1/namespaces/{ns}", get(discovery::namespace))
        .route("/apis", get(discovery::groups))
        .route("/openapi/v3", get(discovery::openapi_root))
        .route(
            "/openapi/v3/apis/{group}/{version}",
            get(discovery::openapi_group),
        )
        .route("/apis/{group}", get(discovery::group))
        .route("/apis/{group}/{version}", get(discovery::resources))
        .route(&format!("{agones}/fleets"), get(fleets::list_all_fleets))
        .route(
            &format!("{agones}/namespaces/{{ns}}/fleets"),
            get(fleets::list_fleets).post(fleets::create_fleet),
        )
        .route(
            &format!("{agones}/namespaces/{{ns}}/fleets/{{name}}"),
            get(fleets::get_fleet)
                .put(fleets::replace_fleet)
                .patch(fleets::patch_fleet)
                .delete(fleets::delete_fleet),
        )
        .route(
            &format!("{agones}/namespaces/{{ns}}/fleets/{{name}}/scale"),
            get(fleets::get_scale)
                .put(fleets::replace_scale)
                .patch(fleets::patch_scale),
        )
        .route(
            &format!("{agones}/gameservers"),
            get(gameservers::list_all_gameservers),
        )
        .route(
            &format!("{agones}/namespaces/{{ns}}/gameservers"),
            get(gameservers::list_gameservers),
        )
        .route(
            &format!("{agones}/namespaces/{{ns}}/gameservers/{{name}}"),
            get(gameservers::get_gameserver).delete(gameservers::delete_gameserver),
        )
        .route(
            "/apis/allocation.agones.dev/v1/namespaces/{ns}/gameserverallocations",
            post(allocation::allocate),
        )
        .route(
            "/apis/apps/v1/deployments",
            get(deployments::list_all_deployments),
        )
        .route(
            "/apis/apps/v1/namespaces/{ns}/deployments",
            get(deployments::list_deployments),
        )
        .route(
            "/apis/apps/v1/namespaces/{ns}/deployments/{name}",
            get(deployments::get_deployment),
        )
        .method_not_allowed_fallback(|| async {
            ApiError::method_not_allowed("this verb is not served by upsoak-sim")
        })
        .with_state(state)
}

pub(super) fn json_response(code: StatusCode, v: &impl serde::Serialize) -> Response {
    match serde_json::to_string(v) {
        Ok(body) => (code, [(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => ApiError::internal(format!("encoding response: {e}")).into_response(),
    }
}

pub(super) fn ok(v: &impl serde::Serialize) -> ApiResult {
    Ok(json_response(StatusCode::OK, v))
}

/// A list answer, serialized straight from the items: a 10,000-item list never becomes a
/// `serde_json::Value` tree.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct List<'a, T> {
    kind: &'static str,
    api_version: &'static str,
    metadata: ListMeta,
    items: &'a [T],
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct ListMeta {
    resource_version: String,
}

impl<'a, T> List<'a, T> {
    pub(super) fn new(kind: &'static str, rv: u64, items: &'a [T]) -> Self {
        List {
            kind,
            api_version: "agones.dev/v1",
            metadata: ListMeta {
                resource_version: rv.to_string(),
            },
            items,
        }
    }
}
