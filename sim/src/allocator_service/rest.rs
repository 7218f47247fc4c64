//! The REST form of Agones' allocation API (`proto/allocation/allocation.proto` through the
//! gRPC gateway, `POST /gameserverallocation`): the JSON `AllocationRequest` converted to a
//! `GameServerAllocation` and the result back to an `AllocationResponse`, as Agones'
//! `pkg/allocation/converters/converter.go` (`ConvertAllocationRequestToGSA`,
//! `ConvertGSAToAllocationResponse`) does. Errors are the gateway's JSON status
//! (`{"code", "message", "details"}`) with its HTTP mapping of the gRPC code.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use upsoak_agones::allocation::AllocationMetadata;
use upsoak_agones::{
    AllocationState, GameServerAllocation, GameServerAllocationSpec, GameServerSelector,
};

/// `AllocationRequest` (the fields the simulator acts on; the others are accepted and ignored).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AllocationRequest {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// Deprecated in Agones for `gameServerSelectors`; tried last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_game_server_selector: Option<RestSelector>,
    /// Deprecated in Agones for `gameServerSelectors`; tried before the required one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub preferred_game_server_selectors: Vec<RestSelector>,
    /// `Packed` (default) or `Distributed`, the proto enum's names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduling: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<RestMetadata>,
    /// Tried in order; when given, the deprecated fields are ignored.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub game_server_selectors: Vec<RestSelector>,
}

/// `GameServerSelector` of the allocation proto.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestSelector {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub match_labels: BTreeMap<String, String>,
    /// `READY` (default) or `ALLOCATED`, the proto enum's names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub game_server_state: Option<String>,
}

/// `MetaPatch`: labels and annotations put on the allocated GameServer.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RestMetadata {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// `AllocationResponse`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AllocationResponse {
    pub game_server_name: String,
    #[serde(default)]
    pub ports: Vec<RestPort>,
    pub address: String,
    #[serde(default)]
    pub addresses: Vec<RestAddress>,
    pub node_name: String,
    pub source: String,
    #[serde(default)]
    pub metadata: Option<RestMetadata>,
}

/// `AllocationResponse.GameServerStatusPort`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RestPort {
    pub name: String,
    pub port: i32,
}

/// `AllocationResponse.GameServerStatusAddress`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RestAddress {
    #[serde(rename = "type")]
    pub type_: String,
    pub address: String,
}

/// A gRPC status as the gateway writes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RestError {
    pub code: i32,
    pub message: String,
    #[serde(default)]
    pub details: Vec<serde_json::Value>,
}

/// gRPC codes the allocator answers with.
pub const INVALID_ARGUMENT: i32 = 3;
pub const RESOURCE_EXHAUSTED: i32 = 8;
pub const ABORTED: i32 = 10;
pub const INTERNAL: i32 = 13;
pub const UNAVAILABLE: i32 = 14;

impl RestError {
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        RestError {
            code,
            message: message.into(),
            details: Vec::new(),
        }
    }

    /// The gateway's HTTP status for the code (grpc-gateway `runtime.HTTPStatusFromCode`).
    pub fn http_status(&self) -> StatusCode {
        match self.code {
            INVALID_ARGUMENT => StatusCode::BAD_REQUEST,
            RESOURCE_EXHAUSTED => StatusCode::TOO_MANY_REQUESTS,
            ABORTED => StatusCode::CONFLICT,
            UNAVAILABLE => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The code for a Kubernetes API status from the allocation path.
    pub fn from_http(code: u16, message: String) -> Self {
        let grpc = match code {
            400 | 422 => INVALID_ARGUMENT,
            429 => RESOURCE_EXHAUSTED,
            409 => ABORTED,
            503 => UNAVAILABLE,
            _ => INTERNAL,
        };
        RestError::new(grpc, message)
    }
}

impl IntoResponse for RestError {
    fn into_response(self) -> Response {
        (self.http_status(), axum::Json(self)).into_response()
    }
}

fn selector(s: &RestSelector) -> Result<GameServerSelector, RestError> {
    let state = match s.game_server_state.as_deref() {
        None | Some("READY") => None,
        Some("ALLOCATED") => Some("Allocated".to_owned()),
        Some(other) => {
            return Err(RestError::new(
                INVALID_ARGUMENT,
                format!("gameServerState: unknown value \"{other}\" (READY or ALLOCATED)"),
            ));
        }
    };
    let mut out = GameServerSelector {
        game_server_state: state,
        ..GameServerSelector::default()
    };
    if !s.match_labels.is_empty() {
        out.selector.match_labels = Some(s.match_labels.clone());
    }
    Ok(out)
}

/// `ConvertAllocationRequestToGSA`: the selectors (`gameServerSelectors`, or else the
/// preferred ones then the required one), scheduling and metadata.
pub fn to_gsa(req: &AllocationRequest) -> Result<GameServerAllocation, RestError> {
    let selectors = if req.game_server_selectors.is_empty() {
        req.preferred_game_server_selectors
            .iter()
            .chain(req.required_game_server_selector.iter())
            .map(selector)
            .collect::<Result<Vec<_>, _>>()?
    } else {
        req.game_server_selectors
            .iter()
            .map(selector)
            .collect::<Result<Vec<_>, _>>()?
    };
    let scheduling = match req.scheduling.as_deref() {
        None | Some("Packed") => "Packed",
        Some("Distributed") => "Distributed",
        Some(other) => {
            return Err(RestError::new(
                INVALID_ARGUMENT,
                format!("scheduling: unknown value \"{other}\" (Packed or Distributed)"),
            ));
        }
    };
    let metadata = req.metadata.as_ref().map(|m| AllocationMetadata {
        labels: (!m.labels.is_empty()).then(|| m.labels.clone()),
        annotations: (!m.annotations.is_empty()).then(|| m.annotations.clone()),
    });
    let mut gsa = GameServerAllocation::from_fleet("");
    gsa.spec = GameServerAllocationSpec {
        selectors,
        scheduling: Some(scheduling.to_owned()),
        metadata,
    };
    Ok(gsa)
}

/// `ConvertGSAToAllocationResponse`: Allocated becomes the response; UnAllocated and
/// Contention the allocator's errors (`convertStateV1ToError`).
pub fn to_response(gsa: &GameServerAllocation) -> Result<AllocationResponse, RestError> {
    let Some(st) = &gsa.status else {
        return Err(RestError::new(INTERNAL, "the allocation has no status"));
    };
    match st.state {
        AllocationState::Allocated => {}
        AllocationState::UnAllocated => {
            return Err(RestError::new(
                RESOURCE_EXHAUSTED,
                "there is no available GameServer to allocate",
            ));
        }
        AllocationState::Contention => {
            return Err(RestError::new(
                ABORTED,
                "too many concurrent requests have overwhelmed the system",
            ));
        }
    }
    let metadata = gsa.spec.metadata.as_ref().map(|m| RestMetadata {
        labels: m.labels.clone().unwrap_or_default(),
        annotations: m.annotations.clone().unwrap_or_default(),
    });
    Ok(AllocationResponse {
        game_server_name: st.game_server_name.clone(),
        ports: st
            .ports
            .iter()
            .map(|p| RestPort {
                name: p.name.clone(),
                port: p.port,
            })
            .collect(),
        address: st.address.clone(),
        addresses: st
            .addresses
            .iter()
            .map(|a| RestAddress {
                type_: a.type_.clone(),
                address: a.address.clone(),
            })
            .collect(),
        node_name: st.node_name.clone(),
        source: st.source.clone(),
        metadata,
    })
}
