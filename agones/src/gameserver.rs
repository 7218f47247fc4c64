//! `agones.dev/v1` GameServer: one dedicated game server process and its lifecycle state.

use std::fmt;
use std::str::FromStr;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

use crate::nullable::{NullableVec, null_as_empty};

/// A GameServer, as `agones.dev/v1` serves it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GameServer {
    /// Always `agones.dev/v1` on the wire.
    #[serde(default = "gs_api_version")]
    pub api_version: String,
    /// Always `GameServer` on the wire.
    #[serde(default = "gs_kind")]
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: GameServerSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<GameServerStatus>,
}

fn gs_api_version() -> String {
    "agones.dev/v1".to_owned()
}
fn gs_kind() -> String {
    "GameServer".to_owned()
}

impl GameServer {
    /// A GameServer with the given metadata and spec and no status yet.
    pub fn new(metadata: ObjectMeta, spec: GameServerSpec) -> Self {
        GameServer {
            api_version: gs_api_version(),
            kind: gs_kind(),
            metadata,
            spec,
            status: None,
        }
    }

    /// The current state, if the GameServer has a status.
    pub fn state(&self) -> Option<GameServerState> {
        self.status.as_ref().map(|s| s.state)
    }
}

crate::agones_resource!(GameServer, "agones.dev", "v1", "GameServer", "gameservers");

/// `GameServer.spec`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GameServerSpec {
    /// The game server container, when the pod has more than one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// `json:"ports,omitempty"`: never `null` from Agones, but a hand-written `ports:` is.
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ports: Vec<GameServerPort>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
    /// `Packed` or `Distributed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduling: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdk_server: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub players: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counters: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lists: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eviction: Option<serde_json::Value>,
    /// The pod template, kept as written: the simulator runs no pods.
    #[serde(default)]
    pub template: serde_json::Value,
}

/// `GameServer.spec.ports[]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GameServerPort {
    #[serde(default)]
    pub name: String,
    /// `Dynamic` (default), `Static`, `Passthrough` or `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_policy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_port: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_port: Option<i32>,
    /// `UDP` (default), `TCP` or `TCPUDP`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<String>,
}

/// `GameServer.spec.health`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_delay_seconds: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_seconds: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_threshold: Option<i64>,
}

/// `GameServer.status`, serialised as Agones' Go type is (`pkg/apis/agones/v1/gameserver.go`,
/// `GameServerStatus`, v1.60.0): every field here is without `omitempty`, so `ports` and
/// `addresses` are `null` until the controller fills them, and `reservedUntil` and `players`
/// are `null` when unset. See [`crate::nullable`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GameServerStatus {
    pub state: GameServerState,
    /// `json:"ports"`: nil (`null`) before the server is scheduled.
    #[serde(default)]
    pub ports: NullableVec<GameServerStatusPort>,
    #[serde(default)]
    pub address: String,
    /// `json:"addresses"`: nil (`null`) before the server is scheduled.
    #[serde(default)]
    pub addresses: NullableVec<NodeAddress>,
    #[serde(default)]
    pub node_name: String,
    /// `json:"reservedUntil"`, a `*metav1.Time`: `null` unless Reserved with a duration.
    #[serde(default)]
    pub reserved_until: Option<String>,
    /// `json:"players"`, a `*PlayerStatus`: `null` with PlayerTracking off.
    #[serde(default)]
    pub players: Option<PlayerStatus>,
}

/// `GameServer.status.ports[]`: the port a client connects to.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GameServerStatusPort {
    /// `json:"name,omitempty"`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    pub port: i32,
}

/// `GameServer.status.addresses[]`, a copy of the node's addresses.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeAddress {
    pub address: String,
    #[serde(rename = "type")]
    pub type_: String,
}

/// `GameServer.status.players` (PlayerTracking; `PlayerStatus` in `gameserver.go`, every field
/// without `omitempty`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlayerStatus {
    #[serde(default)]
    pub count: i64,
    #[serde(default)]
    pub capacity: i64,
    /// `json:"ids"`: nil (`null`) until the first player connects, `[]` after the last leaves.
    #[serde(default)]
    pub ids: NullableVec<String>,
}

/// The states of a GameServer, spelled as Agones spells them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum GameServerState {
    PortAllocation,
    Creating,
    Starting,
    Scheduled,
    RequestReady,
    Ready,
    Reserved,
    Allocated,
    Shutdown,
    Error,
    Unhealthy,
}

impl GameServerState {
    /// Every state, in lifecycle order.
    pub const ALL: [GameServerState; 11] = [
        GameServerState::PortAllocation,
        GameServerState::Creating,
        GameServerState::Starting,
        GameServerState::Scheduled,
        GameServerState::RequestReady,
        GameServerState::Ready,
        GameServerState::Reserved,
        GameServerState::Allocated,
        GameServerState::Shutdown,
        GameServerState::Error,
        GameServerState::Unhealthy,
    ];

    /// The name Agones uses in the API and in the `type` metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            GameServerState::PortAllocation => "PortAllocation",
            GameServerState::Creating => "Creating",
            GameServerState::Starting => "Starting",
            GameServerState::Scheduled => "Scheduled",
            GameServerState::RequestReady => "RequestReady",
            GameServerState::Ready => "Ready",
            GameServerState::Reserved => "Reserved",
            GameServerState::Allocated => "Allocated",
            GameServerState::Shutdown => "Shutdown",
            GameServerState::Error => "Error",
            GameServerState::Unhealthy => "Unhealthy",
        }
    }

    /// True for states a Fleet scale-down may remove: not yet serving players.
    pub fn is_before_ready(self) -> bool {
        matches!(
            self,
            GameServerState::PortAllocation
                | GameServerState::Creating
                | GameServerState::Starting
                | GameServerState::Scheduled
                | GameServerState::RequestReady
        )
    }
}

impl fmt::Display for GameServerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error for a state name Agones does not have.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownState(pub String);

impl fmt::Display for UnknownState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown GameServer state `{}`", self.0)
    }
}

impl std::error::Error for UnknownState {}

impl FromStr for GameServerState {
    type Err = UnknownState;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        GameServerState::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownState(s.to_owned()))
    }
}
