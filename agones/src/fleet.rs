//! `agones.dev/v1` Fleet: a set of warm GameServers kept at `spec.replicas`.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

use crate::gameserver::GameServerSpec;

/// A Fleet, as `agones.dev/v1` serves it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Fleet {
    /// Always `agones.dev/v1` on the wire.
    #[serde(default = "fleet_api_version")]
    pub api_version: String,
    /// Always `Fleet` on the wire.
    #[serde(default = "fleet_kind")]
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    pub spec: FleetSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<FleetStatus>,
}

fn fleet_api_version() -> String {
    "agones.dev/v1".to_owned()
}
fn fleet_kind() -> String {
    "Fleet".to_owned()
}

impl Fleet {
    /// A Fleet named `name` with `replicas` GameServers from `template`.
    pub fn new(name: &str, replicas: i32, template: GameServerTemplateSpec) -> Self {
        Fleet {
            api_version: fleet_api_version(),
            kind: fleet_kind(),
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                ..ObjectMeta::default()
            },
            spec: FleetSpec {
                replicas,
                template,
                ..FleetSpec::default()
            },
            status: None,
        }
    }
}

crate::agones_resource!(Fleet, "agones.dev", "v1", "Fleet", "fleets");

/// `Fleet.spec`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FleetSpec {
    /// Desired number of GameServers.
    #[serde(default)]
    pub replicas: i32,
    /// `Packed` (default) or `Distributed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduling: Option<String>,
    /// Deployment strategy (`RollingUpdate` or `Recreate`), kept as Agones writes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<serde_json::Value>,
    /// Labels and annotations for allocated GameServers above the desired count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allocation_overflow: Option<serde_json::Value>,
    /// Counter and list priorities, kept as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priorities: Option<serde_json::Value>,
    /// The GameServer every replica is made from.
    pub template: GameServerTemplateSpec,
}

/// `Fleet.spec.template`: metadata and spec for the Fleet's GameServers.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GameServerTemplateSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<ObjectMeta>,
    pub spec: GameServerSpec,
}

/// `Fleet.status`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FleetStatus {
    /// GameServers in the Fleet, in any state.
    #[serde(default)]
    pub replicas: i32,
    /// GameServers in state Ready.
    #[serde(default)]
    pub ready_replicas: i32,
    /// GameServers in state Reserved.
    #[serde(default)]
    pub reserved_replicas: i32,
    /// GameServers in state Allocated.
    #[serde(default)]
    pub allocated_replicas: i32,
    /// Allocations from this Fleet since it was created (Agones 1.59+).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allocations: Option<i64>,
    /// The CRD's `labelSelectorPath` target. Agones never sets it (`pkg/apis/agones/v1/fleet.go`),
    /// so it is read when present and never written by the simulator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<String>,
}
