//! The install wire type: a configuration to install, or one observed as installed. It is what
//! the journal records and what the appliers send, so it lives apart from both (the simulator
//! reads the same JSON as its `InstallSpec`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A configuration to install, or one observed as installed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Install {
    /// The Agones release, `MAJOR.MINOR.PATCH`.
    pub version: String,
    /// Gate overrides to apply; when observed, every gate with its effective value where the
    /// source reports it.
    #[serde(default)]
    pub feature_gates: BTreeMap<String, bool>,
    /// Tunables by name, as JSON numbers or strings.
    #[serde(default)]
    pub tunables: BTreeMap<String, serde_json::Value>,
}

impl Install {
    /// Helm's `agones.featureGates` value: `A=true&B=false`, in name order.
    pub fn gate_query(&self) -> String {
        to_query(&self.feature_gates)
    }

    /// True when `observed` has this install's version and every gate this install sets.
    pub fn satisfied_by(&self, observed: &Install) -> bool {
        self.version == observed.version
            && self
                .feature_gates
                .iter()
                .all(|(k, v)| observed.feature_gates.get(k) == Some(v))
    }
}

/// `A=true&B=false`, in name order.
pub fn to_query(gates: &BTreeMap<String, bool>) -> String {
    gates
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Parses Helm's `featureGates` string strictly: every part is `Name=true` or `Name=false`
/// (the empty string is no gates). A malformed part is an error naming it, never dropped.
pub fn parse_query(query: &str) -> Result<BTreeMap<String, bool>, String> {
    let mut gates = BTreeMap::new();
    for part in query.split('&').filter(|p| !p.is_empty()) {
        let value = match part.split_once('=') {
            Some((k, "true")) if !k.is_empty() => (k, true),
            Some((k, "false")) if !k.is_empty() => (k, false),
            _ => return Err(format!("`{part}` is not NAME=true or NAME=false")),
        };
        if gates.insert(value.0.to_owned(), value.1).is_some() {
            return Err(format!("gate `{}` is given twice", value.0));
        }
    }
    Ok(gates)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gate_queries_round_trip_and_bad_parts_are_errors() {
        let gates = BTreeMap::from([("B".to_owned(), false), ("A".to_owned(), true)]);
        assert_eq!(to_query(&gates), "A=true&B=false");
        assert_eq!(parse_query("A=true&B=false").unwrap(), gates);
        assert_eq!(parse_query("").unwrap(), BTreeMap::new());
        assert_eq!(
            parse_query("A=true&B=yes").unwrap_err(),
            "`B=yes` is not NAME=true or NAME=false"
        );
        assert!(parse_query("A").is_err());
        assert!(parse_query("=true").is_err());
        assert!(parse_query("A=true&A=false").unwrap_err().contains("twice"));
    }
}
