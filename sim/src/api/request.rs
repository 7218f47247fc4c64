//! What a request carries: list and watch query parameters with their selectors, bodies of a
//! given kind, and the patch types the API accepts for custom resources.

use std::collections::HashMap;
use std::time::Duration;

use axum::http::{HeaderMap, header};
use serde_json::Value;

use crate::selector::{FieldSelector, Selector};
use crate::status::{ApiError, Cause};

// ----- query parameters -----

pub(super) struct ListQuery {
    pub(super) labels: Selector,
    pub(super) fields: FieldSelector,
    pub(super) watch: bool,
    pub(super) resource_version: Option<String>,
    pub(super) timeout: Option<Duration>,
    pub(super) bookmarks: bool,
}

pub(super) fn list_query(
    p: &HashMap<String, String>,
    fields: &[&str],
) -> Result<ListQuery, ApiError> {
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

pub(super) fn wants_table(h: &HeaderMap) -> bool {
    h.get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("as=Table"))
}

/// Parses a request body as JSON of the given kind: 400 when it is not JSON or not that kind.
pub(super) fn parse_body(body: &[u8], api_version: &str, kind: &str) -> Result<Value, ApiError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the request body is not valid JSON: {e}")))?;
    check_kind(&v, api_version, kind)?;
    Ok(v)
}

/// Decodes a JSON value into `T`: 422 naming the field when its shape is wrong.
pub(super) fn decode_value<T: serde::de::DeserializeOwned>(
    value: Value,
    kind: &str,
) -> Result<T, ApiError> {
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

pub(super) fn check_kind(v: &Value, api_version: &str, kind: &str) -> Result<(), ApiError> {
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

/// The patch types the API accepts for custom resources.
pub(super) enum PatchType {
    Merge,
    Json,
    Apply,
}

pub(super) fn patch_type(h: &HeaderMap) -> Result<PatchType, ApiError> {
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

/// Checks a patch's query options as the API server does before it looks the object up: an
/// apply needs a `fieldManager`; `force` is only for apply (k8s.io/apimachinery
/// `pkg/apis/meta/v1/validation/validation.go`, `ValidatePatchOptions`).
pub(super) fn check_patch_options(
    pt: &PatchType,
    p: &HashMap<String, String>,
) -> Result<(), ApiError> {
    match pt {
        PatchType::Apply if p.get("fieldManager").is_none_or(String::is_empty) => {
            Err(ApiError::invalid_patch_options(
                "fieldManager",
                "Required value: is required for apply patch",
            ))
        }
        PatchType::Merge | PatchType::Json if p.contains_key("force") => {
            Err(ApiError::invalid_patch_options(
                "force",
                "Forbidden: may not be specified for non-apply patch",
            ))
        }
        _ => Ok(()),
    }
}

/// Applies a patch body to `doc`.
pub(super) fn apply_patch(doc: &mut Value, pt: &PatchType, body: &[u8]) -> Result<(), ApiError> {
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
