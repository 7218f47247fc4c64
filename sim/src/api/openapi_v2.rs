//! `GET /openapi/v2`: a small Swagger 2.0 document of the kinds the simulator serves, as JSON
//! or as the protobuf kubectl asks for.
//!
//! kubectl before 1.29 reads this document for client-side validation before `create` and
//! `apply` (k8s.io/kubectl `pkg/cmd/util/factory_client_access.go`, `Validator`, calls
//! `OpenAPISchema()`), and fails with "the server could not find the requested resource"
//! without it. client-go asks with `Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf`
//! and unmarshals the body as gnostic's `openapi_v2.Document` (k8s.io/client-go
//! `discovery/discovery_client.go`, `OpenAPISchema`), so that is what it gets; other clients
//! get JSON. Both are the same document, built once below.
//!
//! Each kind is a definition with `x-kubernetes-group-version-kind`, which kubectl uses to find
//! a kind's schema (k8s.io/kube-openapi `pkg/util/proto`, `NewOpenAPIData`), with its top-level
//! fields: `metadata`, `spec` and `status` are left open (no `type`), as a CRD with
//! `x-kubernetes-preserve-unknown-fields` would be, so kubectl checks only the top level.
//! Custom resources are applied with a JSON merge patch whatever this document says, as the
//! kind is not in kubectl's scheme (`pkg/cmd/apply/patcher.go`, `patchSimple`).

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::discovery::GROUPS;
use super::json_response;

/// The media type the API server labels the protobuf with. client-go asks for
/// `…spec.v2@v1.0+protobuf`, but `@` is not allowed in a media type, so the answer is labelled
/// with the `.v1.0` spelling, which client-go's `mime.ParseMediaType` accepts (k8s.io/kube-openapi
/// `pkg/handler/handler.go`, `subTypeProtobufDeprecated` asked, `subTypeProtobuf` answered).
pub(super) const PROTOBUF: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

pub(super) async fn openapi_v2(h: HeaderMap) -> Response {
    let doc = document();
    let wants_protobuf = h
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("protobuf"));
    if wants_protobuf {
        let mut r = (StatusCode::OK, pb::document(&doc)).into_response();
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROTOBUF));
        return r;
    }
    json_response(StatusCode::OK, &doc)
}

/// The definition name of a kind, as the API server names CRD kinds (reversed group).
fn definition_name(group: &str, version: &str, kind: &str) -> String {
    let reversed: Vec<&str> = group.split('.').rev().collect();
    format!("{}.{version}.{kind}", reversed.join("."))
}

/// The Swagger 2.0 document: every kind of [`GROUPS`], its paths and its definition.
pub(super) fn document() -> Value {
    let mut paths = Map::new();
    let mut definitions = Map::new();
    for g in &GROUPS {
        let Some(resources) = (g.resources)().as_array().cloned() else {
            continue;
        };
        for r in resources {
            let (Some(name), Some(kind)) = (r["name"].as_str(), r["kind"].as_str()) else {
                continue;
            };
            if name.contains('/') {
                continue;
            }
            let gvk = json!({"group": g.group, "version": g.version, "kind": kind});
            let verbs: Vec<&str> = r["verbs"]
                .as_array()
                .map(|v| v.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let op = |action: &str| {
                json!({"operationId": format!("{action}{kind}"),
                    "responses": {"200": {"description": "OK"}},
                    "x-kubernetes-action": action, "x-kubernetes-group-version-kind": gvk})
            };
            let base = format!(
                "/apis/{}/{}/namespaces/{{namespace}}/{name}",
                g.group, g.version
            );
            let mut collection = Map::new();
            let mut item = Map::new();
            for (verb, method, action, on_item) in [
                ("list", "get", "list", false),
                ("create", "post", "post", false),
                ("get", "get", "get", true),
                ("update", "put", "put", true),
                ("patch", "patch", "patch", true),
                ("delete", "delete", "delete", true),
            ] {
                if verbs.contains(&verb) {
                    let target = if on_item { &mut item } else { &mut collection };
                    target.insert(method.to_owned(), op(action));
                }
            }
            if !collection.is_empty() {
                paths.insert(base.clone(), Value::Object(collection));
            }
            if !item.is_empty() {
                paths.insert(format!("{base}/{{name}}"), Value::Object(item));
            }
            let open = json!({"description": "not checked by the simulator's schema"});
            definitions.insert(
                definition_name(g.group, g.version, kind),
                json!({
                    "description": format!("{kind} ({}/{}), as upsoak-sim serves it", g.group, g.version),
                    "type": "object",
                    "properties": {
                        "apiVersion": {"type": "string"},
                        "kind": {"type": "string"},
                        "metadata": open, "spec": open, "status": open,
                    },
                    "x-kubernetes-group-version-kind": [gvk],
                }),
            );
        }
    }
    json!({"swagger": "2.0",
        "info": {"title": "upsoak-sim", "version": env!("CARGO_PKG_VERSION")},
        "paths": paths, "definitions": definitions})
}

/// The protobuf encoding of the document above, as gnostic's `openapi_v2` messages
/// (github.com/google/gnostic `openapiv2/OpenAPIv2.proto`; field numbers in the comments).
/// Only what [`document`] uses is encoded: strings, nested messages and repeated fields.
mod pb {
    use serde_json::Value;

    fn varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    /// A length-delimited field (wire type 2): a string or an embedded message.
    fn bytes(out: &mut Vec<u8>, field: u32, data: &[u8]) {
        varint(out, (u64::from(field) << 3) | 2);
        varint(out, data.len() as u64);
        out.extend_from_slice(data);
    }

    fn string(out: &mut Vec<u8>, field: u32, v: Option<&str>) {
        if let Some(s) = v.filter(|s| !s.is_empty()) {
            bytes(out, field, s.as_bytes());
        }
    }

    fn entries(v: &Value) -> impl Iterator<Item = (&String, &Value)> {
        v.as_object().into_iter().flatten()
    }

    /// `NamedAny { name = 1; Any value = 2 }`, `Any { yaml = 2 }`: the value as JSON, which
    /// is YAML, as kube-openapi reads it (`VendorExtensionToMap`).
    fn vendor_extensions(out: &mut Vec<u8>, field: u32, v: &Value) {
        for (k, x) in entries(v).filter(|(k, _)| k.starts_with("x-")) {
            let mut any = Vec::new();
            string(&mut any, 2, Some(&x.to_string()));
            let mut named = Vec::new();
            string(&mut named, 1, Some(k));
            bytes(&mut named, 2, &any);
            bytes(out, field, &named);
        }
    }

    /// `Document`: swagger = 1, info = 2, paths = 8, definitions = 9.
    pub(super) fn document(doc: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        string(&mut out, 1, doc["swagger"].as_str());
        let mut info = Vec::new(); // Info: title = 1, version = 2.
        string(&mut info, 1, doc["info"]["title"].as_str());
        string(&mut info, 2, doc["info"]["version"].as_str());
        bytes(&mut out, 2, &info);
        let mut paths = Vec::new(); // Paths: repeated NamedPathItem path = 2.
        for (name, item) in entries(&doc["paths"]) {
            let mut named = Vec::new();
            string(&mut named, 1, Some(name));
            bytes(&mut named, 2, &path_item(item));
            bytes(&mut paths, 2, &named);
        }
        bytes(&mut out, 8, &paths);
        let mut defs = Vec::new(); // Definitions: repeated NamedSchema additional_properties = 1.
        named_schemas(&mut defs, &doc["definitions"]);
        bytes(&mut out, 9, &defs);
        out
    }

    /// `PathItem`: get = 2, put = 3, post = 4, delete = 5, patch = 8.
    fn path_item(v: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        for (method, field) in [
            ("get", 2),
            ("put", 3),
            ("post", 4),
            ("delete", 5),
            ("patch", 8),
        ] {
            if let Some(op) = v.get(method) {
                bytes(&mut out, field, &operation(op));
            }
        }
        out
    }

    /// `Operation`: operation_id = 5, responses = 9, vendor_extension = 13.
    fn operation(v: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        string(&mut out, 5, v["operationId"].as_str());
        // Responses: repeated NamedResponseValue response_code = 1; ResponseValue: response = 1;
        // Response: description = 1.
        let mut responses = Vec::new();
        for (code, r) in entries(&v["responses"]) {
            let mut response = Vec::new();
            string(&mut response, 1, r["description"].as_str());
            let mut value = Vec::new();
            bytes(&mut value, 1, &response);
            let mut named = Vec::new();
            string(&mut named, 1, Some(code));
            bytes(&mut named, 2, &value);
            bytes(&mut responses, 1, &named);
        }
        bytes(&mut out, 9, &responses);
        vendor_extensions(&mut out, 13, v);
        out
    }

    /// Repeated `NamedSchema { name = 1; Schema value = 2 }` as field 1 of `out`.
    fn named_schemas(out: &mut Vec<u8>, v: &Value) {
        for (name, s) in entries(v) {
            let mut named = Vec::new();
            string(&mut named, 1, Some(name));
            bytes(&mut named, 2, &schema(s));
            bytes(out, 1, &named);
        }
    }

    /// `Schema`: description = 4, type = 22 (`TypeItem { repeated string value = 1 }`),
    /// properties = 25 (`Properties { repeated NamedSchema additional_properties = 1 }`),
    /// vendor_extension = 31.
    fn schema(v: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        string(&mut out, 4, v["description"].as_str());
        if let Some(t) = v["type"].as_str() {
            let mut type_item = Vec::new();
            string(&mut type_item, 1, Some(t));
            bytes(&mut out, 22, &type_item);
        }
        if v.get("properties").is_some() {
            let mut props = Vec::new();
            named_schemas(&mut props, &v["properties"]);
            bytes(&mut out, 25, &props);
        }
        vendor_extensions(&mut out, 31, v);
        out
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn varints_and_fields_are_protobufs() {
            let mut out = Vec::new();
            varint(&mut out, 300);
            assert_eq!(out, [0xac, 0x02]);
            let mut out = Vec::new();
            string(&mut out, 1, Some("2.0"));
            assert_eq!(out, [0x0a, 3, b'2', b'.', b'0']);
            let mut out = Vec::new();
            bytes(&mut out, 31, b"");
            assert_eq!(out, [0xfa, 0x01, 0]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_served_kind_has_a_definition_with_its_gvk() {
        let doc = document();
        let defs = doc["definitions"].as_object().unwrap();
        for (name, kind) in [
            ("dev.agones.v1.Fleet", "Fleet"),
            ("dev.agones.v1.GameServer", "GameServer"),
            (
                "dev.agones.allocation.v1.GameServerAllocation",
                "GameServerAllocation",
            ),
            ("apps.v1.Deployment", "Deployment"),
        ] {
            assert_eq!(
                defs[name]["x-kubernetes-group-version-kind"][0]["kind"], kind,
                "{name}"
            );
        }
        let fleets = &doc["paths"]["/apis/agones.dev/v1/namespaces/{namespace}/fleets/{name}"];
        assert_eq!(fleets["patch"]["x-kubernetes-action"], "patch");
        // GameServers are not created through the API here; the document says so.
        assert!(
            doc["paths"]["/apis/agones.dev/v1/namespaces/{namespace}/gameservers"]
                .get("post")
                .is_none()
        );
    }
}
