//! Which of an allocated server's addresses the Producer connects to, as a client outside the
//! cluster would: the address Agones advertises (`status.address`), as listed in
//! `status.addresses`, first; then the other listed addresses in a configured order of their
//! types; then `status.address` itself. Each candidate is an IP address or a name resolved
//! here; the first that resolves wins.
//!
//! Agones fills `status.address` from the node's addresses, preferring `ExternalDNS`, then
//! `ExternalIP`, `InternalDNS`, `InternalIP` (`pkg/gameservers/gameservers.go`, `address`, used
//! by `applyGameServerAddressAndPort`), and copies the node's `status.addresses` into the
//! GameServer's and the allocation's `status.addresses`. The default order here is that one,
//! with `Hostname` (a name usually resolvable only inside the cluster) last.

use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};
use upsoak_agones::gameserver::NodeAddress;

/// A node address type (k8s.io/api `core/v1/types.go`, `NodeAddressType`).
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub enum AddressType {
    Hostname,
    #[serde(rename = "InternalIP")]
    InternalIp,
    #[serde(rename = "ExternalIP")]
    ExternalIp,
    #[serde(rename = "InternalDNS")]
    InternalDns,
    #[serde(rename = "ExternalDNS")]
    ExternalDns,
}

impl AddressType {
    /// The type as Kubernetes spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            AddressType::Hostname => "Hostname",
            AddressType::InternalIp => "InternalIP",
            AddressType::ExternalIp => "ExternalIP",
            AddressType::InternalDns => "InternalDNS",
            AddressType::ExternalDns => "ExternalDNS",
        }
    }
}

/// The default order of `producer.address_types`: Agones' own preference, then `Hostname`.
pub fn default_order() -> Vec<AddressType> {
    vec![
        AddressType::ExternalDns,
        AddressType::ExternalIp,
        AddressType::InternalDns,
        AddressType::InternalIp,
        AddressType::Hostname,
    ]
}

/// The addresses to try, best first: the `addresses` entry equal to `address`, the other
/// entries of the types in `order` (in that order; a type not in `order` is not tried), then
/// `address` itself when no entry equals it. Empty strings and repeats are left out.
pub fn candidates(address: &str, addresses: &[NodeAddress], order: &[AddressType]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut add = |a: &str| {
        if !a.is_empty() && !out.iter().any(|o| o == a) {
            out.push(a.to_owned());
        }
    };
    if addresses.iter().any(|a| a.address == address) {
        add(address);
    }
    for t in order {
        for a in addresses.iter().filter(|a| a.type_ == t.as_str()) {
            add(&a.address);
        }
    }
    add(address);
    out
}

/// The first of [`candidates`] that is an IP address or resolves, with `port`; `None` when
/// none does.
pub async fn pick(
    address: &str,
    addresses: &[NodeAddress],
    order: &[AddressType],
    port: u16,
) -> Option<SocketAddr> {
    for c in candidates(address, addresses, order) {
        if let Ok(ip) = c.parse::<IpAddr>() {
            return Some(SocketAddr::new(ip, port));
        }
        if let Some(a) = tokio::net::lookup_host((c.as_str(), port))
            .await
            .ok()
            .and_then(|mut it| it.next())
        {
            return Some(a);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use upsoak_agones::allocation::GameServerAllocationStatus;

    /// An allocation's status as Agones 1.x answers one on a cloud node (GKE-like: an external
    /// and an internal IP, an internal DNS name, the hostname), `status.address` the external IP.
    const CLOUD: &str = r#"{
        "state": "Allocated",
        "gameServerName": "simple-game-server-7pjrq-9c9xk",
        "ports": [{"name": "default", "port": 7283}],
        "address": "34.82.1.9",
        "addresses": [
            {"type": "InternalIP", "address": "10.138.0.12"},
            {"type": "ExternalIP", "address": "34.82.1.9"},
            {"type": "InternalDNS", "address": "gke-n1.c.proj.internal"},
            {"type": "Hostname", "address": "gke-n1.c.proj.internal"}
        ],
        "nodeName": "gke-n1",
        "source": "local"
    }"#;

    /// kind or minikube: only an internal IP and the hostname.
    const KIND: &str = r#"{
        "state": "Allocated",
        "gameServerName": "gs-1",
        "ports": [{"name": "default", "port": 7001}],
        "address": "172.18.0.2",
        "addresses": [
            {"type": "InternalIP", "address": "172.18.0.2"},
            {"type": "Hostname", "address": "kind-control-plane"}
        ],
        "nodeName": "kind-control-plane"
    }"#;

    fn status(json: &str) -> GameServerAllocationStatus {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn the_advertised_address_comes_first_then_the_type_order() {
        let st = status(CLOUD);
        assert_eq!(
            candidates(&st.address, &st.addresses, &default_order()),
            ["34.82.1.9", "gke-n1.c.proj.internal", "10.138.0.12"]
        );
        // An order that puts the internal IP first (a run inside the cluster) still tries the
        // advertised address first, as it is listed.
        assert_eq!(
            candidates(
                &st.address,
                &st.addresses,
                &[AddressType::InternalIp, AddressType::ExternalIp]
            ),
            ["34.82.1.9", "10.138.0.12"]
        );
        let kind = status(KIND);
        assert_eq!(
            candidates(&kind.address, &kind.addresses, &default_order()),
            ["172.18.0.2", "kind-control-plane"]
        );
    }

    #[test]
    fn an_address_not_listed_comes_after_the_listed_ones_and_none_is_left_out() {
        // `status.address` a DNS name the node does not list (an older Agones, or a patch).
        let mut st = status(CLOUD);
        st.address = "game.example.com".into();
        assert_eq!(
            candidates(&st.address, &st.addresses, &[AddressType::ExternalIp]),
            ["34.82.1.9", "game.example.com"]
        );
        // `addresses` null (as before the controller fills it): only `status.address`.
        let bare: GameServerAllocationStatus = serde_json::from_str(
            r#"{"state": "Allocated", "ports": [{"port": 7000}], "address": "10.0.0.7", "addresses": null}"#,
        )
        .unwrap();
        assert_eq!(
            candidates(&bare.address, &bare.addresses, &default_order()),
            ["10.0.0.7"]
        );
        assert!(candidates("", &[], &default_order()).is_empty());
    }

    #[tokio::test]
    async fn the_first_candidate_that_resolves_is_picked() {
        // The advertised address is a name that does not resolve (`.invalid`, RFC 2606): the
        // next candidate, an IP address, is picked.
        let addresses = vec![
            NodeAddress {
                address: "node-1.example.invalid".into(),
                type_: "ExternalDNS".into(),
            },
            NodeAddress {
                address: "10.0.0.7".into(),
                type_: "InternalIP".into(),
            },
        ];
        let got = pick("node-1.example.invalid", &addresses, &default_order(), 7000).await;
        assert_eq!(got, Some("10.0.0.7:7000".parse().unwrap()));
        let local = pick("localhost", &[], &default_order(), 7000)
            .await
            .unwrap();
        assert!(local.ip().is_loopback(), "{local}");
        assert_eq!(pick("", &[], &default_order(), 7000).await, None);
    }

    #[test]
    fn the_order_reads_as_kubernetes_spells_the_types() {
        let order: Vec<AddressType> =
            serde_yaml::from_str("[ExternalDNS, ExternalIP, InternalDNS, InternalIP, Hostname]")
                .unwrap();
        assert_eq!(order, default_order());
        let e = serde_yaml::from_str::<Vec<AddressType>>("[ExternalIp]")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown variant `ExternalIp`"), "{e}");
    }
}
