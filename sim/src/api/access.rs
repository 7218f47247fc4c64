//! `SelfSubjectAccessReview` create (`POST /apis/authorization.k8s.io/v1/
//! selfsubjectaccessreviews`): "may I do this?", answered as the Kubernetes API server answers
//! a cluster admin (`system:masters`): allowed, unless the configuration's `access.deny` names
//! the request (`{verb, group, resource, namespace}`), as a least-privilege Role that lacks it
//! would answer. The simulator has no authorization (real RBAC cannot run here): the deny list
//! only shapes these answers, so `upsoak-chaos preflight` and `kubectl auth can-i` can be shown
//! a missing permission; the requests themselves are still served.
//!
//! Shape (k8s.io/api `authorization/v1/types.go`, `SelfSubjectAccessReview`; the REST storage
//! in k8s.io/kubernetes `pkg/registry/authorization/selfsubjectaccessreview/rest.go`, `Create`):
//! the request's spec comes back with `status: {allowed, reason}`; a spec with neither or both
//! of `resourceAttributes` and `nonResourceAttributes` is 422 Invalid (`pkg/apis/authorization/
//! validation`, `ValidateSelfSubjectAccessReviewSpec`); nothing is stored, and the answer is
//! 201 Created as for any create.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::request::parse_body;
use super::{ApiResult, ApiState, json_response};
use crate::status::{ApiError, Cause};

/// What `reason` says for an allowed request: RBAC's wording for the `cluster-admin` binding
/// every admin kubeconfig goes through (k8s.io/kubernetes `plugin/pkg/auth/authorizer/rbac`,
/// `authorizingVisitor.Visit`).
const ADMIN_REASON: &str = "RBAC: allowed by ClusterRoleBinding \"cluster-admin\" of ClusterRole \"cluster-admin\" to Group \"system:masters\"";

/// What the simulator's `SelfSubjectAccessReview` denies.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AccessSpec {
    /// Requests denied; every other is allowed.
    #[serde(default)]
    pub deny: Vec<AccessRule>,
}

/// One denied request: `verb` on `group`/`resource`, in `namespace` (every namespace and
/// cluster-wide when absent). `*` in `verb`, `group` or `resource` matches any, as in an RBAC
/// rule (k8s.io/api `rbac/v1/types.go`, `PolicyRule`, `VerbAll`/`APIGroupAll`/`ResourceAll`).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AccessRule {
    pub verb: String,
    /// The API group, `""` (the default) for the core group.
    #[serde(default)]
    pub group: String,
    pub resource: String,
    #[serde(default)]
    pub namespace: Option<String>,
}

impl AccessRule {
    /// True when the review's `resourceAttributes` fall under this rule.
    fn matches(&self, attrs: &Value) -> bool {
        let field = |k: &str| attrs.get(k).and_then(Value::as_str).unwrap_or("");
        let eq = |rule: &str, asked: &str| rule == "*" || rule == asked;
        eq(&self.verb, field("verb"))
            && eq(&self.group, field("group"))
            && eq(&self.resource, field("resource"))
            && self
                .namespace
                .as_deref()
                .is_none_or(|ns| ns == field("namespace"))
    }
}

/// `reason` of a denied review: RBAC's wording when no rule allows a request (k8s.io/kubernetes
/// `plugin/pkg/auth/authorizer/rbac`, `RBACAuthorizer.Authorize`, which leaves `reason` empty
/// and lets the union authorizer say none allowed it).
const DENIED_REASON: &str = "upsoak-sim: denied by the configuration's access.deny";

/// `POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews`.
pub(super) async fn self_subject_access_review(
    State(s): State<ApiState>,
    body: Bytes,
) -> ApiResult {
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
    let denied = spec.get("resourceAttributes").is_some_and(|attrs| {
        s.lock()
            .map(|w| w.config().access.deny.iter().any(|r| r.matches(attrs)))
            .unwrap_or(false)
    });
    let status = if denied {
        json!({"allowed": false, "reason": DENIED_REASON})
    } else {
        json!({"allowed": true, "reason": ADMIN_REASON})
    };
    Ok(json_response(
        StatusCode::CREATED,
        &json!({
            "kind": "SelfSubjectAccessReview",
            "apiVersion": "authorization.k8s.io/v1",
            "metadata": {"creationTimestamp": null},
            "spec": spec,
            "status": status,
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rule_matches_its_request_and_wildcards_and_no_other() {
        let rule: AccessRule = serde_yaml::from_str(
            "{ verb: patch, group: apps, resource: deployments, namespace: agones-system }",
        )
        .unwrap();
        let asked = |verb: &str, group: &str, resource: &str, ns: &str| {
            rule.matches(
                &json!({"verb": verb, "group": group, "resource": resource, "namespace": ns}),
            )
        };
        assert!(asked("patch", "apps", "deployments", "agones-system"));
        assert!(!asked("get", "apps", "deployments", "agones-system"));
        assert!(!asked("patch", "", "deployments", "agones-system"));
        assert!(!asked("patch", "apps", "deployments", "default"));
        let any: AccessRule = serde_yaml::from_str("{ verb: '*', resource: secrets }").unwrap();
        assert!(any.matches(&json!({"verb": "list", "group": "", "resource": "secrets"})));
        assert!(any.matches(
            &json!({"verb": "get", "group": "", "resource": "secrets", "namespace": "x"})
        ));
        assert!(!any.matches(&json!({"verb": "get", "group": "", "resource": "pods"})));
        let e = serde_yaml::from_str::<AccessSpec>("deny: [ { verb: get } ]")
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing field `resource`"), "{e}");
    }
}
