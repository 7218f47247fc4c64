//! Discovery: `/version`, the core group's namespaces, the API groups and their resources,
//! and the OpenAPI v3 documents kubectl reads before `create -f` (v2: [`super::openapi_v2`]).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::{ApiResult, ApiState, json_response, ok};
use crate::status::ApiError;

// ----- discovery -----

pub(super) async fn version() -> Response {
    json_response(
        StatusCode::OK,
        &json!({
            "major": "1", "minor": "34", "gitVersion": "v1.34.0-upsoak-sim",
            "gitCommit": "", "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z",
            "goVersion": "n/a", "compiler": "rustc", "platform": "linux/amd64"
        }),
    )
}

pub(super) async fn core_versions() -> Response {
    json_response(
        StatusCode::OK,
        &json!({"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": ""}]}),
    )
}

pub(super) async fn core_resources() -> Response {
    json_response(
        StatusCode::OK,
        &json!({"kind": "APIResourceList", "groupVersion": "v1", "resources": [
            {"name": "namespaces", "singularName": "namespace", "namespaced": false,
             "kind": "Namespace", "verbs": ["get", "list"], "shortNames": ["ns"]},
            {"name": "services", "singularName": "service", "namespaced": true,
             "kind": "Service", "verbs": ["get", "list"], "shortNames": ["svc"]}
        ]}),
    )
}

pub(super) const NAMESPACES: [&str; 2] = ["default", "agones-system"];

pub(super) fn namespace_object(name: &str) -> Value {
    json!({"kind": "Namespace", "apiVersion": "v1",
        "metadata": {"name": name, "resourceVersion": "1"}, "status": {"phase": "Active"}})
}

pub(super) async fn namespaces(State(s): State<ApiState>, p: super::Params) -> ApiResult {
    let mut names: Vec<String> = NAMESPACES.iter().map(|n| n.to_string()).collect();
    let configured = s.lock()?.config().namespace.clone();
    if !names.contains(&configured) {
        names.push(configured);
    }
    let items = names
        .iter()
        .map(|n| (n.clone(), namespace_object(n)))
        .collect();
    // Namespaces never change here: every resourceVersion stays current.
    let (items, meta) = match super::pages::page_of_values(&p.0, items, 1, |_| true) {
        Ok(page) => page,
        Err(refused) => return Ok(axum::response::IntoResponse::into_response(refused)),
    };
    ok(&json!({"kind": "NamespaceList", "apiVersion": "v1", "metadata": meta, "items": items}))
}

pub(super) async fn namespace(State(s): State<ApiState>, Path(ns): Path<String>) -> ApiResult {
    let configured = s.lock()?.config().namespace.clone();
    if NAMESPACES.contains(&ns.as_str()) || ns == configured {
        ok(&namespace_object(&ns))
    } else {
        Err(ApiError::not_found("namespaces", &ns))
    }
}

/// Group, version, and the resources each serves.
pub(super) struct GroupDoc {
    pub(super) group: &'static str,
    pub(super) version: &'static str,
    pub(super) resources: fn() -> Value,
}

pub(super) const GROUPS: [GroupDoc; 3] = [
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

pub(super) fn agones_resources() -> Value {
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

pub(super) fn allocation_resources() -> Value {
    json!([
        {"name": "gameserverallocations", "singularName": "gameserverallocation",
         "namespaced": true, "kind": "GameServerAllocation", "verbs": ["create"],
         "shortNames": ["gsa"]}
    ])
}

pub(super) fn apps_resources() -> Value {
    json!([
        {"name": "deployments", "singularName": "deployment", "namespaced": true,
         "kind": "Deployment", "verbs": ["get", "list"], "shortNames": ["deploy"],
         "categories": ["all"]}
    ])
}

pub(super) fn group_doc(g: &GroupDoc) -> Value {
    let gv = format!("{}/{}", g.group, g.version);
    json!({"name": g.group, "versions": [{"groupVersion": gv, "version": g.version}],
        "preferredVersion": {"groupVersion": gv, "version": g.version}})
}

pub(super) async fn groups() -> Response {
    json_response(
        StatusCode::OK,
        &json!({"kind": "APIGroupList", "apiVersion": "v1",
            "groups": GROUPS.iter().map(group_doc).collect::<Vec<_>>()}),
    )
}

pub(super) async fn group(Path(group): Path<String>) -> ApiResult {
    let g = GROUPS
        .iter()
        .find(|g| g.group == group)
        .ok_or_else(|| ApiError::no_route(&format!("/apis/{group}")))?;
    let mut doc = group_doc(g);
    doc["kind"] = json!("APIGroup");
    doc["apiVersion"] = json!("v1");
    ok(&doc)
}

pub(super) async fn resources(Path((group, version)): Path<(String, String)>) -> ApiResult {
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

pub(super) async fn openapi_root() -> Response {
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

pub(super) async fn openapi_group(Path((group, version)): Path<(String, String)>) -> ApiResult {
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
