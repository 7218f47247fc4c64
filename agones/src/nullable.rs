//! Go's JSON for slices: how Agones' types send lists, and the one way this workspace reads them.
//!
//! `encoding/json` writes a nil slice as `null` and a made one (even empty) as `[...]`. Agones'
//! Go types leave `omitempty` off some lists, so those come as `null` until something makes
//! them, and the CRD lets the API server store and serve the `null` (`nullable: true` in
//! `install/helm/agones/templates/crds/_gameserverstatus.yaml`). The fields, in
//! `pkg/apis/agones/v1/gameserver.go` (v1.60.0):
//! - `GameServerStatus.Ports` (`json:"ports"`): nil until the controller copies the node's
//!   address and the ports (`pkg/gameservers/gameservers.go`, `applyGameServerAddressAndPort`,
//!   which makes it with `make`, so a server with no ports then has `[]`);
//! - `GameServerStatus.Addresses` (`json:"addresses"`): nil until the same function;
//! - `PlayerStatus.IDs` (`json:"ids"`): nil in the `&PlayerStatus{}` that defaulting gives every
//!   GameServer under PlayerTracking (`GameServer.applyStatusDefaults`); made by the SDK server on
//!   the first `PlayerConnect` and `[]` again after the last `PlayerDisconnect`
//!   (`pkg/sdkserver/sdkserver.go`, `PlayerConnect`, `PlayerDisconnect`, `updateConnectedPlayers`).
//!
//! [`NullableVec`] keeps that difference for the types the simulator serves; [`null_as_empty`]
//! reads a list that may be `null` into a plain `Vec` where the difference does not matter.

use std::fmt;
use std::ops::Deref;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A Go slice without `omitempty`: `null` while nil, `[...]` once made (even empty).
///
/// Reads like a slice (`Deref<Target = [T]>`); a missing field or `null` reads as nil.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct NullableVec<T>(Option<Vec<T>>);

impl<T> NullableVec<T> {
    /// The nil slice: serialised as `null`.
    pub const fn nil() -> Self {
        NullableVec(None)
    }

    /// True while nil (`null` on the wire), false once made, even when empty.
    pub fn is_nil(&self) -> bool {
        self.0.is_none()
    }

    /// The items, nil as empty.
    pub fn into_vec(self) -> Vec<T> {
        self.0.unwrap_or_default()
    }
}

impl<T> Default for NullableVec<T> {
    fn default() -> Self {
        NullableVec::nil()
    }
}

impl<T> From<Vec<T>> for NullableVec<T> {
    /// A made slice: `[...]` on the wire, even when `v` is empty.
    fn from(v: Vec<T>) -> Self {
        NullableVec(Some(v))
    }
}

impl<T> Deref for NullableVec<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        self.0.as_deref().unwrap_or(&[])
    }
}

impl<T: fmt::Debug> fmt::Debug for NullableVec<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            None => f.write_str("null"),
            Some(v) => v.fmt(f),
        }
    }
}

impl<T: Serialize> Serialize for NullableVec<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for NullableVec<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Option::<Vec<T>>::deserialize(d).map(NullableVec)
    }
}

/// Reads a list that Go may send as `null` (use with `#[serde(default)]` for a missing one).
pub fn null_as_empty<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct S {
        #[serde(default)]
        v: NullableVec<i32>,
        #[serde(default, deserialize_with = "null_as_empty")]
        w: Vec<i32>,
    }

    #[test]
    fn nil_is_null_and_made_is_a_list_even_empty() {
        let nil = S {
            v: NullableVec::nil(),
            w: vec![],
        };
        assert_eq!(serde_json::to_string(&nil).unwrap(), r#"{"v":null,"w":[]}"#);
        let made = S {
            v: Vec::new().into(),
            w: vec![],
        };
        assert_eq!(serde_json::to_string(&made).unwrap(), r#"{"v":[],"w":[]}"#);
    }

    #[test]
    fn null_missing_and_lists_all_read() {
        let s: S = serde_json::from_str(r#"{"v":null,"w":null}"#).unwrap();
        assert!(s.v.is_nil() && s.v.is_empty() && s.w.is_empty());
        let s: S = serde_json::from_str("{}").unwrap();
        assert!(s.v.is_nil());
        let s: S = serde_json::from_str(r#"{"v":[],"w":[1]}"#).unwrap();
        assert!(!s.v.is_nil() && s.v.is_empty());
        assert_eq!(s.w, vec![1]);
        let s: S = serde_json::from_str(r#"{"v":[3,4]}"#).unwrap();
        assert_eq!(s.v.first(), Some(&3));
        assert_eq!(s.v.clone().into_vec(), vec![3, 4]);
        // A wrong type is still an error, not an empty list.
        assert!(serde_json::from_str::<S>(r#"{"v":"x"}"#).is_err());
        assert!(serde_json::from_str::<S>(r#"{"w":{}}"#).is_err());
    }
}
