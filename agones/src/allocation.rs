//! `allocation.agones.dev/v1` GameServerAllocation: create-only; the answer carries the result.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use serde::{Deserialize, Serialize};

use crate::gameserver::GameServerStatusPort;
use crate::nullable::null_as_empty;

/// A GameServerAllocation request and, once created, its result.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GameServerAllocation {
    /// Always `allocation.agones.dev/v1` on the wire.
    #[serde(default = "gsa_api_version")]
    pub api_version: String,
    /// Always `GameServerAllocation` on the wire.
    #[serde(default = "gsa_kind")]
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: GameServerAllocationSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<GameServerAllocationStatus>,
}

fn gsa_api_version() -> String {
    "allocation.agones.dev/v1".to_owned()
}
fn gsa_kind() -> String {
    "GameServerAllocation".to_owned()
}

impl GameServerAllocation {
    /// An allocation from the Ready GameServers of the Fleet `fleet`.
    pub fn from_fleet(fleet: &str) -> Self {
        let selector = LabelSelector {
            match_labels: Some(BTreeMap::from([(
                crate::FLEET_LABEL.to_owned(),
                fleet.to_owned(),
            )])),
            ..LabelSelector::default()
        };
        GameServerAllocation {
            api_version: gsa_api_version(),
            kind: gsa_kind(),
            metadata: ObjectMeta::default(),
            spec: GameServerAllocationSpec {
                selectors: vec![GameServerSelector {
                    selector,
                    game_server_state: None,
                }],
                ..GameServerAllocationSpec::default()
            },
            status: None,
        }
    }
}

crate::agones_resource!(
    GameServerAllocation,
    "allocation.agones.dev",
    "v1",
    "GameServerAllocation",
    "gameserverallocations"
);

/// `GameServerAllocation.spec`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GameServerAllocationSpec {
    /// Tried in order; the first that matches a GameServer wins.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub selectors: Vec<GameServerSelector>,
    /// `Packed` (default) or `Distributed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduling: Option<String>,
    /// Labels and annotations put on the allocated GameServer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<AllocationMetadata>,
}

/// One entry of `spec.selectors`: a label selector and the state to allocate from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GameServerSelector {
    #[serde(flatten)]
    pub selector: LabelSelector,
    /// `Ready` (default) or `Allocated`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub game_server_state: Option<String>,
}

/// `spec.metadata`: applied to the GameServer on allocation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocationMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// `GameServerAllocation.status`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GameServerAllocationStatus {
    pub state: AllocationState,
    #[serde(default)]
    pub game_server_name: String,
    /// `json:"ports,omitempty"`: absent when none; `null` is read as none too.
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ports: Vec<GameServerStatusPort>,
    /// `json:"address,omitempty"`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub address: String,
    /// The node's addresses (`status.addresses`, `pkg/apis/allocation/v1/gameserverallocation.go`
    /// `GameServerAllocationStatus.Addresses`, `json:"addresses,omitempty"`); `null` reads as none.
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub addresses: Vec<crate::gameserver::NodeAddress>,
    /// `json:"nodeName,omitempty"`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub node_name: String,
    /// `json:"source"`: `local` for this cluster's allocations.
    #[serde(default)]
    pub source: String,
}

/// The outcome of an allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AllocationState {
    Allocated,
    UnAllocated,
    Contention,
}

impl AllocationState {
    /// The name Agones uses in the API and in the `status` metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            AllocationState::Allocated => "Allocated",
            AllocationState::UnAllocated => "UnAllocated",
            AllocationState::Contention => "Contention",
        }
    }
}
