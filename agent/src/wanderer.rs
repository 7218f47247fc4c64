//! What the agent reads of the Wanderer (the sidecar) through Prometheus: its generation, whose
//! every change is a transition; the configuration it observed installed; and when its last
//! transition went live. Baselines and transitions read the configuration through the same
//! [`configuration`], so both record the same labels.

use std::collections::BTreeMap;

use upsoak_common::names::wanderer::LAST_TRANSITION_TIMESTAMP_SECONDS;
pub use upsoak_common::names::wanderer::{
    CONFIG_INFO, FEATURE_GATES_LABEL, GENERATION, TUNABLES_LABEL, VERSION_LABEL,
};

use crate::Result;
use crate::prom::Querier;

/// When the Wanderer's last transition went live (unix seconds): one number even if two
/// sidecars were scraped.
pub fn transition_time_query() -> String {
    format!("max({LAST_TRANSITION_TIMESTAMP_SECONDS})")
}

/// Labels that say where Prometheus scraped a series, not what the Wanderer observed: they
/// change when the sidecar's pod moves, so they are no part of a configuration.
const TARGET_LABELS: [&str; 3] = ["__name__", "instance", "job"];

/// The Wanderer's configuration at `at`: every label of its info metric except the target's
/// (`__name__`, `instance`, `job`); empty when the sidecar exports none.
pub async fn configuration<Q: Querier>(q: &Q, at: i64) -> Result<BTreeMap<String, String>> {
    let mut labels = q
        .labels_at(CONFIG_INFO, at)
        .await?
        .into_iter()
        .next()
        .unwrap_or_default();
    for l in TARGET_LABELS {
        labels.remove(l);
    }
    Ok(labels)
}

/// One key of a configuration an SLO's baseline is taken by (`baseline_by` in the specs),
/// written as in the Wanderer's space constraints: `version`, `tunable:NAME`, `gate:NAME`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ConfigKey {
    /// The Agones version (label [`VERSION_LABEL`]).
    Version,
    /// A chart tunable, from the `tunables` label (`a=1&b=info`).
    Tunable(String),
    /// A feature gate, from the `feature_gates` label (`A=true&B=false`).
    Gate(String),
}

impl ConfigKey {
    /// Parses `version`, `tunable:NAME` or `gate:NAME` (NAME of letters, digits, `_`, `-`, `.`).
    pub fn parse(s: &str) -> Result<ConfigKey, String> {
        let named = |kind: &str, name: &str| {
            let ok = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
            if ok {
                Ok(name.to_owned())
            } else {
                Err(format!(
                    "`{s}`: the {kind} name must be non-empty letters, digits, `_`, `-` or `.`"
                ))
            }
        };
        match s.split_once(':') {
            None if s == "version" => Ok(ConfigKey::Version),
            Some(("tunable", name)) => named("tunable", name).map(ConfigKey::Tunable),
            Some(("gate", name)) => named("gate", name).map(ConfigKey::Gate),
            _ => Err(format!(
                "unknown configuration key `{s}`, expected `version`, `tunable:NAME` or `gate:NAME`"
            )),
        }
    }
}

impl std::fmt::Display for ConfigKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigKey::Version => f.write_str("version"),
            ConfigKey::Tunable(n) => write!(f, "tunable:{n}"),
            ConfigKey::Gate(n) => write!(f, "gate:{n}"),
        }
    }
}

/// The value of `key` in a configuration as [`configuration`] reads it: the version label; a
/// tunable's value in the `tunables` label; a gate's `true`/`false` in `feature_gates`. `None`
/// when it is not set (a tunable or gate left at the chart's default, an older sidecar).
pub fn config_value(config: &BTreeMap<String, String>, key: &ConfigKey) -> Option<String> {
    // Both labels are `name=value` pairs joined by `&` (chaos/src/wanderer/events.rs
    // `tunables_label`, `Install::gate_query`).
    let pair = |label: &str, name: &str| {
        config.get(label)?.split('&').find_map(|part| {
            let (k, v) = part.split_once('=')?;
            (k.trim() == name).then(|| v.trim().to_owned())
        })
    };
    match key {
        ConfigKey::Version => config.get(VERSION_LABEL).cloned(),
        ConfigKey::Tunable(n) => pair(TUNABLES_LABEL, n),
        ConfigKey::Gate(n) => pair(FEATURE_GATES_LABEL, n),
    }
}

/// `key=value` for each key, `unset` for a value that is not set: how a reason names the
/// configuration a baseline was looked for at.
pub fn describe_values(config: &BTreeMap<String, String>, keys: &[ConfigKey]) -> String {
    keys.iter()
        .map(|k| {
            let v = config_value(config, k);
            format!("{k}={}", v.as_deref().unwrap_or("unset"))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// True when `a` and `b` have the same value (or both none) for every key.
pub fn same_values(
    a: &BTreeMap<String, String>,
    b: &BTreeMap<String, String>,
    keys: &[ConfigKey],
) -> bool {
    keys.iter()
        .all(|k| config_value(a, k) == config_value(b, k))
}

#[cfg(test)]
mod tests {
    use super::*;

    use upsoak_common::change::configuration as config;

    #[test]
    fn a_keys_value_is_read_from_its_label() {
        let c = config(
            "1.59.0",
            "CountsAndLists=false&PlayerTracking=true",
            "allocationBatchWaitTime=500ms&logLevel=info",
        );
        let key = |s: &str| ConfigKey::parse(s).unwrap();
        let v = |s: &str| config_value(&c, &key(s));
        assert_eq!(v("version").as_deref(), Some("1.59.0"));
        assert_eq!(
            v("tunable:allocationBatchWaitTime").as_deref(),
            Some("500ms")
        );
        assert_eq!(v("tunable:logLevel").as_deref(), Some("info"));
        assert_eq!(v("gate:PlayerTracking").as_deref(), Some("true"));
        assert_eq!(v("gate:CountsAndLists").as_deref(), Some("false"));
        // A name that is a prefix of another is not it; unset is None.
        assert_eq!(v("tunable:allocation"), None);
        assert_eq!(v("gate:Player"), None);
        assert_eq!(config_value(&BTreeMap::new(), &key("version")), None);
        assert_eq!(
            describe_values(&c, &[key("tunable:allocationBatchWaitTime"), key("gate:X")]),
            "tunable:allocationBatchWaitTime=500ms, gate:X=unset"
        );
        let other = config(
            "1.60.0",
            "PlayerTracking=true",
            "allocationBatchWaitTime=500ms",
        );
        assert!(same_values(
            &c,
            &other,
            &[key("tunable:allocationBatchWaitTime")]
        ));
        assert!(!same_values(&c, &other, &[key("version")]));
        assert!(!same_values(&c, &other, &[key("gate:CountsAndLists")]));
        assert_eq!(key("gate:A").to_string(), "gate:A");
    }

    #[test]
    fn only_the_three_key_forms_parse() {
        for bad in [
            "",
            "tunables:x",
            "tunable:",
            "gate:a b",
            "Version",
            "version:x",
        ] {
            assert!(ConfigKey::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(ConfigKey::parse("version"), Ok(ConfigKey::Version));
        assert_eq!(
            ConfigKey::parse("tunable:allocationBatchWaitTime"),
            Ok(ConfigKey::Tunable("allocationBatchWaitTime".into()))
        );
    }
}
