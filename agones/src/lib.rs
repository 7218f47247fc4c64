//! Agones' API as Rust types, with the exact JSON field names of `agones.dev/v1` and
//! `allocation.agones.dev/v1`, and the names of the metrics Agones exports.
//!
//! The types implement `k8s_openapi::Resource` and `Metadata`, so `kube::Api<Fleet>` works
//! through kube's blanket impl without this crate depending on a client.
//!
//! - [`fleet`]: `Fleet` and its spec and status.
//! - [`gameserver`]: `GameServer`, its spec, status and [`GameServerState`].
//! - [`allocation`]: `GameServerAllocation`, create-only, answered with its status.
//! - [`metrics`]: metric names and label values as Agones exports them.
//! - [`nullable`]: Go's `null` lists: [`NullableVec`] and [`nullable::null_as_empty`].
//! - [`release`]: what an install chooses and how releases are described: the [`Install`] wire
//!   type shared by `upsoak-chaos` and `upsoak-sim`, gate [`Stage`]s, Helm's gate query string
//!   ([`release::to_query`], [`release::parse_query`]), tunables, Kubernetes ranges, and the
//!   gate-name and version rules.

pub mod allocation;
pub mod fleet;
pub mod gameserver;
pub mod metrics;
pub mod nullable;
pub mod release;

pub use allocation::{
    AllocationState, GameServerAllocation, GameServerAllocationSpec, GameServerAllocationStatus,
    GameServerSelector,
};
pub use fleet::{Fleet, FleetSpec, FleetStatus, GameServerTemplateSpec};
pub use gameserver::{
    GameServer, GameServerPort, GameServerSpec, GameServerState, GameServerStatus,
    GameServerStatusPort, Health,
};
pub use nullable::NullableVec;
pub use release::{Install, KubeRange, Stage, TunableSpec, TunableValue};

/// The label Agones puts on every GameServer of a Fleet, naming the Fleet.
pub const FLEET_LABEL: &str = "agones.dev/fleet";
/// The label Agones puts on every GameServer of a Fleet, naming its GameServerSet.
pub const GAMESERVERSET_LABEL: &str = "agones.dev/gameserverset";

/// Implements the k8s-openapi resource traits for a namespaced Agones type.
macro_rules! agones_resource {
    ($ty:ty, $group:literal, $version:literal, $kind:literal, $plural:literal) => {
        impl k8s_openapi::Resource for $ty {
            const API_VERSION: &'static str = concat!($group, "/", $version);
            const GROUP: &'static str = $group;
            const KIND: &'static str = $kind;
            const VERSION: &'static str = $version;
            const URL_PATH_SEGMENT: &'static str = $plural;
            type Scope = k8s_openapi::NamespaceResourceScope;
        }

        impl k8s_openapi::ListableResource for $ty {
            const LIST_KIND: &'static str = concat!($kind, "List");
        }

        impl k8s_openapi::Metadata for $ty {
            type Ty = k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
            fn metadata(&self) -> &Self::Ty {
                &self.metadata
            }
            fn metadata_mut(&mut self) -> &mut Self::Ty {
                &mut self.metadata
            }
        }
    };
}
pub(crate) use agones_resource;
