//! API errors as Kubernetes `Status` objects (`kind: Status`, `status: Failure`), so kube-rs and
//! kubectl report them exactly as they would a real API server's.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Seconds a 429 asks the client to wait before it retries (the API server's `retryAfter`, 1).
pub const RETRY_AFTER_SECONDS: u32 = 1;

/// One field-level problem of an Invalid (422) error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cause {
    pub field: String,
    pub message: String,
}

/// Which of Agones' admission webhooks a write goes through (both served by `agones-extensions`
/// behind `agones-controller-service`; `pkg/util/webhooks/webhooks.go`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Webhook {
    /// `mutations.agones.dev` at `/mutate`: CREATE of Fleets and GameServers (mutating webhooks
    /// run first, so a create fails here).
    Mutation,
    /// `validations.agones.dev` at `/validate`: UPDATE of Fleets and GameServerSets.
    Validation,
}

impl Webhook {
    /// The webhook's name in the chart's configurations.
    pub fn name(self) -> &'static str {
        match self {
            Webhook::Mutation => "mutations.agones.dev",
            Webhook::Validation => "validations.agones.dev",
        }
    }

    /// Its path on `agones-controller-service`.
    fn path(self) -> &'static str {
        match self {
            Webhook::Mutation => "mutate",
            Webhook::Validation => "validate",
        }
    }
}

/// An error the API answers with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub code: u16,
    /// Kubernetes `StatusReason`: `NotFound`, `AlreadyExists`, `Conflict`, `Invalid`, …
    pub reason: &'static str,
    pub message: String,
    /// `details.kind` and `details.name`, when the error is about one object.
    pub kind: Option<String>,
    pub name: Option<String>,
    pub causes: Vec<Cause>,
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            kind: None,
            name: None,
            causes: Vec::new(),
        }
    }

    /// 400: a body that cannot be decoded, a bad query parameter.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(400, "BadRequest", message)
    }

    /// 404 for `resource` (e.g. `fleets.agones.dev`) named `name`.
    pub fn not_found(resource: &str, name: &str) -> Self {
        ApiError {
            kind: Some(resource.split('.').next().unwrap_or(resource).to_owned()),
            name: Some(name.to_owned()),
            ..ApiError::new(404, "NotFound", format!("{resource} \"{name}\" not found"))
        }
    }

    /// 404 for a path the server does not serve.
    pub fn no_route(path: &str) -> Self {
        ApiError::new(
            404,
            "NotFound",
            format!("the server could not find the requested resource ({path})"),
        )
    }

    /// 409: create of a name that exists.
    pub fn already_exists(resource: &str, name: &str) -> Self {
        ApiError {
            kind: Some(resource.split('.').next().unwrap_or(resource).to_owned()),
            name: Some(name.to_owned()),
            ..ApiError::new(
                409,
                "AlreadyExists",
                format!("{resource} \"{name}\" already exists"),
            )
        }
    }

    /// 409: an update or patch carrying a stale `resourceVersion`.
    pub fn conflict(resource: &str, name: &str) -> Self {
        ApiError {
            kind: Some(resource.split('.').next().unwrap_or(resource).to_owned()),
            name: Some(name.to_owned()),
            ..ApiError::new(
                409,
                "Conflict",
                format!(
                    "Operation cannot be fulfilled on {resource} \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
                ),
            )
        }
    }

    /// 413 `RequestEntityTooLarge`: a body past a limit, e.g. a JSON patch with more operations
    /// than the API server allows (k8s.io/apiserver `pkg/endpoints/handlers/patch.go`).
    pub fn too_large(message: impl Into<String>) -> Self {
        ApiError::new(413, "RequestEntityTooLarge", message)
    }

    /// 410 `Expired`: a resourceVersion or continue token older than the change log.
    pub fn expired(message: impl Into<String>) -> Self {
        ApiError::new(410, "Expired", message)
    }

    /// 429 `TooManyRequests`: a limit on concurrent requests (e.g. open watches) is reached.
    /// 403 `Forbidden`.
    pub fn forbidden(message: impl Into<String>) -> Self {
        ApiError::new(403, "Forbidden", message)
    }

    pub fn too_many_requests(message: impl Into<String>) -> Self {
        ApiError::new(429, "TooManyRequests", message)
    }

    /// 422 with one cause per invalid field.
    pub fn invalid(kind: &str, name: &str, causes: Vec<Cause>) -> Self {
        let list: Vec<String> = causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        ApiError {
            kind: Some(kind.to_owned()),
            name: Some(name.to_owned()),
            causes,
            ..ApiError::new(
                422,
                "Invalid",
                format!(
                    "{kind}.agones.dev \"{name}\" is invalid: [{}]",
                    list.join(", ")
                ),
            )
        }
    }

    /// 422 for a patch's query options the API server refuses (`PatchOptions.meta.k8s.io`),
    /// e.g. an apply without `fieldManager` (k8s.io/apimachinery
    /// `pkg/apis/meta/v1/validation/validation.go`, `ValidatePatchOptions`, returned by
    /// k8s.io/apiserver `pkg/endpoints/handlers/patch.go` as `errors.NewInvalid`).
    pub fn invalid_patch_options(field: &str, message: &str) -> Self {
        ApiError {
            kind: Some("PatchOptions".to_owned()),
            name: Some(String::new()),
            causes: vec![Cause {
                field: field.to_owned(),
                message: message.to_owned(),
            }],
            ..ApiError::new(
                422,
                "Invalid",
                format!("PatchOptions.meta.k8s.io \"\" is invalid: {field}: {message}"),
            )
        }
    }

    /// 405 for a verb the resource does not support.
    pub fn method_not_allowed(what: &str) -> Self {
        ApiError::new(
            405,
            "MethodNotAllowed",
            format!("the server does not allow this method on the requested resource ({what})"),
        )
    }

    /// 415 for a patch type the resource does not support.
    pub fn unsupported_media_type(content_type: &str) -> Self {
        ApiError::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got `{content_type}`)"
            ),
        )
    }

    /// 500 `InternalError` for a write one of Agones' webhooks must admit while `agones-extensions`
    /// is down (an upgrade window). The chart registers them with `failurePolicy: Fail`
    /// (`install/helm/agones/templates/extensions.yaml`), so the apiserver fails closed with
    /// `apierrors.NewInternalError(&ErrCallingWebhook{..})` (Kubernetes
    /// `staging/src/k8s.io/apiserver/pkg/admission/plugin/webhook/{mutating,validating}/dispatcher.go`):
    /// 500, reason `InternalError`, the error as the message and as the one cause.
    pub fn webhook_unavailable(webhook: Webhook) -> Self {
        let (name, path) = (webhook.name(), webhook.path());
        let err = format!(
            "failed calling webhook \"{name}\": failed to call webhook: Post \"https://agones-controller-service.agones-system.svc:443/{path}?timeout=10s\": no endpoints available for service \"agones-controller-service\""
        );
        ApiError {
            causes: vec![Cause {
                field: String::new(),
                message: err.clone(),
            }],
            ..ApiError::new(
                500,
                "InternalError",
                format!("Internal error occurred: {err}"),
            )
        }
    }

    /// 503 for an allocation during an upgrade window: the aggregated allocation API is down.
    pub fn allocator_unavailable() -> Self {
        ApiError::new(
            503,
            "ServiceUnavailable",
            "the server is currently unable to handle the request (post gameserverallocations.allocation.agones.dev): no endpoints available for service \"agones-controller-service\"",
        )
    }

    /// 500 from the allocator (a fault profile's injected failure).
    pub fn internal(message: impl Into<String>) -> Self {
        ApiError::new(
            500,
            "InternalError",
            format!("Internal error occurred: {}", message.into()),
        )
    }

    /// The `Status` object.
    pub fn to_status(&self) -> serde_json::Value {
        let mut details = serde_json::Map::new();
        if let Some(n) = &self.name {
            details.insert("name".into(), json!(n));
        }
        if let Some(k) = &self.kind {
            details.insert("kind".into(), json!(k));
        }
        if let Some(k) = &self.kind
            && matches!(
                k.as_str(),
                "fleets" | "gameservers" | "fleet" | "gameserver"
            )
        {
            details.insert("group".into(), json!("agones.dev"));
        }
        if self.code == 429 {
            // `NewTooManyRequests(message, retryAfterSeconds)` (Kubernetes
            // `staging/src/k8s.io/apimachinery/pkg/api/errors/errors.go`).
            details.insert("retryAfterSeconds".into(), json!(RETRY_AFTER_SECONDS));
        }
        if !self.causes.is_empty() {
            details.insert(
                "causes".into(),
                self.causes
                    .iter()
                    .map(|c| {
                        if c.field.is_empty() {
                            // `NewInternalError`'s cause carries only the message.
                            json!({"message": c.message})
                        } else {
                            json!({"reason": "FieldValueInvalid", "message": c.message, "field": c.field})
                        }
                    })
                    .collect(),
            );
        }
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if !details.is_empty() {
            status["details"] = serde_json::Value::Object(details);
        }
        status
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.code, self.reason, self.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (
            code,
            [(header::CONTENT_TYPE, "application/json")],
            self.to_status().to_string(),
        )
            .into_response();
        if code == StatusCode::TOO_MANY_REQUESTS {
            // The max-in-flight filter's header (Kubernetes
            // `staging/src/k8s.io/apiserver/pkg/server/filters/maxinflight.go`,
            // `tooManyRequests`); kubectl and client-go wait that long and retry.
            response.headers_mut().insert(
                header::RETRY_AFTER,
                header::HeaderValue::from(RETRY_AFTER_SECONDS),
            );
        }
        response
    }
}
