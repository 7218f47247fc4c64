//! The Kubernetes API the simulator serves: discovery, `agones.dev/v1` Fleets and GameServers,
//! `allocation.agones.dev/v1` GameServerAllocations, `apps/v1` Deployments and `v1` Services of Agones, with
//! list, watch, get, create, update, patch, delete and the `scale` subresource.
//!
//! Shapes follow the real API server closely enough for kube-rs and an unmodified
//! `kubectl --server URL`: `Status` errors, resourceVersions, watch streams of JSON lines,
//! and `Table` answers when kubectl asks for them.
//!
//! - [`discovery`]: `/version`, namespaces, API groups and resources, OpenAPI v3.
//! - [`openapi_v2`]: the Swagger 2.0 document older kubectls validate with.
//! - [`request`]: query parameters, selectors, request bodies and patches.
//! - [`pages`]: `limit` and `continue`.
//! - [`table`]: kubectl's `Table` answers.
//! - [`fleets`], [`gameservers`]: their handlers (list and get shared through [`Served`]).
//! - [`allocation`]: `GameServerAllocation` create.
//! - [`deployments`]: the Agones control plane's Deployments.
//! - [`services`]: the chart's LoadBalancer Services, with the ingress `helm --wait` waits for.
//! - [`access`]: `SelfSubjectAccessReview`, answered as for a cluster admin.
//! - [`watch`]: watch streams.

pub mod access;
pub(crate) mod allocation;
mod deployments;
mod discovery;
mod fleets;
mod gameservers;
mod openapi_v2;
pub mod origin;
mod pages;
mod request;
mod services;
mod table;
mod watch;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use upsoak_agones::{Fleet, GameServer};

use crate::selector::Selector;
use crate::status::ApiError;
use crate::world::{Allocator, Watched, World};

use request::{list_query, wants_table};
// The parsers of request bodies, public for the fuzz targets (`fuzz/`).
pub use request::{
    MAX_PATCH_OPERATIONS, MAX_PATCHED_DEPTH, MAX_PATCHED_WEIGHT, MAX_PATCHES_IN_FLIGHT, PatchType,
    apply_patch, bounded_yaml, decode_value, parse_body,
};
use table::table;
pub use watch::MAX_WATCHES;

/// What every handler shares.
#[derive(Clone)]
pub struct ApiState {
    pub world: Arc<Mutex<World>>,
    /// Allocation's share of the world, used without the world's lock.
    pub allocator: Arc<Allocator>,
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
        // The Kubernetes API server serves the discovery roots with a trailing slash too, with
        // the same body: each is a go-restful WebService on the root path with a `GET("/")`
        // route (k8s.io/apiserver `pkg/endpoints/discovery/{version.go,legacy.go,root.go}`).
        .route("/version", get(discovery::version))
        .route("/version/", get(discovery::version))
        .route("/api", get(discovery::core_versions))
        .route("/api/", get(discovery::core_versions))
        .route("/api/v1", get(discovery::core_resources))
        .route("/api/v1/namespaces", get(discovery::namespaces))
        .route("/api/v1/namespaces/{ns}", get(discovery::namespace))
        .route("/apis", get(discovery::groups))
        .route("/apis/", get(discovery::groups))
        .route("/openapi/v2", get(openapi_v2::openapi_v2))
        .route("/openapi/v3", get(discovery::openapi_root))
        .route(
            "/openapi/v3/apis/{group}/{version}",
            get(discovery::openapi_group),
        )
        .route("/apis/{group}", get(discovery::group))
        .route("/apis/{group}/{version}", get(discovery::resources))
        .route(&format!("{agones}/fleets"), get(list_all::<Fleet>))
        .route(
            &format!("{agones}/namespaces/{{ns}}/fleets"),
            get(list::<Fleet>).post(fleets::create_fleet),
        )
        .route(
            &format!("{agones}/namespaces/{{ns}}/fleets/{{name}}"),
            get(get_one::<Fleet>)
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
            get(list_all::<GameServer>),
        )
        .route(
            &format!("{agones}/namespaces/{{ns}}/gameservers"),
            get(list::<GameServer>),
        )
        .route(
            &format!("{agones}/namespaces/{{ns}}/gameservers/{{name}}"),
            get(get_one::<GameServer>).delete(gameservers::delete_gameserver),
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
        .route("/api/v1/services", get(services::list_all_services))
        .route(
            "/api/v1/namespaces/{ns}/services",
            get(services::list_services),
        )
        .route(
            "/api/v1/namespaces/{ns}/services/{name}",
            get(services::get_service),
        )
        .route(
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            post(access::self_subject_access_review),
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
    metadata: pages::PageMeta,
    items: &'a [T],
}

impl<'a, T> List<'a, T> {
    pub(super) fn new(kind: &'static str, metadata: pages::PageMeta, items: &'a [T]) -> Self {
        List {
            kind,
            api_version: "agones.dev/v1",
            metadata,
            items,
        }
    }
}

/// A kind served with list, watch and get by the generic handlers below: Fleets
/// ([`fleets`]) and GameServers ([`gameservers`]).
pub(super) trait Served: Watched + DeserializeOwned + Send + Sync + 'static {
    /// The `kind` of a list of these, e.g. `FleetList`.
    const LIST_KIND: &'static str;
    /// The objects in `ns` (or every namespace) whose labels match `labels`.
    fn list(w: &World, ns: Option<&str>, labels: &Selector) -> Vec<Self>;
    /// One object, or 404.
    fn get(w: &World, ns: &str, name: &str) -> Result<Self, ApiError>;
    /// Its row in kubectl's table.
    fn row(&self) -> Value;
}

/// `GET …/{kind}` across namespaces.
async fn list_all<T: Served>(s: State<ApiState>, h: HeaderMap, p: Params) -> ApiResult {
    list_in::<T>(s.0, None, &h, &p.0)
}

/// `GET …/namespaces/{ns}/{kind}`.
async fn list<T: Served>(
    s: State<ApiState>,
    Path(ns): Path<String>,
    h: HeaderMap,
    p: Params,
) -> ApiResult {
    list_in::<T>(s.0, Some(ns), &h, &p.0)
}

/// A list, a table or (with `watch=true`) a watch of `T` in `ns`.
fn list_in<T: Served>(
    s: ApiState,
    ns: Option<String>,
    h: &HeaderMap,
    p: &HashMap<String, String>,
) -> ApiResult {
    let q = list_query(p, T::FIELDS)?;
    let as_table = wants_table(h);
    if q.watch {
        return watch::watch::<T>(s, ns, q, as_table);
    }
    let all_namespaces = ns.is_none();
    let unfiltered = q.labels == Selector::default() && q.fields == Default::default();
    let (items, meta) = {
        let w = s.lock()?;
        let cursor = match pages::cursor(
            q.continue_token.as_deref(),
            q.resource_version.as_deref(),
            w.resource_version(),
            |rv| w.events_since(rv).is_some(),
        ) {
            Ok(c) => c,
            Err(refused) => return Ok(refused.into_response()),
        };
        let items: Vec<(String, T)> = T::list(&w, ns.as_deref(), &q.labels)
            .into_iter()
            .filter(|o| q.fields.matches(|k| o.field(k)))
            .map(|o| {
                let m = o.meta();
                let k = pages::key(all_namespaces, m.namespace.as_deref(), m.name.as_deref());
                (k, o)
            })
            .collect();
        pages::page(items, &cursor, q.limit, unfiltered)
    };
    if as_table {
        return ok(&table(T::KIND, items.iter().map(T::row).collect(), meta));
    }
    ok(&List::new(T::LIST_KIND, meta, &items))
}

/// `GET …/namespaces/{ns}/{kind}/{name}`: the object, or its one-row table.
async fn get_one<T: Served>(
    State(s): State<ApiState>,
    Path((ns, name)): Path<(String, String)>,
    h: HeaderMap,
) -> ApiResult {
    let (o, rv) = {
        let w = s.lock()?;
        (T::get(&w, &ns, &name)?, w.resource_version())
    };
    if wants_table(&h) {
        return ok(&table(
            T::KIND,
            vec![o.row()],
            serde_json::json!({"resourceVersion": rv.to_string()}),
        ));
    }
    ok(&o)
}
