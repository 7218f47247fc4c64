//! Lists in chunks: `limit` and `continue`, as the Kubernetes API server answers them
//! ("Retrieving large results sets in chunks" in the API concepts; k8s.io/apiserver
//! `pkg/storage/continue.go` for the token, `pkg/storage/etcd3/store.go`, `GetList`, for the
//! answers).
//!
//! - A list with `limit=N` returns at most N items in key order (`<namespace>/<name>`), and
//!   when more remain, `metadata.continue` and `metadata.remainingItemCount` (the latter only
//!   without selectors, as the API server counts only then).
//! - The token is the API server's own: base64url (no padding) of
//!   `{"v":"meta.k8s.io/v1","rv":<list rv>,"start":"<key after the last item>"}`.
//! - Every page carries the first page's resourceVersion, as the API server reads every page
//!   at that revision. The simulator keeps no snapshots, so a later page shows the objects as
//!   they are now (an object created or deleted between pages may appear or be missing);
//!   a watch started from that resourceVersion replays every change since, so a client that
//!   lists and then watches still ends up current.
//! - A token that does not decode is 400 `invalid continue token: …`; a token older than the
//!   simulator's change log is 410 `Expired` with a fresh token (rv -1) that continues at the
//!   latest state, as the API server answers a compacted revision
//!   (`handleCompactedErrorForPaging`); `resourceVersion` with `continue` is 400.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::json_response;
use crate::status::ApiError;

/// The API server's message for a continue token past compaction
/// (k8s.io/apiserver `pkg/storage/etcd3/store.go`, `inconsistentContinue`).
const INCONSISTENT_CONTINUE: &str = "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.";

/// Where a list starts and at which resourceVersion it answers.
pub(super) struct Cursor {
    /// Items with a key at or after this one (empty: from the first).
    start: String,
    /// The resourceVersion every page reports.
    pub(super) rv: u64,
}

/// `metadata` of one page.
#[derive(Debug, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PageMeta {
    pub(crate) resource_version: String,
    #[serde(rename = "continue", skip_serializing_if = "Option::is_none")]
    pub(crate) continue_: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) remaining_item_count: Option<u64>,
}

/// Why a page cannot be served: an error, or the 410 whose body carries a fresh token.
pub(super) enum Refused {
    Error(ApiError),
    Expired(String),
}

/// The 410 for a continue token older than the change log, with `metadata.continue` set to
/// a token (rv -1) that continues at the latest state.
pub(super) fn expired(token: &str) -> Response {
    let mut status = ApiError::expired(INCONSISTENT_CONTINUE).to_status();
    status["metadata"] = json!({ "continue": token });
    json_response(StatusCode::GONE, &status)
}

impl axum::response::IntoResponse for Refused {
    fn into_response(self) -> Response {
        match self {
            Refused::Error(e) => e.into_response(),
            Refused::Expired(token) => expired(&token),
        }
    }
}

impl From<ApiError> for Refused {
    fn from(e: ApiError) -> Self {
        Refused::Error(e)
    }
}

/// Reads `continue` and `resourceVersion` into a cursor. `current` is the world's
/// resourceVersion; `reaches_back(rv)` tells whether the change log still covers `rv`.
pub(super) fn cursor(
    token: Option<&str>,
    resource_version: Option<&str>,
    current: u64,
    reaches_back: impl Fn(u64) -> bool,
) -> Result<Cursor, Refused> {
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return Ok(Cursor {
            start: String::new(),
            rv: current,
        });
    };
    if resource_version.is_some_and(|rv| !rv.is_empty() && rv != "0") {
        return Err(ApiError::bad_request(
            "specifying resource version is not allowed when using continue",
        )
        .into());
    }
    let (start, rv) =
        decode(token).map_err(|e| ApiError::bad_request(format!("invalid continue token: {e}")))?;
    match u64::try_from(rv) {
        // rv -1: continue at the latest state (the token a 410 hands out).
        Err(_) => Ok(Cursor { start, rv: current }),
        Ok(rv) if rv > current || reaches_back(rv) => Ok(Cursor {
            start,
            rv: rv.min(current),
        }),
        Ok(_) => Err(Refused::Expired(encode(&start, -1))),
    }
}

/// The page of `items` (each with its key) that `cursor` and `limit` select, and its metadata.
/// `count_remaining`: whether `remainingItemCount` is given (no selectors).
pub(super) fn page<T>(
    mut items: Vec<(String, T)>,
    cursor: &Cursor,
    limit: Option<usize>,
    count_remaining: bool,
) -> (Vec<T>, PageMeta) {
    items.sort_by(|a, b| a.0.cmp(&b.0));
    let from = items.partition_point(|(k, _)| k.as_str() < cursor.start.as_str());
    let mut rest = items.split_off(from);
    let mut meta = PageMeta {
        resource_version: cursor.rv.to_string(),
        ..PageMeta::default()
    };
    if let Some(limit) = limit.filter(|l| *l > 0 && rest.len() > *l) {
        let remaining = rest.split_off(limit);
        if let Some((last, _)) = rest.last() {
            // The next key after the last one returned, as the API server's `key + "\x00"`.
            meta.continue_ = Some(encode(
                &format!("{last}\u{0}"),
                i64::try_from(cursor.rv).unwrap_or(-1),
            ));
        }
        if count_remaining {
            meta.remaining_item_count = Some(remaining.len() as u64);
        }
    }
    (rest.into_iter().map(|(_, o)| o).collect(), meta)
}

/// One page of a small list built as JSON (Deployments, Namespaces): `limit` and `continue`
/// read from the query, `items` keyed as [`key`] keys them.
pub(super) fn page_of_values(
    p: &std::collections::HashMap<String, String>,
    items: Vec<(String, Value)>,
    current: u64,
    reaches_back: impl Fn(u64) -> bool,
) -> Result<(Vec<Value>, PageMeta), Refused> {
    let limit = limit(p.get("limit"))?;
    let cur = cursor(
        p.get("continue").map(String::as_str),
        p.get("resourceVersion").map(String::as_str),
        current,
        reaches_back,
    )?;
    Ok(page(items, &cur, limit, true))
}

/// A list's key of an object, relative to the list's prefix: `<name>` within a namespace,
/// `<namespace>/<name>` across namespaces (the etcd key below `/registry/<group>/<resource>/`).
pub(super) fn key(all_namespaces: bool, ns: Option<&str>, name: Option<&str>) -> String {
    let name = name.unwrap_or("");
    if all_namespaces {
        format!("{}/{name}", ns.unwrap_or(""))
    } else {
        name.to_owned()
    }
}

/// Reads `limit`: a whole number; 0 or none means every item.
pub(super) fn limit(v: Option<&String>) -> Result<Option<usize>, ApiError> {
    let Some(v) = v else { return Ok(None) };
    let n: i64 = v
        .parse()
        .map_err(|_| ApiError::bad_request(format!("limit: `{v}` is not a whole number")))?;
    Ok(usize::try_from(n).ok().filter(|n| *n > 0))
}

fn encode(start: &str, rv: i64) -> String {
    let doc = json!({"v": "meta.k8s.io/v1", "rv": rv, "start": start});
    base64url(doc.to_string().as_bytes())
}

/// The token's start key and resourceVersion, refused as the API server refuses them
/// (`DecodeContinue`).
fn decode(token: &str) -> Result<(String, i64), String> {
    const INVALID: &str = "continue key is not valid";
    let bytes = unbase64url(token).ok_or_else(|| format!("{INVALID}: not base64url"))?;
    let doc: Value = serde_json::from_slice(&bytes).map_err(|e| format!("{INVALID}: {e}"))?;
    match doc.get("v").and_then(Value::as_str) {
        Some("meta.k8s.io/v1") => {}
        other => {
            return Err(format!(
                "{INVALID}: server does not recognize this encoded version {}",
                other.unwrap_or("")
            ));
        }
    }
    let rv = doc.get("rv").and_then(Value::as_i64).unwrap_or(0);
    if rv == 0 {
        return Err(format!(
            "{INVALID}: incorrect encoded start resourceVersion (version meta.k8s.io/v1)"
        ));
    }
    let start = doc.get("start").and_then(Value::as_str).unwrap_or("");
    if start.is_empty() {
        return Err(format!(
            "{INVALID}: encoded start key empty (version meta.k8s.io/v1)"
        ));
    }
    // The API server refuses a key that `path.Clean` would change (no `..` out of the prefix).
    if start.split('/').any(|s| s == ".." || s == ".") || start.contains("//") {
        return Err(format!("{INVALID}: {start}"));
    }
    Ok((start.to_owned(), rv))
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// base64url without padding (Go's `base64.RawURLEncoding`).
fn base64url(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(char::from(B64[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

fn unbase64url(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let v = B64.iter().position(|&x| x == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    // A lone trailing character carries less than a byte: not valid base64.
    (bits < 6).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_round_trips_and_matches_go() {
        // Go: base64.RawURLEncoding.EncodeToString([]byte(`{"v":"meta.k8s.io/v1"}`)).
        assert_eq!(
            base64url(br#"{"v":"meta.k8s.io/v1"}"#),
            "eyJ2IjoibWV0YS5rOHMuaW8vdjEifQ"
        );
        for s in ["", "a", "ab", "abc", "abcd", "ns/name\u{0}"] {
            assert_eq!(unbase64url(&base64url(s.as_bytes())).unwrap(), s.as_bytes());
        }
        assert!(unbase64url("a").is_none());
        assert!(unbase64url("a=").is_none());
    }

    fn keyed(n: usize) -> Vec<(String, usize)> {
        (0..n).map(|i| (format!("gs-{i:02}"), i)).collect()
    }

    #[test]
    fn pages_walk_every_item_once_with_a_count_of_the_rest() {
        let mut cur = cursor(None, None, 7, |_| true).ok().unwrap();
        let mut seen = Vec::new();
        loop {
            let (items, meta) = page(keyed(5), &cur, Some(2), true);
            assert_eq!(meta.resource_version, "7");
            seen.extend(items);
            let Some(token) = meta.continue_ else {
                assert_eq!(meta.remaining_item_count, None);
                break;
            };
            assert_eq!(meta.remaining_item_count, Some(5 - seen.len() as u64));
            // Later pages answer at the first page's rv even though the world moved on.
            cur = cursor(Some(&token), None, 9, |_| true).ok().unwrap();
        }
        assert_eq!(seen, vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn bad_tokens_are_400_and_old_ones_410_with_a_token_that_continues() {
        for bad in [
            "%%%",
            "e30",
            &encode("a", 0),
            &encode("", 5),
            &encode("../x", 5),
        ] {
            match cursor(Some(bad), None, 9, |_| true) {
                Err(Refused::Error(e)) => {
                    assert_eq!(e.code, 400, "{bad}");
                    assert!(
                        e.message
                            .starts_with("invalid continue token: continue key is not valid"),
                        "{}",
                        e.message
                    );
                }
                _ => panic!("{bad} accepted"),
            }
        }
        let with_rv = cursor(Some(&encode("a", 5)), Some("5"), 9, |_| true);
        assert!(matches!(with_rv, Err(Refused::Error(e)) if e.code == 400));
        let old = cursor(Some(&encode("gs-02\u{0}", 3)), None, 9, |rv| rv > 4);
        let Err(Refused::Expired(token)) = old else {
            panic!("an rv past the log was served")
        };
        assert_eq!(decode(&token).unwrap(), ("gs-02\u{0}".to_owned(), -1));
        assert_eq!(expired(&token).status(), StatusCode::GONE);
        let fresh = cursor(Some(&encode("gs-02\u{0}", -1)), None, 9, |_| false)
            .ok()
            .unwrap();
        let (items, meta) = page(keyed(5), &fresh, None, true);
        assert_eq!((items, meta.resource_version.as_str()), (vec![3, 4], "9"));
    }
}
