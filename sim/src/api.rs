//! The Kubernetes API the simulator serves: discovery, `agones.dev/v1` Fleets and GameServers,
//! `allocation.agones.dev/v1` GameServerAllocations, `apps/v1` Deployments of Agones, with
//! list, watch, get, create, update, patch, delete and the `scale` subresource.
//!
//! Shapes follow the real API server closely enough for kube-rs and an unmodified
//! `kubectl --server URL`: `Status` errors, resourceVersions, watch streams of JSON lines,
//! and `Table` answers when kubectl asks for them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use upsoak_agones::{
    AllocationState, FLEET_LABEL, Fleet, GameServer, GameServerAllocation,
    GameServerAllocationStatus, GameServerState,
};

use crate::selector::{FieldSelector, Selector};
use crate::status::{ApiError, Cause};
use crate::world::{Kind, WatchEvent, World};

/// What every handler shares.
#[derive(Clone)]
pub struct ApiState {
    pub world: Arc<Mutex<World>>,
    pub shutdown: CancellationToken,
}

type ApiResult = Result<Response, ApiError>;
type Params = Query<HashMap<String, String>>;

impl ApiState {
    fn lock(&self) -> Result<std::sync::MutexGuard<'_, World>, ApiError> {
        self.world
            .lock()
            .map_err(|_| ApiError::internal("simulator state lock poisoned"))
    }
}

/// The Kubernetes API routes.
pub fn router(state: ApiState) -> Router {
    let agones = "/apis/agones.dev/v1";
    Router::new()
        .route("/version", get(version))
        .route("/api", get(core_versions))
        .route("/api/v1", get(core_resources))
        .route("/api/v1/namespaces", get(namespaces))
        .route("/api/v1/namespaces/{ns}", get(namespace))
        .route("/apis", get(groups))
        .route("/openapi/v3", get(openapi_root))
        .route("/openapi/v3/apis/{group}/{version}", get(openapi_group))
        .route("/apis/{group}", get(group))
        .route("/apis/{group}/{version}", get(resources))
        .route(&format!("{agones}/fleets"), get(list_all_fleets))
        .route(
            &format!("{agones}/namespaces/{{ns}}/fleets"),
            get(list_fleets).post(create_fleet),
        )
        .route(
            &format!("{agones}/namespaces/{{ns}}/fleets/{{name}}"),
            get(get_fleet)
                .put(replace_fleet)
                .patch(patch_fleet)
                .delete(delete_fleet),
        )
        .route(
            &format!("{agones}/namespaces/{{ns}}/fleets/{{name}}/scale"),
            get(get_scale).put(replace_scale).patch(patch_scale),
        )
        .route(&format!("{agones}/gameservers"), get(list_all_gameservers))
        .route(
            &format!("{agones}/namespaces/{{ns}}/gameservers"),
            get(list_gameservers),
        )
        .route(
            &format!("{agones}/namespaces/{{ns}}/gameservers/{{name}}"),
            get(get_gameserver).delete(delete_gameserver),
        )
        .route(
            "/apis/allocation.agones.dev/v1/namespaces/{ns}/gameserverallocations",
            post(allocate),
        )
        .route("/apis/apps/v1/deployments", get(list_all_deployments))
        .route(
            "/apis/apps/v1/namespaces/{ns}/deployments",
            get(list_deployments),
        )
        .route(
            "/apis/apps/v1/namespaces/{ns}/deployments/{name}",
            get(get_deployment),
        )
        .method_not_allowed_fallback(|| async {
            ApiError::method_not_allowed("this verb is not served by upsoak-sim")
        })
        .with_state(state)
}

fn json_response(code: StatusCode, v: &impl serde::Serialize) -> Response {
    match serde_json::to_string(v) {
        Ok(body) => (code, [(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => ApiError::internal(format!("encoding response: {e}")).into_response(),
    }
}

fn ok(v: &impl serde::Serialize) -> ApiResult {
    Ok(json_response(StatusCode::OK, v))
}

// ----- discovery -----

async fn version() -> Response {
    json_response(
        StatusCode::OK,
        &json!({
            "major": "1", "minor": "34", "gitVersion": "v1.34.0-upsoak-sim",
            "gitCommit": "", "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z",
            "goVersion": "n/a", "compiler": "rustc", "platform": "linux/amd64"
        }),
    )
}

async fn core_versions() -> Response {
    json_response(
        StatusCode::OK,
        &json!({"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": ""}]}),
    )
}

async fn core_resources() -> Response {
    json_response(
        StatusCode::OK,
        &json!({"kind": "APIResourceList", "groupVersion": "v1", "resources": [
            {"name": "namespaces", "singularName": "namespace", "namespaced": false,
             "kind": "Namespace", "verbs": ["get", "list"], "shortNames": ["ns"]}
        ]}),
    )
}

const NAMESPACES: [&str; 2] = ["default", "agones-system"];

fn namespace_object(name: &str) -> Value {
    json!({"kind": "Namespace", "apiVersion": "v1",
        "metadata": {"name": name, "resourceVersion": "1"}, "status": {"phase": "Active"}})
}

async fn namespaces(State(s): State<ApiState>) -> ApiResult {
    let mut names: Vec<String> = NAMESPACES.iter().map(|n| n.to_string()).collect();
    let configured = s.lock()?.config().namespace.clone();
    if !names.contains(&configured) {
        names.push(configured);
    }
    ok(
        &json!({"kind": "NamespaceList", "apiVersion": "v1", "metadata": {"resourceVersion": "1"},
        "items": names.iter().map(|n| namespace_object(n)).collect::<Vec<_>>()}),
    )
}

async fn namespace(State(s): State<ApiState>, Path(ns): Path<String>) -> ApiResult {
    let configured = s.lock()?.config().namespace.clone();
    if NAMESPACES.contains(&ns.as_str()) || ns == configured {
        ok(&namespace_object(&ns))
    } else {
        Err(ApiError::not_found("namespaces", &ns))
    }
}

/// Group, version, and the resources each serves.
struct GroupDoc {
    group: &'static str,
    version: &'static str,
    resources: fn() -> Value,
}

const GROUPS: [GroupDoc; 3] = [
    GroupDoc {
        group: "agones.dev",
        version: "v1",
        resources: agones_resources,
    },
    GroupDoc {
        group: "allocation.agones.dev",
        version: "v1",
        resources: allocation_resources,
    },
    GroupDoc {
        group: "apps",
        version: "v1",
        resources: apps_resources,
    },
];

fn agones_resources() -> Value {
    json!([
        {"name": "fleets", "singularName": "fleet", "namespaced": true, "kind": "Fleet",
         "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
         "shortNames": ["flt"], "categories": ["all"]},
        {"name": "fleets/scale", "singularName": "", "namespaced": true, "group": "autoscaling",
         "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"]},
        {"name": "gameservers", "singularName": "gameserver", "namespaced": true,
         "kind": "GameServer", "verbs": ["delete", "get", "list", "watch"],
         "shortNames": ["gs"], "categories": ["all"]}
    ])
}

fn allocation_resources() -> Value {
    json!([
        {"name": "gameserverallocations", "singularName": "gameserverallocation",
         "namespaced": true, "kind": "GameServerAllocation", "verbs": ["create"],
         "shortNames": ["gsa"]}
    ])
}

fn apps_resources() -> Value {
    json!([
        {"name": "deployments", "singularName": "deployment", "namespaced": true,
         "kind": "Deployment", "verbs": ["get", "list"], "shortNames": ["deploy"],
         "categories": ["all"]}
    ])
}

fn group_doc(g: &GroupDoc) -> Value {
    let gv = format!("{}/{}", g.group, g.version);
    json!({"name": g.group, "versions": [{"groupVersion": gv, "version": g.version}],
        "preferredVersion": {"groupVersion": gv, "version": g.version}})
}

async fn groups() -> Response {
    json_response(
        StatusCode::OK,
        &json!({"kind": "APIGroupList", "apiVersion": "v1",
            "groups": GROUPS.iter().map(group_doc).collect::<Vec<_>>()}),
    )
}

async fn group(Path(group): Path<String>) -> ApiResult {
    let g = GROUPS
        .iter()
        .find(|g| g.group == group)
        .ok_or_else(|| ApiError::no_route(&format!("/apis/{group}")))?;
    let mut doc = group_doc(g);
    doc["kind"] = json!("APIGroup");
    doc["apiVersion"] = json!("v1");
    ok(&doc)
}

async fn resources(Path((group, version)): Path<(String, String)>) -> ApiResult {
    let g = GROUPS
        .iter()
        .find(|g| g.group == group && g.version == version)
        .ok_or_else(|| ApiError::no_route(&format!("/apis/{group}/{version}")))?;
    ok(&json!({"kind": "APIResourceList", "apiVersion": "v1",
        "groupVersion": format!("{}/{}", g.group, g.version), "resources": (g.resources)()}))
}

// ----- OpenAPI v3 -----
//
// kubectl reads `/openapi/v3` before `create -f` to learn whether the server validates fields
// itself (a `fieldValidation` parameter on the kind's PATCH operation); without it kubectl
// falls back to client-side validation from a protobuf OpenAPI v2 document. The documents
// below describe exactly that: each kind, its operations and the parameters the server takes.

async fn openapi_root() -> Response {
    let paths: serde_json::Map<String, Value> = GROUPS
        .iter()
        .map(|g| {
            let gv = format!("apis/{}/{}", g.group, g.version);
            let url = format!("/openapi/v3/{gv}?hash={}", env!("CARGO_PKG_VERSION"));
            (gv, json!({"serverRelativeURL": url}))
        })
        .collect();
    json_response(StatusCode::OK, &json!({"paths": paths}))
}

async fn openapi_group(Path((group, version)): Path<(String, String)>) -> ApiResult {
    let g = GROUPS
        .iter()
        .find(|g| g.group == group && g.version == version)
        .ok_or_else(|| ApiError::no_route(&format!("/openapi/v3/apis/{group}/{version}")))?;
    let mut paths = serde_json::Map::new();
    let params = json!([
        {"name": "namespace", "in": "path", "required": true, "schema": {"type": "string"}},
        {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true},
         "description": "upsoak-sim decodes bodies into typed objects; unknown fields are dropped"},
        {"name": "fieldManager", "in": "query", "schema": {"type": "string"}},
        {"name": "dryRun", "in": "query", "schema": {"type": "string"}}
    ]);
    if let Some(resources) = (g.resources)().as_array() {
        for r in resources {
            let (Some(name), Some(kind)) = (r["name"].as_str(), r["kind"].as_str()) else {
                continue;
            };
            if name.contains('/') {
                continue;
            }
            let gvk = json!({"group": g.group, "version": g.version, "kind": kind});
            let op = |action: &str| {
                json!({"x-kubernetes-group-version-kind": gvk, "x-kubernetes-action": action,
                    "parameters": params, "responses": {"200": {"description": "OK"}}})
            };
            paths.insert(
                format!(
                    "/apis/{}/{}/namespaces/{{namespace}}/{name}",
                    g.group, g.version
                ),
                json!({"post": op("post"), "get": op("list")}),
            );
            paths.insert(
                format!("/apis/{}/{}/namespaces/{{namespace}}/{name}/{{name}}", g.group, g.version),
                json!({"patch": op("patch"), "get": op("get"), "put": op("put"), "delete": op("delete")}),
            );
        }
    }
    ok(
        &json!({"openapi": "3.0.0", "info": {"title": "upsoak-sim", "version": g.version},
        "paths": paths, "components": {"schemas": {}}}),
    )
}

// ----- query parameters -----

struct ListQuery {
    labels: Selector,
    fields: FieldSelector,
    watch: bool,
    resource_version: Option<String>,
    timeout: Option<Duration>,
    bookmarks: bool,
}

const FLEET_FIELDS: [&str; 2] = ["metadata.name", "metadata.namespace"];
const GS_FIELDS: [&str; 4] = [
    "metadata.name",
    "metadata.namespace",
    "status.state",
    "status.nodeName",
];

fn list_query(p: &HashMap<String, String>, fields: &[&str]) -> Result<ListQuery, ApiError> {
    let labels = Selector::parse(p.get("labelSelector").map_or("", String::as_str))
        .map_err(|e| ApiError::bad_request(format!("unable to parse labelSelector: {e}")))?;
    let fields = FieldSelector::parse(p.get("fieldSelector").map_or("", String::as_str), fields)
        .map_err(|e| ApiError::bad_request(format!("unable to parse fieldSelector: {e}")))?;
    let flag = |name: &str| {
        p.get(name)
            .is_some_and(|v| matches!(v.as_str(), "true" | "1" | "True"))
    };
    let timeout = match p.get("timeoutSeconds") {
        Some(t) => Some(Duration::from_secs(t.parse::<u64>().map_err(|_| {
            ApiError::bad_request(format!("timeoutSeconds: `{t}` is not a whole number"))
        })?)),
        None => None,
    };
    Ok(ListQuery {
        labels,
        fields,
        watch: flag("watch"),
        resource_version: p.get("resourceVersion").cloned(),
        timeout,
        bookmarks: flag("allowWatchBookmarks"),
    })
}

fn wants_table(h: &HeaderMap) -> bool {
    h.get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("as=Table"))
}

fn field_of_fleet(f: &Fleet, field: &str) -> Option<String> {
    match field {
        "metadata.name" => f.metadata.name.clone(),
        "metadata.namespace" => f.metadata.namespace.clone(),
        _ => None,
    }
}

fn field_of_gs(g: &GameServer, field: &str) -> Option<String> {
    match field {
        "metadata.name" => g.metadata.name.clone(),
        "metadata.namespace" => g.metadata.namespace.clone(),
        "status.state" => g.state().map(|s| s.as_str().to_owned()),
        "status.nodeName" => g.status.as_ref().map(|s| s.node_name.clone()),
        _ => None,
    }
}

// ----- tables (kubectl get) -----

fn age(ts: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>) -> String {
    let Some(t) = ts else {
        return "<unknown>".to_owned();
    };
    let secs = jiff::Timestamp::now().duration_since(t.0).as_secs().max(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 3600 * 2 => format!("{}m", s / 60),
        s if s < 86_400 * 2 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

fn column(name: &str, type_: &str) -> Value {
    let format = if name == "Name" { "name" } else { "" };
    json!({"name": name, "type": type_, "format": format, "description": "", "priority": 0})
}

fn row(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    cells: Vec<Value>,
) -> Value {
    json!({"cells": cells, "object": {"kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1", "metadata": meta}})
}

fn fleet_row(f: &Fleet) -> Value {
    let st = f.status.clone().unwrap_or_default();
    row(
        &f.metadata,
        vec![
            json!(f.metadata.name),
            json!(
                f.spec
                    .scheduling
                    .clone()
                    .unwrap_or_else(|| "Packed".to_owned())
            ),
            json!(f.spec.replicas),
            json!(st.replicas),
            json!(st.allocated_replicas),
            json!(st.ready_replicas),
            json!(age(f.metadata.creation_timestamp.as_ref())),
        ],
    )
}

fn gs_row(g: &GameServer) -> Value {
    let st = g.status.as_ref();
    row(
        &g.metadata,
        vec![
            json!(g.metadata.name),
            json!(st.map(|s| s.state.as_str()).unwrap_or("")),
            json!(st.map(|s| s.address.clone()).unwrap_or_default()),
            json!(
                st.and_then(|s| s.ports.first())
                    .map(|p| p.port.to_string())
                    .unwrap_or_default()
            ),
            json!(st.map(|s| s.node_name.clone()).unwrap_or_default()),
            json!(age(g.metadata.creation_timestamp.as_ref())),
        ],
    )
}

fn table(kind: Kind, rows: Vec<Value>, rv: u64) -> Value {
    let columns = match kind {
        Kind::Fleet => vec![
            column("Name", "string"),
            column("Scheduling", "string"),
            column("Desired", "integer"),
            column("Current", "integer"),
            column("Allocated", "integer"),
            column("Ready", "integer"),
            column("Age", "date"),
        ],
        Kind::GameServer => vec![
            column("Name", "string"),
            column("State", "string"),
            column("Address", "string"),
            column("Port", "string"),
            column("Node", "string"),
            column("Age", "date"),
        ],
    };
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": rv.to_string()},
        "columnDefinitions": columns, "rows": rows})
}

/// A list answer, serialized straight from the items: a 10,000-item list never becomes a
/// `serde_json::Value` tree.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct List<'a, T> {
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
    fn new(kind: &'static str, rv: u64, items: &'a [T]) -> Self {
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

// ----- Fleets -----

async fn list_all_fleets(s: State<ApiState>, h: HeaderMap, p: Params) -> ApiResult {
    list_fleets_in(s.0, None, h, p.0).await
}

async fn list_fleets(
    s: State<ApiState>,
    Path(ns): Path<String>,
    h: HeaderMap,
    p: Params,
) -> ApiResult {
    list_fleets_in(s.0, Some(ns), h, p.0).await
}

async fn list_fleets_in(
    s: ApiState,
    ns: Option<String>,
    h: HeaderMap,
    p: HashMap<String, String>,
) -> ApiResult {
    let q = list_query(&p, &FLEET_FIELDS)?;
    let as_table = wants_table(&h);
    if q.watch {
        return watch(s, Kind::Fleet, ns, q, as_table);
    }
    let (items, rv) = {
        let w = s.lock()?;
        let items: Vec<Fleet> = w
            .list_fleets(ns.as_deref(), &q.labels)
            .into_iter()
            .filter(|f| q.fields.matches(|k| field_of_fleet(f, k)))
            .collect();
        (items, w.resource_version())
    };
    if as_table {
        return ok(&table(
            Kind::Fleet,
            items.iter().map(fleet_row).collect(),
            rv,
        ));
    }
    ok(&List::new("FleetList", rv, &items))
}

async fn get_fleet(
    State(s): State<ApiState>,
    Path((ns, name)): Path<(String, String)>,
    h: HeaderMap,
) -> ApiResult {
    let (f, rv) = {
        let w = s.lock()?;
        (w.get_fleet(&ns, &name)?, w.resource_version())
    };
    if wants_table(&h) {
        return ok(&table(Kind::Fleet, vec![fleet_row(&f)], rv));
    }
    ok(&f)
}

/// Parses a request body as JSON of the given kind: 400 when it is not JSON or not that kind.
fn parse_body(body: &[u8], api_version: &str, kind: &str) -> Result<Value, ApiError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the request body is not valid JSON: {e}")))?;
    check_kind(&v, api_version, kind)?;
    Ok(v)
}

/// Decodes a JSON value into `T`: 422 naming the field when its shape is wrong.
fn decode_value<T: serde::de::DeserializeOwned>(value: Value, kind: &str) -> Result<T, ApiError> {
    let name = value
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    serde_path_to_error::deserialize(value).map_err(|e| {
        let field = e.path().to_string();
        ApiError::invalid(
            kind,
            &name,
            vec![Cause {
                field: if field == "." { String::new() } else { field },
                message: e.inner().to_string(),
            }],
        )
    })
}

fn check_kind(v: &Value, api_version: &str, kind: &str) -> Result<(), ApiError> {
    let got_kind = v.get("kind").and_then(Value::as_str);
    let got_av = v.get("apiVersion").and_then(Value::as_str);
    if got_kind.is_some_and(|k| k != kind) || got_av.is_some_and(|a| a != api_version) {
        return Err(ApiError::bad_request(format!(
            "the body is {}/{}, expected {api_version}/{kind}",
            got_av.unwrap_or("?"),
            got_kind.unwrap_or("?")
        )));
    }
    Ok(())
}

async fn create_fleet(State(s): State<ApiState>, Path(ns): Path<String>, body: Bytes) -> ApiResult {
    let v = parse_body(&body, "agones.dev/v1", "Fleet")?;
    if let Some(bns) = v.pointer("/metadata/namespace").and_then(Value::as_str)
        && bns != ns
    {
        return Err(ApiError::bad_request(format!(
            "the namespace of the provided object ({bns}) does not match the namespace sent on the request ({ns})"
        )));
    }
    let fleet: Fleet = decode_value(v, "fleets")?;
    let created = s.lock()?.create_fleet(&ns, fleet)?;
    Ok(json_response(StatusCode::CREATED, &created))
}

async fn replace_fleet(
    State(s): State<ApiState>,
    Path((ns, name)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    let v = parse_body(&body, "agones.dev/v1", "Fleet")?;
    let fleet: Fleet = decode_value(v, "fleets")?;
    ok(&s.lock()?.update_fleet(&ns, &name, fleet)?)
}

/// The patch types the API accepts for custom resources.
enum PatchType {
    Merge,
    Json,
    Apply,
}

fn patch_type(h: &HeaderMap) -> Result<PatchType, ApiError> {
    let ct = h
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let base = ct.split(';').next().unwrap_or("").trim();
    match base {
        "application/merge-patch+json" => Ok(PatchType::Merge),
        "application/json-patch+json" => Ok(PatchType::Json),
        "application/apply-patch+yaml" => Ok(PatchType::Apply),
        // Custom resources do not support strategic merge patch; the API server says 415.
        _ => Err(ApiError::unsupported_media_type(ct)),
    }
}

/// Applies a patch body to `doc`.
fn apply_patch(doc: &mut Value, pt: &PatchType, body: &[u8]) -> Result<(), ApiError> {
    match pt {
        PatchType::Merge => {
            let patch: Value = serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("the patch is not valid JSON: {e}")))?;
            json_patch::merge(doc, &patch);
        }
        PatchType::Apply => {
            // Server-side apply is approximated as a merge of the applied configuration; field
            // ownership is not tracked. YAML is a superset of JSON, so both bodies parse.
            let patch: Value = serde_yaml::from_slice(body).map_err(|e| {
                ApiError::bad_request(format!("the apply configuration is not valid YAML: {e}"))
            })?;
            json_patch::merge(doc, &patch);
        }
        PatchType::Json => {
            let patch: json_patch::Patch = serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("the JSON patch is not valid: {e}")))?;
            json_patch::patch(doc, &patch).map_err(|e| {
                ApiError::invalid(
                    "fleets",
                    "",
                    vec![Cause {
                        field: String::new(),
                        message: format!("the JSON patch cannot be applied: {e}"),
                    }],
                )
            })?;
        }
    }
    Ok(())
}

async fn patch_fleet(
    State(s): State<ApiState>,
    Path((ns, name)): Path<(String, String)>,
    h: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let pt = patch_type(&h)?;
    let mut w = s.lock()?;
    let current = match w.get_fleet(&ns, &name) {
        Ok(f) => f,
        Err(e) if matches!(pt, PatchType::Apply) && e.code == 404 => {
            let mut doc = json!({"apiVersion": "agones.dev/v1", "kind": "Fleet",
                "metadata": {"name": name, "namespace": ns}});
            apply_patch(&mut doc, &pt, &body)?;
            let fleet: Fleet = decode_value(doc, "fleets")?;
            let created = w.create_fleet(&ns, fleet)?;
            return Ok(json_response(StatusCode::CREATED, &created));
        }
        Err(e) => return Err(e),
    };
    let current_rv = current.metadata.resource_version.clone();
    let mut doc = serde_json::to_value(&current)
        .map_err(|e| ApiError::internal(format!("encoding fleet: {e}")))?;
    apply_patch(&mut doc, &pt, &body)?;
    let mut fleet: Fleet = decode_value(doc, "fleets")?;
    // A patch may carry a resourceVersion as a precondition; without one it applies to the
    // current object.
    if fleet.metadata.resource_version.is_none() {
        fleet.metadata.resource_version = current_rv;
    }
    ok(&w.update_fleet(&ns, &name, fleet)?)
}

async fn delete_fleet(
    State(s): State<ApiState>,
    Path((ns, name)): Path<(String, String)>,
) -> ApiResult {
    ok(&s.lock()?.delete_fleet(&ns, &name)?)
}

// ----- scale subresource -----

fn scale_of(f: &Fleet) -> Value {
    let st = f.status.clone().unwrap_or_default();
    json!({"kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {"name": f.metadata.name, "namespace": f.metadata.namespace,
            "uid": f.metadata.uid, "resourceVersion": f.metadata.resource_version,
            "creationTimestamp": f.metadata.creation_timestamp},
        "spec": {"replicas": f.spec.replicas},
        "status": {"replicas": st.replicas,
            "selector": st.label_selector.unwrap_or_default()}})
}

async fn get_scale(
    State(s): State<ApiState>,
    Path((ns, name)): Path<(String, String)>,
) -> ApiResult {
    ok(&scale_of(&s.lock()?.get_fleet(&ns, &name)?))
}

/// Sets `spec.replicas` from a Scale object, honouring its resourceVersion precondition.
fn apply_scale(w: &mut World, ns: &str, name: &str, scale: &Value) -> ApiResult {
    let replicas = scale
        .pointer("/spec/replicas")
        .map(|r| {
            r.as_i64()
                .and_then(|r| i32::try_from(r).ok())
                .ok_or_else(|| {
                    ApiError::invalid(
                        "fleets",
                        name,
                        vec![Cause {
                            field: "spec.replicas".into(),
                            message: format!("Invalid value: {r}: must be a 32-bit integer"),
                        }],
                    )
                })
        })
        .transpose()?
        .unwrap_or(0);
    let mut fleet = w.get_fleet(ns, name)?;
    if let Some(rv) = scale
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        && !rv.is_empty()
        && Some(rv) != fleet.metadata.resource_version.as_deref()
    {
        return Err(ApiError::conflict("fleets.agones.dev", name));
    }
    fleet.spec.replicas = replicas;
    let updated = w.update_fleet(ns, name, fleet)?;
    ok(&scale_of(&updated))
}

async fn replace_scale(
    State(s): State<ApiState>,
    Path((ns, name)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    let v = parse_body(&body, "autoscaling/v1", "Scale")?;
    apply_scale(&mut *s.lock()?, &ns, &name, &v)
}

async fn patch_scale(
    State(s): State<ApiState>,
    Path((ns, name)): Path<(String, String)>,
    h: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let pt = patch_type(&h)?;
    let mut w = s.lock()?;
    let mut doc = scale_of(&w.get_fleet(&ns, &name)?);
    apply_patch(&mut doc, &pt, &body)?;
    apply_scale(&mut w, &ns, &name, &doc)
}

// ----- GameServers -----

async fn list_all_gameservers(s: State<ApiState>, h: HeaderMap, p: Params) -> ApiResult {
    list_gameservers_in(s.0, None, h, p.0).await
}

async fn list_gameservers(
    s: State<ApiState>,
    Path(ns): Path<String>,
    h: HeaderMap,
    p: Params,
) -> ApiResult {
    list_gameservers_in(s.0, Some(ns), h, p.0).await
}

async fn list_gameservers_in(
    s: ApiState,
    ns: Option<String>,
    h: HeaderMap,
    p: HashMap<String, String>,
) -> ApiResult {
    let q = list_query(&p, &GS_FIELDS)?;
    let as_table = wants_table(&h);
    if q.watch {
        return watch(s, Kind::GameServer, ns, q, as_table);
    }
    let (items, rv) = {
        let w = s.lock()?;
        let items = w.list_gameservers(ns.as_deref(), &q.labels, |g| {
            q.fields.matches(|k| field_of_gs(g, k))
        });
        (items, w.resource_version())
    };
    if as_table {
        return ok(&table(
            Kind::GameServer,
            items.iter().map(gs_row).collect(),
            rv,
        ));
    }
    ok(&List::new("GameServerList", rv, &items))
}

async fn get_gameserver(
    State(s): State<ApiState>,
    Path((ns, name)): Path<(String, String)>,
    h: HeaderMap,
) -> ApiResult {
    let (g, rv) = {
        let w = s.lock()?;
        (w.get_gameserver(&ns, &name)?, w.resource_version())
    };
    if wants_table(&h) {
        return ok(&table(Kind::GameServer, vec![gs_row(&g)], rv));
    }
    ok(&g)
}

async fn delete_gameserver(
    State(s): State<ApiState>,
    Path((ns, name)): Path<(String, String)>,
) -> ApiResult {
    ok(&s.lock()?.delete_gameserver(&ns, &name)?)
}

// ----- allocation -----

async fn allocate(State(s): State<ApiState>, Path(ns): Path<String>, body: Bytes) -> ApiResult {
    let v = parse_body(&body, "allocation.agones.dev/v1", "GameServerAllocation")?;
    let gsa: GameServerAllocation = decode_value(v, "gameserverallocations")?;
    let mut selectors = Vec::new();
    let mut causes = Vec::new();
    for (i, sel) in gsa.spec.selectors.iter().enumerate() {
        let parsed = Selector::from_label_selector(&sel.selector);
        let state = match sel.game_server_state.as_deref() {
            None | Some("Ready") => Ok(GameServerState::Ready),
            Some("Allocated") => Ok(GameServerState::Allocated),
            Some(other) => Err(format!(
                "Unsupported value: \"{other}\": supported values: \"Ready\", \"Allocated\""
            )),
        };
        match (parsed, state) {
            (Ok(p), Ok(st)) => selectors.push((p, st)),
            (Err(e), _) => causes.push(Cause {
                field: format!("spec.selectors[{i}]"),
                message: e,
            }),
            (_, Err(e)) => causes.push(Cause {
                field: format!("spec.selectors[{i}].gameServerState"),
                message: e,
            }),
        }
    }
    if let Some(sch) = &gsa.spec.scheduling
        && !matches!(sch.as_str(), "Packed" | "Distributed")
    {
        causes.push(Cause {
            field: "spec.scheduling".into(),
            message: format!(
                "Unsupported value: \"{sch}\": supported values: \"Packed\", \"Distributed\""
            ),
        });
    }
    if !causes.is_empty() {
        return Err(ApiError::invalid("gameserverallocations", "", causes));
    }
    if selectors.is_empty() {
        selectors.push((Selector::default(), GameServerState::Ready));
    }
    let scheduling = gsa
        .spec
        .scheduling
        .clone()
        .unwrap_or_else(|| "Packed".to_owned());
    let fleet_hint = selectors
        .iter()
        .find_map(|(sel, _)| sel.equality(FLEET_LABEL).map(str::to_owned))
        .unwrap_or_else(|| upsoak_agones::metrics::NO_FLEET.to_owned());
    let start = Instant::now();
    let (plan, metrics) = {
        let mut w = s.lock()?;
        (w.allocation_plan(), w.metrics().clone())
    };
    let observe = |_: &ApiState, status: &str| {
        metrics.observe_allocation(
            &fleet_hint,
            status,
            &scheduling,
            start.elapsed().as_secs_f64(),
        );
    };
    let (latency, retries) = match plan {
        Ok(p) => p,
        Err(e) => {
            // The allocator answered with an error (it is down during an upgrade window and
            // records nothing then).
            if e.code == 500 {
                observe(&s, "error");
            }
            return Err(e);
        }
    };
    let mut outcome = AllocationState::Contention;
    let mut allocated = None;
    for _ in 0..=retries {
        let pick = s.lock()?.pick_for_allocation(&ns, &gsa, &selectors);
        let Some((key, expected)) = pick else {
            outcome = AllocationState::UnAllocated;
            break;
        };
        // Agones' allocator works on a cache; the time between picking and updating is where
        // concurrent allocations race for the same GameServer.
        if latency.is_zero() {
            tokio::task::yield_now().await;
        } else {
            tokio::time::sleep(latency).await;
        }
        if let Some(gs) = s.lock()?.commit_allocation(&key, expected, &gsa) {
            outcome = AllocationState::Allocated;
            allocated = Some(gs);
            break;
        }
    }
    observe(&s, outcome.as_str());
    let status = match &allocated {
        Some(gs) => {
            let st = gs.status.clone();
            GameServerAllocationStatus {
                state: outcome,
                game_server_name: gs.metadata.name.clone().unwrap_or_default(),
                ports: st.as_ref().map(|s| s.ports.clone()).unwrap_or_default(),
                address: st.as_ref().map(|s| s.address.clone()).unwrap_or_default(),
                node_name: st.map(|s| s.node_name).unwrap_or_default(),
                source: "local".to_owned(),
            }
        }
        None => GameServerAllocationStatus {
            state: outcome,
            game_server_name: String::new(),
            ports: Vec::new(),
            address: String::new(),
            node_name: String::new(),
            source: "local".to_owned(),
        },
    };
    let mut out = gsa;
    out.metadata.namespace = Some(ns);
    out.metadata.name = allocated.and_then(|g| g.metadata.name);
    out.metadata.creation_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        jiff::Timestamp::now(),
    ));
    out.status = Some(status);
    Ok(json_response(StatusCode::CREATED, &out))
}

// ----- Deployments of the Agones control plane -----

const DEPLOYMENTS: [&str; 2] = ["agones-controller", "agones-allocator"];
const AGONES_NS: &str = "agones-system";

fn deployment(w: &World, name: &str) -> Value {
    let upgrading = w.upgrading();
    let version = &w.installed().spec.version;
    // During an upgrade the new ReplicaSet rolls out: the spec names the new image, nothing is
    // ready yet.
    let image_version = upgrading.map_or(version, |u| &u.spec.version);
    let ready = if upgrading.is_some() { 0 } else { 1 };
    let image = format!(
        "us-docker.pkg.dev/agones-images/release/{}:{image_version}",
        name.trim_start_matches("agones-")
    );
    json!({"kind": "Deployment", "apiVersion": "apps/v1",
        "metadata": {"name": name, "namespace": AGONES_NS, "resourceVersion": w.resource_version().to_string(),
            "labels": {"app": "agones", "component": name.trim_start_matches("agones-"),
                "app.kubernetes.io/version": image_version},
            "generation": 1},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"agones.dev/role": name.trim_start_matches("agones-")}},
            "template": {"metadata": {"labels": {"agones.dev/role": name.trim_start_matches("agones-")}},
                "spec": {"containers": [{"name": name, "image": image}]}}},
        "status": {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1,
            "readyReplicas": ready, "availableReplicas": ready,
            "unavailableReplicas": 1 - ready,
            "conditions": [{"type": "Available", "status": if ready == 1 { "True" } else { "False" },
                "reason": if ready == 1 { "MinimumReplicasAvailable" } else { "MinimumReplicasUnavailable" }}]}})
}

async fn list_all_deployments(s: State<ApiState>) -> ApiResult {
    list_deployments(s, Path(AGONES_NS.to_owned())).await
}

async fn list_deployments(State(s): State<ApiState>, Path(ns): Path<String>) -> ApiResult {
    let w = s.lock()?;
    let items: Vec<Value> = if ns == AGONES_NS {
        DEPLOYMENTS.iter().map(|d| deployment(&w, d)).collect()
    } else {
        Vec::new()
    };
    ok(&json!({"kind": "DeploymentList", "apiVersion": "apps/v1",
        "metadata": {"resourceVersion": w.resource_version().to_string()}, "items": items}))
}

async fn get_deployment(
    State(s): State<ApiState>,
    Path((ns, name)): Path<(String, String)>,
) -> ApiResult {
    let w = s.lock()?;
    if ns == AGONES_NS && DEPLOYMENTS.contains(&name.as_str()) {
        ok(&deployment(&w, &name))
    } else {
        Err(ApiError::not_found("deployments.apps", &name))
    }
}

// ----- watch -----

/// Streams events as JSON lines: the current objects as ADDED when no resourceVersion (or 0)
/// is given, otherwise every event after it; 410 Gone when the log no longer reaches back.
fn watch(s: ApiState, kind: Kind, ns: Option<String>, q: ListQuery, as_table: bool) -> ApiResult {
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(1024);
    let mut sub;
    let mut backlog: Vec<Bytes> = Vec::new();
    let mut last_rv;
    {
        let w = s.lock()?;
        sub = w.subscribe();
        last_rv = w.resource_version();
        let matches = |e: &WatchEvent| event_matches(e, kind, ns.as_deref(), &q);
        match q.resource_version.as_deref() {
            None | Some("") | Some("0") => {
                let lines: Vec<Value> = match kind {
                    Kind::Fleet => w
                        .list_fleets(ns.as_deref(), &q.labels)
                        .into_iter()
                        .filter(|f| q.fields.matches(|k| field_of_fleet(f, k)))
                        .map(|f| json!({"type": "ADDED", "object": f}))
                        .collect(),
                    Kind::GameServer => w
                        .list_gameservers(ns.as_deref(), &q.labels, |g| {
                            q.fields.matches(|k| field_of_gs(g, k))
                        })
                        .into_iter()
                        .map(|g| json!({"type": "ADDED", "object": g}))
                        .collect(),
                };
                backlog.extend(lines.into_iter().map(|l| Bytes::from(format!("{l}\n"))));
            }
            Some(rv) => {
                let rv: u64 = rv.parse().map_err(|_| {
                    ApiError::bad_request(format!("resourceVersion: `{rv}` is not a number"))
                })?;
                match w.events_since(rv) {
                    Some(events) => {
                        backlog.extend(events.iter().filter(|e| matches(e)).map(|e| e.line.clone()))
                    }
                    None => backlog.push(gone_line(rv)),
                }
            }
        }
    }
    let gone = backlog
        .last()
        .is_some_and(|l| l.starts_with(b"{\"type\":\"ERROR\""));
    let deadline = q.timeout.map(|t| tokio::time::Instant::now() + t);
    let shutdown = s.shutdown.clone();
    tokio::spawn(async move {
        for line in backlog {
            let line = if as_table {
                tableize(kind, &line)
            } else {
                line
            };
            if tx.send(line).await.is_err() {
                return;
            }
        }
        if gone {
            return;
        }
        let mut bookmark = tokio::time::interval(Duration::from_secs(10));
        bookmark.tick().await;
        loop {
            let sleep_until =
                deadline.unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tx.closed() => return,
                _ = tokio::time::sleep_until(sleep_until) => return,
                _ = bookmark.tick(), if q.bookmarks => {
                    let api_version = "agones.dev/v1";
                    let k = match kind { Kind::Fleet => "Fleet", Kind::GameServer => "GameServer" };
                    let line = format!("{}\n", json!({"type": "BOOKMARK", "object": {"kind": k,
                        "apiVersion": api_version, "metadata": {"resourceVersion": last_rv.to_string()}}}));
                    if tx.send(Bytes::from(line)).await.is_err() { return; }
                }
                ev = sub.recv() => match ev {
                    Ok(e) => {
                        if e.rv <= last_rv && q.resource_version.as_deref().is_none_or(|r| r.is_empty() || r == "0") {
                            // Already part of the snapshot sent as ADDED.
                            continue;
                        }
                        last_rv = last_rv.max(e.rv);
                        if !event_matches(&e, kind, ns.as_deref(), &q) { continue; }
                        let line = if as_table { tableize(kind, &e.line) } else { e.line.clone() };
                        if tx.send(line).await.is_err() { return; }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        // This watcher fell behind the event log: tell it to re-list, as the API
                        // server does with 410 Gone.
                        let _ = tx.send(gone_line(last_rv)).await;
                        return;
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        }
    });
    let stream =
        tokio_stream::wrappers::ReceiverStream::new(rx).map(Ok::<Bytes, std::convert::Infallible>);
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(stream),
    )
        .into_response())
}

use tokio_stream::StreamExt as _;

fn event_matches(e: &WatchEvent, kind: Kind, ns: Option<&str>, q: &ListQuery) -> bool {
    e.kind == kind
        && ns.is_none_or(|n| n == e.namespace)
        && q.labels.matches(Some(&e.labels))
        && q.fields.matches(|f| match f {
            "metadata.name" => Some(e.name.clone()),
            "metadata.namespace" => Some(e.namespace.clone()),
            "status.state" => e.state.map(|s| s.as_str().to_owned()),
            "status.nodeName" => Some(crate::world::NODE_NAME.to_owned()),
            _ => None,
        })
}

fn gone_line(rv: u64) -> Bytes {
    let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "reason": "Expired", "code": 410,
        "message": format!("too old resource version: {rv}")});
    Bytes::from(format!("{}\n", json!({"type": "ERROR", "object": status})))
}

/// Re-encodes one watch line's object as a one-row Table, for `kubectl get -w`.
fn tableize(kind: Kind, line: &Bytes) -> Bytes {
    let Ok(mut v) = serde_json::from_slice::<Value>(line) else {
        return line.clone();
    };
    let obj = v["object"].take();
    let rv = obj
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .and_then(|r| r.parse().ok())
        .unwrap_or(0);
    let row = match kind {
        Kind::Fleet => serde_json::from_value::<Fleet>(obj.clone())
            .ok()
            .map(|f| fleet_row(&f)),
        Kind::GameServer => serde_json::from_value::<GameServer>(obj.clone())
            .ok()
            .map(|g| gs_row(&g)),
    };
    match row {
        Some(r) => {
            v["object"] = table(kind, vec![r], rv);
            Bytes::from(format!("{v}\n"))
        }
        None => {
            v["object"] = obj;
            Bytes::from(format!("{v}\n"))
        }
    }
}
