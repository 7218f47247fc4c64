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
    /// `limit`: at most this many items (none: all).
    pub(super) limit: Option<usize>,
    /// `continue`: the token of the previous page.
    pub(super) continue_token: Option<String>,
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
        limit: super::pages::limit(p.get("limit"))?,
        continue_token: p.get("continue").cloned(),
    })
}

pub(super) fn wants_table(h: &HeaderMap) -> bool {
    h.get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("as=Table"))
}

/// Parses a request body as JSON of the given kind: 400 when it is not JSON or not that kind.
pub fn parse_body(body: &[u8], api_version: &str, kind: &str) -> Result<Value, ApiError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the request body is not valid JSON: {e}")))?;
    check_kind(&v, api_version, kind)?;
    Ok(v)
}

/// Decodes a JSON value into `T`: 422 naming the field when its shape is wrong.
pub fn decode_value<T: serde::de::DeserializeOwned>(
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

pub fn check_kind(v: &Value, api_version: &str, kind: &str) -> Result<(), ApiError> {
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

// ----- bounded patches -----

/// Most operations one JSON patch may carry, as the Kubernetes API server allows
/// (`maxJSONPatchOperations` in k8s.io/apiserver `pkg/endpoints/handlers/patch.go`).
pub const MAX_PATCH_OPERATIONS: usize = 10_000;
/// Largest document a patch may produce, in [`weight`] units (about bytes of JSON): twice the
/// 2 MiB request body limit. A JSON-Patch `copy` doubles what it copies, so without a bound
/// 30 ops of ~1 KB make a document of 2^30 times the original.
pub const MAX_PATCHED_WEIGHT: usize = 4 << 20;
/// Deepest document a patch may produce. serde_json's own parser stops at 128; `copy` into
/// its own subtree doubles the depth per op, and `Value`'s `Clone` and `Drop` recurse, so an
/// unbounded chain overflows the worker's stack and aborts the process.
pub const MAX_PATCHED_DEPTH: usize = 100;

/// The patch types the API accepts for custom resources.
#[derive(Clone, Copy, Debug)]
pub enum PatchType {
    /// `application/merge-patch+json`.
    Merge,
    /// `application/json-patch+json`.
    Json,
    /// `application/apply-patch+yaml`.
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

/// Patches parsed and applied at once, at most, in the whole process. Each request's work is
/// bounded by [`MAX_PATCHED_WEIGHT`], but that counts nodes and string bytes, not the memory of
/// the parsed value: a refused 10 KB YAML alias bomb still holds about 130 MB while it is parsed
/// (D4), and 16 at once took the simulator to 2.1 GB, which glibc kept after they ended. The
/// work is CPU-bound, so more in flight would not finish sooner; 4 bound the parse memory to
/// about half a gigabyte and leave room for a controller's patch beside a kubectl one.
pub const MAX_PATCHES_IN_FLIGHT: usize = 4;

/// The permits of [`MAX_PATCHES_IN_FLIGHT`]: one simulator per process, so one pool.
static PATCH_PERMITS: tokio::sync::Semaphore =
    tokio::sync::Semaphore::const_new(MAX_PATCHES_IN_FLIGHT);

/// Applies a patch body to a copy of an object on a blocking thread, so neither the world's
/// lock nor an async worker waits on a large or hostile patch. Past [`MAX_PATCHES_IN_FLIGHT`]
/// the patch is refused at once with 429 and `Retry-After`, as the API server's max-in-flight
/// filter refuses a mutating request past `--max-mutating-requests-inflight` without queueing
/// (Kubernetes `staging/src/k8s.io/apiserver/pkg/server/filters/maxinflight.go`,
/// `WithMaxInFlightLimit`: `select { case c <- true: … default: tooManyRequests(…) }`).
pub(super) async fn patched(
    mut doc: Value,
    pt: PatchType,
    body: axum::body::Bytes,
    kind: &'static str,
) -> Result<Value, ApiError> {
    let permit = PATCH_PERMITS.try_acquire().map_err(|_| {
        ApiError::too_many_requests(format!(
            "Too many requests, please try again later: {MAX_PATCHES_IN_FLIGHT} patches are \
             being applied, the most the simulator applies at once"
        ))
    })?;
    tokio::task::spawn_blocking(move || {
        // Held until the work is done, even if the client went away meanwhile.
        let _permit = permit;
        apply_patch(&mut doc, pt, &body, kind).map(|()| doc)
    })
    .await
    .map_err(|e| ApiError::internal(format!("applying the patch: {e}")))?
}

/// Applies a patch body to `doc` within [`MAX_PATCH_OPERATIONS`], [`MAX_PATCHED_WEIGHT`] and
/// [`MAX_PATCHED_DEPTH`]; `kind` (e.g. `fleets`) names the object in a 422.
pub fn apply_patch(
    doc: &mut Value,
    pt: PatchType,
    body: &[u8],
    kind: &str,
) -> Result<(), ApiError> {
    let invalid = |message: String| {
        ApiError::invalid(
            kind,
            "",
            vec![Cause {
                field: String::new(),
                message,
            }],
        )
    };
    match pt {
        PatchType::Merge => {
            let patch: Value = serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("the patch is not valid JSON: {e}")))?;
            json_patch::merge(doc, &patch);
        }
        PatchType::Apply => {
            // Server-side apply is approximated as a merge of the applied configuration; field
            // ownership is not tracked. YAML is a superset of JSON, so both bodies parse.
            let patch = bounded_yaml(body).map_err(|e| {
                ApiError::bad_request(format!("the apply configuration is not valid YAML: {e}"))
            })?;
            json_patch::merge(doc, &patch);
        }
        PatchType::Json => {
            let patch: json_patch::Patch = serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("the JSON patch is not valid: {e}")))?;
            if patch.0.len() > MAX_PATCH_OPERATIONS {
                return Err(ApiError::too_large(format!(
                    "the JSON patch has {} operations, more than the {MAX_PATCH_OPERATIONS} allowed",
                    patch.0.len()
                )));
            }
            let mut bound = Bound::of(doc, body.len()).ok_or_else(|| {
                invalid(format!(
                    "the object is larger than {MAX_PATCHED_WEIGHT} bytes or deeper than {MAX_PATCHED_DEPTH} levels"
                ))
            })?;
            for (i, op) in patch.0.iter().enumerate() {
                bound.admit(doc, op).map_err(|e| {
                    invalid(format!(
                        "the JSON patch cannot be applied: operation {i}: {e}"
                    ))
                })?;
                // Each op alone: the document is a copy, dropped whole if an op fails.
                json_patch::patch_unsafe(doc, std::slice::from_ref(op)).map_err(|e| {
                    invalid(format!(
                        "the JSON patch cannot be applied: operation {i}: {e}"
                    ))
                })?;
            }
        }
    }
    Ok(())
}

/// Upper bounds of a document's weight and depth, kept across the ops of a JSON patch in
/// O(1) per op except `copy`, which weighs what it copies (within the remaining budget).
struct Bound {
    weight: usize,
    depth: usize,
}

impl Bound {
    /// The bound of `doc` plus the patch body (every value an op adds comes from the body);
    /// `None` when `doc` itself is over the limits.
    fn of(doc: &Value, body_len: usize) -> Option<Bound> {
        let (weight, depth) = measure(doc, MAX_PATCHED_WEIGHT)?;
        (depth <= MAX_PATCHED_DEPTH).then_some(Bound {
            weight: weight.saturating_add(body_len),
            depth,
        })
    }

    /// Checks that `op` keeps `doc` within the limits, and updates the bound.
    fn admit(&mut self, doc: &Value, op: &json_patch::PatchOperation) -> Result<(), String> {
        use json_patch::PatchOperation as Op;
        let segments = |p: &str| p.matches('/').count();
        let new_depth = match op {
            Op::Add(o) => segments(o.path.as_str()) + depth_of(&o.value),
            Op::Replace(o) => segments(o.path.as_str()) + depth_of(&o.value),
            Op::Remove(_) | Op::Test(_) => 0,
            // What sits at `from` is at most `depth - segments(from)` deep.
            Op::Move(o) => {
                segments(o.path.as_str()) + self.depth.saturating_sub(segments(o.from.as_str()))
            }
            Op::Copy(o) => {
                let Some(src) = doc.pointer(o.from.as_str()) else {
                    return Ok(()); // json_patch reports the missing `from`
                };
                let budget = MAX_PATCHED_WEIGHT.saturating_sub(self.weight);
                let (w, _) = measure(src, budget).ok_or_else(|| {
                    format!(
                        "copying `{}` would make the object larger than {MAX_PATCHED_WEIGHT} bytes",
                        o.from.as_str()
                    )
                })?;
                self.weight = self.weight.saturating_add(w);
                segments(o.path.as_str()) + self.depth.saturating_sub(segments(o.from.as_str()))
            }
        };
        if new_depth > MAX_PATCHED_DEPTH {
            return Err(format!(
                "the result would be {new_depth} levels deep, more than the {MAX_PATCHED_DEPTH} allowed"
            ));
        }
        self.depth = self.depth.max(new_depth);
        Ok(())
    }
}

/// Nesting levels of containers in `v` (a scalar is 0, `[]` is 1), without recursion.
fn depth_of(v: &Value) -> usize {
    measure(v, usize::MAX).map_or(usize::MAX, |(_, d)| d)
}

/// The weight (one per node plus the bytes of its strings and keys) and the depth of `v`,
/// walked without recursion; `None` as soon as the weight passes `budget`.
fn measure(v: &Value, budget: usize) -> Option<(usize, usize)> {
    let mut weight = 0usize;
    let mut depth = 0usize;
    let mut stack = vec![(v, 0usize)];
    while let Some((v, d)) = stack.pop() {
        weight = weight.saturating_add(1);
        match v {
            Value::String(s) => weight = weight.saturating_add(s.len()),
            Value::Array(a) => {
                depth = depth.max(d + 1);
                stack.extend(a.iter().map(|x| (x, d + 1)));
            }
            Value::Object(m) => {
                depth = depth.max(d + 1);
                for (k, x) in m {
                    weight = weight.saturating_add(k.len());
                    stack.push((x, d + 1));
                }
            }
            _ => {}
        }
        if weight > budget {
            return None;
        }
    }
    Some((weight, depth))
}

// ----- YAML bodies with bounded alias expansion -----

/// Parses a YAML body into JSON, refusing one that expands past [`MAX_PATCHED_WEIGHT`].
/// serde_yaml bounds alias *jumps*, not the expanded size (`serde_yaml` 0.9 `de.rs`), so
/// `a: &a [0 × K]` with `b: [*a × K]` makes K² nodes of 5K bytes; counting every node the
/// deserializer hands over stops such a body as soon as it passes the budget.
pub fn bounded_yaml(body: &[u8]) -> Result<Value, String> {
    use serde::de::DeserializeSeed as _;
    // Size, flow nesting and alias expansion are refused before serde_yaml parses anything
    // (`upsoak_common::yaml`): a refused bomb costs its events, not its expansion, and deep
    // flow nesting costs a linear scan, not libyaml's quadratic one.
    let text = std::str::from_utf8(body).map_err(|e| format!("the body is not UTF-8: {e}"))?;
    let limits = upsoak_common::yaml::Limits {
        depth: MAX_PATCHED_DEPTH,
        expanded: MAX_PATCHED_WEIGHT,
        ..upsoak_common::yaml::Limits::DEFAULT
    };
    upsoak_common::yaml::check_with(text, "the body", &limits).map_err(|e| e.to_string())?;
    let budget = std::cell::Cell::new(MAX_PATCHED_WEIGHT);
    let de = serde_yaml::Deserializer::from_str(text);
    Budgeted(&budget).deserialize(de).map_err(|e| e.to_string())
}

/// A [`Value`] seed that charges each node and string to a shared budget.
#[derive(Clone, Copy)]
struct Budgeted<'a>(&'a std::cell::Cell<usize>);

impl Budgeted<'_> {
    fn charge<E: serde::de::Error>(self, n: usize) -> Result<(), E> {
        let left = self
            .0
            .get()
            .checked_sub(n.saturating_add(1))
            .ok_or_else(|| {
                E::custom(format!(
                    "the document expands to more than {MAX_PATCHED_WEIGHT} bytes (aliases?)"
                ))
            })?;
        self.0.replace(left);
        Ok(())
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for Budgeted<'_> {
    type Value = Value;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Budgeted<'_> {
    type Value = Value;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a YAML value")
    }
    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Value, E> {
        self.charge(0)?;
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Value, E> {
        self.charge(0)?;
        Ok(Value::from(v))
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Value, E> {
        self.charge(0)?;
        Ok(Value::from(v))
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Value, E> {
        self.charge(0)?;
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Value, E> {
        self.charge(v.len())?;
        Ok(Value::String(v.to_owned()))
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<Value, E> {
        self.charge(0)?;
        Ok(Value::Null)
    }
    fn visit_none<E: serde::de::Error>(self) -> Result<Value, E> {
        self.visit_unit()
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        self.charge(0)?;
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(self)? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        self.charge(0)?;
        let mut out = serde_json::Map::new();
        while let Some(k) = map.next_key::<String>()? {
            self.charge(k.len())?;
            let v = map.next_value_seed(self)?;
            out.insert(k, v);
        }
        Ok(Value::Object(out))
    }
}
