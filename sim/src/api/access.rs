//! `SelfSubjectAccessReview` create (`POST /apis/authorization.k8s.io/v1/
//! selfsubjectaccessreviews`): "may I do this?", answered as the Kubernetes API server answers
//! a cluster admin (`system:masters`): allowed, whatever is asked. The simulator has no
//! authorization; this lets `upsoak-chaos preflight` and `kubectl auth can-i` ask it.
//!
//! Shape (k8s.io/api `authorization/v1/types.go`, `SelfSubjectAccessReview`; the REST storage
//! in k8s.io/kubernetes `pkg/registry/authorization/selfsubjectaccessreview/rest.go`, `Create`):
//! the request's spec comes back with `status: {allowed, reason}`; a spec with neither or both
//! of `resourceAttributes` and `nonResourceAttributes` is 422 Invalid (`pkg/apis/authorization/
//! validation`, `ValidateSelfSubjectAccessReviewSpec`); nothing is stored, and the answer is
//! 201 Created as for any create.

use axum::body::Bytes;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::request::parse_body;
use super::{ApiResult, json_response};
use crate::status::{ApiError, Cause};

/// What `reason` says for an allowed request: RBAC's wording for the `cluster-admin` binding
/// every admin kubeconfig goes through (k8s.io/kubernetes `plugin/pkg/auth/authorizer/rbac`,
/// `authorizingVisitor.Visit`).
const ADMIN_REASON: &str = "RBAC: allowed by ClusterRoleBinding \"cluster-admin\" of ClusterRole \"cluster-admin\" to Group \"system:masters\"";

/// `POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews`.
pub(super) async fn self_subject_access_review(body: Bytes) -> ApiResult {
    let v = parse_body(&body, "authorization.k8s.io/v1", "SelfSubjectAccessReview")?;
    let spec = v.get("spec").cloned().unwrap_or(Value::Null);
    let present = |k: &str| spec.get(k).is_some_and(|a| !a.is_null());
    let (resource, non_resource) = (
        present("resourceAttributes"),
        present("nonResourceAttributes"),
    );
    if resource == non_resource {
        let message = if resource {
            "cannot be specified in combination with resourceAttributes"
        } else {
            "exactly one of nonResourceAttributes or resourceAttributes must be specified"
        };
        let field = if resource {
            "spec.nonResourceAttributes"
        } else {
            "spec.resourceAttributes"
        };
        return Err(ApiError {
            code: 422,
            reason: "Invalid",
            message: format!(
                "SelfSubjectAccessReview.authorization.k8s.io \"\" is invalid: {field}: Invalid value: \"null\": {message}"
            ),
            kind: Some("SelfSubjectAccessReview".into()),
            name: Some(String::new()),
            causes: vec![Cause {
                field: field.into(),
                message: message.into(),
            }],
        });
    }
    Ok(json_response(
        StatusCode::CREATED,
        &json!({
            "kind": "SelfSubjectAccessReview",
            "apiVersion": "authorization.k8s.io/v1",
            "metadata": {"creationTimestamp": null},
            "spec": spec,
            "status": {"allowed": true, "reason": ADMIN_REASON},
        }),
    ))
}
