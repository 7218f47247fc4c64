//! Agones releases and what an install chooses: the [`Install`] wire type the Wanderer sends and
//! the simulator accepts, feature-gate [`Stage`]s, Helm's gate query string
//! (`A=true&B=false`), tunables, Kubernetes ranges, and the rules for gate names and versions.
//!
//! Both sides of `POST /upsoak/v1/install` (`upsoak-chaos` and `upsoak-sim`) and the Wanderer's
//! journal use these types, so the JSON cannot drift between them. No I/O here.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A feature gate's maturity: it decides the default and whether it can be turned off.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
pub enum Stage {
    /// Off by default.
    Alpha,
    /// On by default, can be turned off.
    Beta,
    /// Always on; disabling it is rejected.
    Stable,
}

impl Stage {
    /// The value a gate has when an install does not name it.
    pub fn default_enabled(self) -> bool {
        !matches!(self, Stage::Alpha)
    }

    /// Whether an install may set the gate to `false`.
    pub fn can_disable(self) -> bool {
        !matches!(self, Stage::Stable)
    }

    /// The name as written in files: `Alpha`, `Beta`, `Stable`.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Alpha => "Alpha",
            Stage::Beta => "Beta",
            Stage::Stable => "Stable",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A word that is not a [`Stage`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownStage(pub String);

impl fmt::Display for UnknownStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown stage `{}`, expected Alpha, Beta or Stable",
            self.0
        )
    }
}

impl std::error::Error for UnknownStage {}

impl FromStr for Stage {
    type Err = UnknownStage;
    fn from_str(s: &str) -> Result<Stage, UnknownStage> {
        match s {
            "Alpha" => Ok(Stage::Alpha),
            "Beta" => Ok(Stage::Beta),
            "Stable" => Ok(Stage::Stable),
            other => Err(UnknownStage(other.to_owned())),
        }
    }
}

/// Supported Kubernetes versions of a release, `min` and `max` written as `1.34`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KubeRange {
    pub min: String,
    pub max: String,
}

/// A tunable's value: an integer or a string (JSON `5` or `"fast"`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(untagged)]
pub enum TunableValue {
    Int(i64),
    Str(String),
}

/// The integer as digits, the string as it is (no quotes).
impl fmt::Display for TunableValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TunableValue::Int(i) => write!(f, "{i}"),
            TunableValue::Str(s) => f.write_str(s),
        }
    }
}

impl From<i64> for TunableValue {
    fn from(i: i64) -> TunableValue {
        TunableValue::Int(i)
    }
}

impl From<&str> for TunableValue {
    fn from(s: &str) -> TunableValue {
        TunableValue::Str(s.to_owned())
    }
}

/// The allowed values of a tunable: `{min, max}` (integers) or `{values: [...]}` (words).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged, deny_unknown_fields)]
pub enum TunableSpec {
    Range { min: i64, max: i64 },
    Enum { values: Vec<String> },
}

impl TunableSpec {
    /// Why `value` is not allowed, or `None` when it is; the message names no path, so callers
    /// put it under theirs (`tunables.<name>`).
    pub fn problem(&self, value: &TunableValue) -> Option<String> {
        match (self, value) {
            (TunableSpec::Range { min, max }, TunableValue::Int(i)) if i < min || i > max => {
                Some(format!("{i} is outside {min}..={max}"))
            }
            (TunableSpec::Range { .. }, TunableValue::Str(s)) => {
                Some(format!("`{s}` is not an integer"))
            }
            (TunableSpec::Enum { values }, v) if !values.iter().any(|x| *x == v.to_string()) => {
                Some(format!("`{v}` is not one of {}", values.join(", ")))
            }
            _ => None,
        }
    }
}

/// A configuration to install, or one observed as installed: what `POST /upsoak/v1/install`
/// takes and what the Wanderer journals. JSON: `{"version": "1.60.0", "featureGates": {"A":
/// true}, "tunables": {"t": 5}}`; `featureGates` may also be Helm's string `"A=true&B=false"`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Install {
    /// The release, `MAJOR.MINOR.PATCH`.
    pub version: String,
    /// Gate overrides to apply; when observed, every gate with its effective value where the
    /// source reports it.
    #[serde(default, deserialize_with = "gates_de")]
    pub feature_gates: BTreeMap<String, bool>,
    /// Tunables to set, by name.
    #[serde(default)]
    pub tunables: BTreeMap<String, TunableValue>,
}

impl Install {
    /// Helm's `agones.featureGates` value of these gates: `A=true&B=false`, in name order.
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

/// Reads `featureGates` from a map or from Helm's `A=true&B=false` string.
fn gates_de<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BTreeMap<String, bool>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Gates {
        Map(BTreeMap<String, bool>),
        Query(String),
    }
    match Gates::deserialize(d)? {
        Gates::Map(m) => Ok(m),
        Gates::Query(q) => parse_query(&q).map_err(serde::de::Error::custom),
    }
}

/// Writes gates as Helm's `agones.featureGates` query string, in name order: `A=true&B=false`.
pub fn to_query(gates: &BTreeMap<String, bool>) -> String {
    gates
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Why a gate query string does not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GateQueryError {
    /// A part without `=`.
    NotAnAssignment(String),
    /// A value other than `true` or `false`.
    NotABool { gate: String, value: String },
}

impl fmt::Display for GateQueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GateQueryError::NotAnAssignment(part) => {
                write!(f, "`{part}` is not `Gate=true|false`")
            }
            GateQueryError::NotABool { gate, value } => {
                write!(f, "gate `{gate}`: `{value}` is not true or false")
            }
        }
    }
}

impl std::error::Error for GateQueryError {}

/// Parses Helm's `agones.featureGates` value, `A=true&B=false`, strictly: every non-empty part
/// must be `Name=true` or `Name=false` (spaces around names and values are ignored). The empty
/// string is no gates.
pub fn parse_query(q: &str) -> Result<BTreeMap<String, bool>, GateQueryError> {
    let mut out = BTreeMap::new();
    for part in q.split('&').filter(|p| !p.trim().is_empty()) {
        let (name, value) = part
            .split_once('=')
            .ok_or_else(|| GateQueryError::NotAnAssignment(part.to_owned()))?;
        let value = match value.trim() {
            "true" => true,
            "false" => false,
            other => {
                return Err(GateQueryError::NotABool {
                    gate: name.to_owned(),
                    value: other.to_owned(),
                });
            }
        };
        out.insert(name.trim().to_owned(), value);
    }
    Ok(out)
}

/// What [`is_gate_name`] requires, as validation messages say it.
pub const GATE_NAME_RULE: &str = "a gate name is letters and digits, starting with a capital";

/// A feature gate's name as Agones writes them: ASCII letters and digits, starting with a
/// capital (`PlayerTracking`, `PortPolicyNone`).
pub fn is_gate_name(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        && s.chars().all(|c| c.is_ascii_alphanumeric())
}

/// A release number, `MAJOR.MINOR.PATCH`, exactly three numbers.
pub fn parse_version(v: &str) -> Option<(u32, u32, u32)> {
    let mut it = v.split('.').map(|p| p.parse::<u32>().ok());
    let out = (it.next()??, it.next()??, it.next()??);
    it.next().is_none().then_some(out)
}

/// `MAJOR.MINOR` or `MAJOR.MINOR.PATCH` (a missing patch is 0), as Kubernetes versions and
/// constraints are written (`1.34`).
pub fn parse_version_loose(v: &str) -> Option<(u32, u32, u32)> {
    let parts: Vec<&str> = v.split('.').collect();
    if parts.len() < 2 || parts.len() > 3 {
        return None;
    }
    let n = |i: usize| parts.get(i).map_or(Some(0), |p| p.parse::<u32>().ok());
    Some((n(0)?, n(1)?, n(2)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn install() -> Install {
        Install {
            version: "1.60.0".into(),
            feature_gates: BTreeMap::from([
                ("PlayerTracking".into(), true),
                ("CountsAndLists".into(), false),
            ]),
            tunables: BTreeMap::from([
                ("maxBatch".into(), TunableValue::Int(8)),
                ("logLevel".into(), TunableValue::Str("debug".into())),
            ]),
        }
    }

    // The body the Wanderer's sim applier posts today (`chaos/src/apply.rs`, `json!` of the
    // same three fields) and the journal's form of an `Install`.
    #[test]
    fn wire_json_is_field_for_field_what_both_sides_send_today() -> serde_json::Result<()> {
        let wire = json!({
            "version": "1.60.0",
            "featureGates": {"CountsAndLists": false, "PlayerTracking": true},
            "tunables": {"logLevel": "debug", "maxBatch": 8},
        });
        assert_eq!(serde_json::to_value(install())?, wire);
        assert_eq!(serde_json::from_value::<Install>(wire)?, install());
        assert_eq!(
            serde_json::to_string(&install())?,
            r#"{"version":"1.60.0","featureGates":{"CountsAndLists":false,"PlayerTracking":true},"tunables":{"logLevel":"debug","maxBatch":8}}"#
        );
        Ok(())
    }

    #[test]
    fn gates_may_be_helms_string_and_fields_may_be_omitted() -> serde_json::Result<()> {
        let i: Install = serde_json::from_value(json!({
            "version": "1.60.0",
            "featureGates": "CountsAndLists=false&PlayerTracking=true",
            "tunables": {"logLevel": "debug", "maxBatch": 8},
        }))?;
        assert_eq!(i, install());
        let bare: Install = serde_json::from_value(json!({"version": "1.59.0"}))?;
        assert_eq!(
            bare,
            Install {
                version: "1.59.0".into(),
                ..Install::default()
            }
        );
        Ok(())
    }

    #[test]
    fn the_wire_type_refuses_what_the_sim_refuses() {
        for (body, why) in [
            (json!({"featureGates": {}}), "missing field `version`"),
            (
                json!({"version": "1.60.0", "gates": {}}),
                "unknown field `gates`",
            ),
            (
                json!({"version": "1.60.0", "featureGates": "A=yes"}),
                "gate `A`: `yes` is not true or false",
            ),
            (
                json!({"version": "1.60.0", "tunables": {"t": 1.5}}),
                "did not match any variant",
            ),
        ] {
            let e = serde_json::from_value::<Install>(body.clone())
                .expect_err(&format!("{body} should be refused"));
            assert!(e.to_string().contains(why), "{body}: {e}");
        }
    }

    #[test]
    fn gate_query_round_trips_in_name_order() -> Result<(), GateQueryError> {
        let i = install();
        assert_eq!(i.gate_query(), "CountsAndLists=false&PlayerTracking=true");
        assert_eq!(parse_query(&i.gate_query())?, i.feature_gates);
        assert_eq!(parse_query("")?, BTreeMap::new());
        assert_eq!(
            parse_query(" A = true && B=false ")?,
            BTreeMap::from([("A".into(), true), ("B".into(), false)])
        );
        assert_eq!(to_query(&BTreeMap::new()), "");
        Ok(())
    }

    // Helm's value is parsed strictly: a malformed part is an error, not a gate that is off
    // (the chaos copy dropped such parts and read anything but `true` as off).
    #[test]
    fn gate_query_is_strict() {
        assert_eq!(
            parse_query("A=true&B").map_err(|e| e.to_string()),
            Err("`B` is not `Gate=true|false`".to_owned())
        );
        assert_eq!(
            parse_query("A=TRUE").map_err(|e| e.to_string()),
            Err("gate `A`: `TRUE` is not true or false".to_owned())
        );
        assert!(parse_query("A=1").is_err());
    }

    #[test]
    fn satisfied_by_needs_the_version_and_every_set_gate() {
        let want = Install {
            version: "1.60.0".into(),
            feature_gates: BTreeMap::from([("PlayerTracking".into(), true)]),
            ..Install::default()
        };
        let mut seen = install();
        assert!(want.satisfied_by(&seen));
        seen.feature_gates.insert("PlayerTracking".into(), false);
        assert!(!want.satisfied_by(&seen));
        seen.feature_gates.insert("PlayerTracking".into(), true);
        seen.version = "1.59.0".into();
        assert!(!want.satisfied_by(&seen));
    }

    #[test]
    fn stages_decide_defaults_and_parse_by_name() {
        assert!(!Stage::Alpha.default_enabled());
        assert!(Stage::Beta.default_enabled() && Stage::Beta.can_disable());
        assert!(Stage::Stable.default_enabled() && !Stage::Stable.can_disable());
        for s in [Stage::Alpha, Stage::Beta, Stage::Stable] {
            assert_eq!(s.as_str().parse::<Stage>(), Ok(s));
            assert_eq!(
                serde_json::to_value(s).ok(),
                Some(json!(s.to_string())),
                "{s}"
            );
        }
        assert_eq!(
            "beta".parse::<Stage>().map_err(|e| e.to_string()),
            Err("unknown stage `beta`, expected Alpha, Beta or Stable".to_owned())
        );
    }

    #[test]
    fn tunable_specs_read_both_shapes_and_name_the_problem() -> serde_json::Result<()> {
        let range: TunableSpec = serde_json::from_value(json!({"min": 1, "max": 16}))?;
        assert_eq!(range, TunableSpec::Range { min: 1, max: 16 });
        let words: TunableSpec = serde_json::from_value(json!({"values": ["info", "debug"]}))?;
        assert!(serde_json::from_value::<TunableSpec>(json!({"min": 1})).is_err());
        assert_eq!(range.problem(&TunableValue::Int(16)), None);
        assert_eq!(
            range.problem(&TunableValue::Int(17)).as_deref(),
            Some("17 is outside 1..=16")
        );
        assert_eq!(
            range.problem(&"x".into()).as_deref(),
            Some("`x` is not an integer")
        );
        assert_eq!(words.problem(&"debug".into()), None);
        assert_eq!(
            words.problem(&TunableValue::Int(3)).as_deref(),
            Some("`3` is not one of info, debug")
        );
        assert_eq!(TunableValue::Int(-2).to_string(), "-2");
        assert_eq!(TunableValue::from("fast").to_string(), "fast");
        Ok(())
    }

    #[test]
    fn gate_names_are_capitalised_alphanumerics() {
        assert!(is_gate_name("PlayerTracking"));
        assert!(is_gate_name("A1"));
        for bad in [
            "",
            "playerTracking",
            "Player_Tracking",
            "Player-Tracking",
            "1A",
        ] {
            assert!(!is_gate_name(bad), "{bad}");
        }
        assert!(GATE_NAME_RULE.starts_with("a gate name"));
    }

    #[test]
    fn versions_strict_and_loose() {
        assert_eq!(parse_version("1.60.0"), Some((1, 60, 0)));
        for bad in ["1.60", "1.60.0.1", "v1.60.0", "1..0", "", "1.60.x"] {
            assert_eq!(parse_version(bad), None, "{bad}");
        }
        assert_eq!(parse_version_loose("1.34"), Some((1, 34, 0)));
        assert_eq!(parse_version_loose("1.34.2"), Some((1, 34, 2)));
        for bad in ["1", "1.2.3.4", "1.x", ""] {
            assert_eq!(parse_version_loose(bad), None, "{bad}");
        }
    }
}
