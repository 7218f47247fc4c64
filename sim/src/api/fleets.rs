//! Fleet handlers: create, replace, patch (merge, JSON, apply) and delete, and the `scale`
//! subresource. List and get are the generic handlers of [`super::Served`].

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use upsoak_agones::Fleet;

use super::request::{
    PatchType, check_patch_options, decode_value, parse_body, patch_type, patched,
};
use super::table::fleet_row;
use super::{ApiResult, ApiState, Params, Served, json_response, ok};
use crate::selector::Selector;
use crate::status::{ApiError, Cause};
use crate::world::World;

impl Served for Fleet {
    const LIST_KIND: &'static str = "FleetList";
    fn list(w: &World, ns: Option<&str>, labels: &Selector) -> Vec<Fleet> {
        w.list_fleets(ns, labels)
    }
    fn get(w: &World, ns: &str, name: &str) -> Result<Fleet, ApiError> {
        w.get_fleet(ns, name)
    }
    fn row(&self) -> Value {
        fleet_row(self)
    }
}

pub(super) async fn create_fleet(
    State(s): State<ApiState>,
    Path(ns): Path<String>,
    body: Bytes,
) -> ApiResult {
    let v = parse_body(&body, "agones.dev/v1", "Fleet")?;
    let fleet: Fleet = decode_value(v, "fleets")?;
    same_namespace(&fleet, &ns)?;
    let created = s.lock()?.create_fleet(&ns, fleet)?;
    Ok(json_response(StatusCode::CREATED, &created))
}

pub(super) async fn replace_fleet(
    State(s): State<ApiState>,
    Path((ns, name)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    let v = parse_body(&body, "agones.dev/v1", "Fleet")?;
    let fleet: Fleet = decode_value(v, "fleets")?;
    same_namespace(&fleet, &ns)?;
    ok(&s.lock()?.update_fleet(&ns, &name, fleet)?)
}

/// A written object's `metadata.namespace`, when set, must be the request's: 400 otherwise, on
/// create, replace and patch alike (Kubernetes `staging/src/k8s.io/apiserver/pkg/registry/rest/
/// create.go` `BeforeCreate` and `update.go` `BeforeUpdate`: `ValidNamespace`, else
/// `NewBadRequest`). Unset, it is the request's.
fn same_namespace(fleet: &Fleet, ns: &str) -> Result<(), ApiError> {
    match fleet.metadata.namespace.as_deref() {
        Some(bns) if !bns.is_empty() && bns != ns => Err(ApiError::bad_request(format!(
            "the namespace of the provided object ({bns}) does not match the namespace sent on the request ({ns})"
        ))),
        _ => Ok(()),
    }
}

/// How often a patch without a resourceVersion is retried when the Fleet changed between
/// reading it and writing the result, as the API server's `GuaranteedUpdate` retries.
const PATCH_ATTEMPTS: usize = 5;

/// PATCH of a Fleet: the patch is applied to a copy outside the world's lock (see
/// [`patched`]), then written back if the Fleet has not changed meanwhile.
pub(super) async fn patch_fleet(
    State(s): State<ApiState>,
    Path((ns, name)): Path<(String, String)>,
    h: HeaderMap,
    p: Params,
    body: Bytes,
) -> ApiResult {
    let pt = patch_type(&h)?;
    check_patch_options(&pt, &p.0)?;
    for _ in 0..PATCH_ATTEMPTS {
        let current = match s.lock()?.get_fleet(&ns, &name) {
            Ok(f) => Some(f),
            Err(e) if matches!(pt, PatchType::Apply) && e.code == 404 => None,
            Err(e) => return Err(e),
        };
        let Some(current) = current else {
            let doc = json!({"apiVersion": "agones.dev/v1", "kind": "Fleet",
                "metadata": {"name": name, "namespace": ns}});
            let doc = patched(doc, pt, body.clone(), "fleets").await?;
            let fleet: Fleet = decode_value(doc, "fleets")?;
            match s.lock()?.create_fleet(&ns, fleet) {
                // Created by someone else meanwhile: patch that one.
                Err(e) if e.code == 409 => continue,
                r => return Ok(json_response(StatusCode::CREATED, &r?)),
            }
        };
        let current_rv = current.metadata.resource_version.clone();
        let doc = serde_json::to_value(&current)
            .map_err(|e| ApiError::internal(format!("encoding fleet: {e}")))?;
        let doc = patched(doc, pt, body.clone(), "fleets").await?;
        let mut fleet: Fleet = decode_value(doc, "fleets")?;
        same_namespace(&fleet, &ns)?;
        // A patch may carry a resourceVersion as a precondition; without one it applies to the
        // current object, and is applied again if that changed before the write.
        // (The patched document starts from the current object, so it always holds a
        // resourceVersion: only one the patch changed is the client's precondition.)
        let precondition = fleet.metadata.resource_version != current_rv;
        if !precondition {
            fleet.metadata.resource_version = current_rv;
        }
        match s.lock()?.update_fleet(&ns, &name, fleet) {
            Err(e) if e.code == 409 && !precondition => continue,
            r => return ok(&r?),
        }
    }
    Err(ApiError::conflict("fleets.agones.dev", &name))
}

pub(super) async fn delete_fleet(
    State(s): State<ApiState>,
    Path((ns, name)): Path<(String, String)>,
) -> ApiResult {
    ok(&s.lock()?.delete_fleet(&ns, &name)?)
}

// ----- scale subresource -----

/// The Fleet as a `Scale`. The CRD's `labelSelectorPath` is `.status.labelSelector`, which
/// Agones never sets (`pkg/apis/agones/v1/fleet.go`, `FleetStatus` has no such field), so the
/// API server answers without a selector (k8s.io/apiextensions-apiserver
/// `pkg/registry/customresource/etcd.go`, `scaleFromCustomResource`; `selector` is `omitempty`).
pub(super) fn scale_of(f: &Fleet) -> Value {
    let st = f.status.clone().unwrap_or_default();
    let mut status = json!({"replicas": st.replicas});
    if let Some(sel) = st.label_selector.filter(|s| !s.is_empty()) {
        status["selector"] = json!(sel);
    }
    json!({"kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {"name": f.metadata.name, "namespace": f.metadata.namespace,
            "uid": f.metadata.uid, "resourceVersion": f.metadata.resource_version,
            "creationTimestamp": f.metadata.creation_timestamp},
        "spec": {"replicas": f.spec.replicas},
        "status": status})
}

pub(super) async fn get_scale(
    State(s): State<ApiState>,
    Path((ns, name)): Path<(String, String)>,
) -> ApiResult {
    ok(&scale_of(&s.lock()?.get_fleet(&ns, &name)?))
}

/// Sets `spec.replicas` from a Scale object, honouring its resourceVersion precondition.
pub(super) fn apply_scale(w: &mut World, ns: &str, name: &str, scale: &Value) -> ApiResult {
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
    let updated = w.scale_fleet(ns, name, fleet)?;
    ok(&scale_of(&updated))
}

pub(super) async fn replace_scale(
    State(s): State<ApiState>,
    Path((ns, name)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    let v = parse_body(&body, "autoscaling/v1", "Scale")?;
    apply_scale(&mut *s.lock()?, &ns, &name, &v)
}

pub(super) async fn patch_scale(
    State(s): State<ApiState>,
    Path((ns, name)): Path<(String, String)>,
    h: HeaderMap,
    p: Params,
    body: Bytes,
) -> ApiResult {
    let pt = patch_type(&h)?;
    check_patch_options(&pt, &p.0)?;
    for _ in 0..PATCH_ATTEMPTS {
        let current = scale_of(&s.lock()?.get_fleet(&ns, &name)?);
        let rv = current.pointer("/metadata/resourceVersion").cloned();
        let mut doc = patched(current, pt, body.clone(), "fleets").await?;
        // Without a resourceVersion of its own, the patch applies to the Scale it was applied
        // to; if the Fleet changed before the write, it is applied again.
        let precondition = doc.pointer("/metadata/resourceVersion") != rv.as_ref();
        if !precondition && let (Some(m), Some(rv)) = (doc.get_mut("metadata"), rv) {
            m["resourceVersion"] = rv;
        }
        match apply_scale(&mut *s.lock()?, &ns, &name, &doc) {
            Err(e) if e.code == 409 && !precondition => continue,
            r => return r,
        }
    }
    Err(ApiError::conflict("fleets.agones.dev", &name))
}
