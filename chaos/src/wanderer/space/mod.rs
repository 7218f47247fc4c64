//! The configuration space the Wanderer walks: versions with their gates and stages, the hop
//! policy, tunables and constraints. A state or transition is valid only if every rule holds.
//!
//! - [`load`]: reading a space file, reporting every problem with its path.
//! - [`census`]: counting the valid states and the pairs they reach.
//! - [`tunable`]: a tunable's values (an integer grid with its `step`, or words).

pub mod census;
pub mod load;
pub mod tunable;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::constraint::{Expr, Facts};

pub use census::Census;
pub use tunable::{TunableSpec, TunableValue};
pub use upsoak_agones::release::{KubeRange, Stage};

/// How far one transition may move the version, in minor releases.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Hops {
    /// Most minor releases one transition may go up.
    pub max_up: u32,
    /// Most minor releases one transition may go down (when downgrades are allowed).
    pub max_down: u32,
    /// Whether a transition may go to an older release at all.
    pub allow_downgrade: bool,
}

/// One release of the space.
#[derive(Clone, Debug, PartialEq)]
pub struct Version {
    /// Its position in the file's `versions`, for messages.
    pub index: usize,
    /// As written, `MAJOR.MINOR.PATCH[-PRE-RELEASE]`.
    pub name: String,
    /// The parsed `name`, for ordering (SemVer precedence) and hops (minor releases).
    pub number: semver::Version,
    /// The Kubernetes versions it supports, when given.
    pub kubernetes: Option<KubeRange>,
    /// Its images' tag when not `name` (a dev build), written to `agones.image.tag`.
    pub image_tag: Option<String>,
    /// Its chart when not the applier's (a local path or an `oci://` reference).
    pub chart: Option<String>,
    /// Its feature gates and their stages.
    pub gates: BTreeMap<String, Stage>,
}

/// A loaded, valid configuration space.
#[derive(Clone, Debug)]
pub struct Space {
    /// Oldest first.
    pub versions: Vec<Version>,
    /// How far one transition may move the version.
    pub hops: Hops,
    /// The tunables and their allowed values.
    pub tunables: BTreeMap<String, TunableSpec>,
    /// Where each tunable that names one goes in the Agones chart's values (the helm applier).
    pub chart: BTreeMap<String, ChartValue>,
    /// Each constraint as written, with its parsed form.
    pub constraints: Vec<(String, Expr)>,
    /// FNV-1a 64 of the file's text, so a journal is never resumed against another space.
    pub hash: String,
}

/// Where a tunable goes in the chart's values and how its value is written there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChartValue {
    /// Dotted paths into the chart's values (`agones.allocator.allocationBatchWaitTime`); the
    /// value is written at each, and read back from each.
    pub paths: Vec<String>,
    /// How the walk's value is written.
    pub format: ValueFormat,
}

/// How a tunable's value is written into the chart's values.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ValueFormat {
    /// A YAML integer.
    Int,
    /// A YAML string, as the enum value reads.
    String,
    /// Milliseconds as a Go duration string: 500 → `"500ms"`.
    DurationMs,
    /// Millicores as a Kubernetes quantity: 500 → `"500m"`.
    Millicpu,
    /// Mebibytes as a Kubernetes quantity: 256 → `"256Mi"`.
    Mebibytes,
}

impl ValueFormat {
    /// The suffix of the string formats.
    fn suffix(self) -> Option<&'static str> {
        match self {
            ValueFormat::DurationMs => Some("ms"),
            ValueFormat::Millicpu => Some("m"),
            ValueFormat::Mebibytes => Some("Mi"),
            ValueFormat::Int | ValueFormat::String => None,
        }
    }

    /// The chart value of `v`.
    pub fn encode(self, v: &TunableValue) -> Result<serde_json::Value, String> {
        match (self, v) {
            (ValueFormat::Int, TunableValue::Int(i)) => Ok((*i).into()),
            (ValueFormat::String, TunableValue::Str(s)) => Ok(s.as_str().into()),
            (f, TunableValue::Int(i)) if f.suffix().is_some() => {
                Ok(format!("{i}{}", f.suffix().unwrap_or_default()).into())
            }
            (f, v) => Err(format!("`{v}` cannot be written as {f:?}")),
        }
    }

    /// The walk's value of a chart value: the inverse of [`ValueFormat::encode`]; `1s` reads as
    /// 1000 for `duration_ms`, `1` as 1000 for `millicpu` and `1Gi` as 1024 for `mebibytes`.
    /// A duration is read as Go's `time.ParseDuration` reads it (Agones parses the flag so), so
    /// a value set by hand (`1.5s`, `1m`) is read as what it is, on the step grid or not.
    pub fn decode(self, v: &serde_json::Value) -> Result<TunableValue, String> {
        let bad = || format!("`{v}` is not {self:?}");
        match self {
            ValueFormat::DurationMs => match v {
                serde_json::Value::String(s) => go_duration_ms(s)
                    .map(TunableValue::Int)
                    .map_err(|e| format!("`{v}` is not a duration: {e}")),
                _ => Err(bad()),
            },
            ValueFormat::Int => v.as_i64().map(TunableValue::Int).ok_or_else(bad),
            ValueFormat::String => v
                .as_str()
                .map(|s| TunableValue::Str(s.to_owned()))
                .ok_or_else(bad),
            ValueFormat::Millicpu | ValueFormat::Mebibytes => {
                let text = match v {
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Number(n) => n.to_string(),
                    _ => return Err(bad()),
                };
                let (num, scale) = match self {
                    ValueFormat::Millicpu => text
                        .strip_suffix('m')
                        .map(|n| (n, 1))
                        .or(Some((text.as_str(), 1000))),
                    _ => text
                        .strip_suffix("Mi")
                        .map(|n| (n, 1))
                        .or_else(|| text.strip_suffix("Gi").map(|n| (n, 1024))),
                }
                .ok_or_else(bad)?;
                num.parse::<i64>()
                    .map(|n| TunableValue::Int(n * scale))
                    .map_err(|_| bad())
            }
        }
    }
}

/// Milliseconds of a Go duration (`time.ParseDuration`: an optional sign, then numbers with
/// units `ns`, `us`, `µs`, `ms`, `s`, `m`, `h`, as in `1m30s` or `1.5s`; `0` alone), which must
/// be a whole number of them.
fn go_duration_ms(text: &str) -> Result<i64, String> {
    const UNITS: [(&str, i128); 8] = [
        ("ns", 1),
        ("us", 1_000),
        ("µs", 1_000),
        ("μs", 1_000),
        ("ms", 1_000_000),
        ("s", 1_000_000_000),
        ("m", 60_000_000_000),
        ("h", 3_600_000_000_000),
    ];
    let (negative, mut rest) = match text.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err("empty".into());
    }
    let mut ns: i128 = 0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or("a number without a unit")?;
        let (number, tail) = rest.split_at(digits);
        let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
        if (whole.is_empty() && frac.is_empty()) || frac.contains('.') || number.len() > 24 {
            return Err(format!("`{number}` is not a number"));
        }
        let (unit, scale) = UNITS
            .iter()
            // The longest unit first: `ms` before `m`.
            .filter(|(u, _)| tail.starts_with(u))
            .max_by_key(|(u, _)| u.len())
            .ok_or_else(|| format!("unknown unit in `{tail}`"))?;
        let parse = |d: &str| d.parse::<i128>().unwrap_or(0);
        let ten = 10i128.pow(frac.len() as u32);
        let term = (parse(whole) * ten + parse(frac)) * scale;
        if term % ten != 0 {
            return Err(format!(
                "`{number}{unit}` is not a whole number of nanoseconds"
            ));
        }
        ns = ns.checked_add(term / ten).ok_or("too long a duration")?;
        rest = &tail[unit.len()..];
    }
    if ns % 1_000_000 != 0 {
        return Err(format!("{ns}ns is not a whole number of milliseconds"));
    }
    let ms = ns / 1_000_000;
    i64::try_from(if negative { -ms } else { ms }).map_err(|_| "too long a duration".into())
}

/// A point of the space.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct State {
    /// Index into [`Space::versions`].
    pub version: usize,
    /// Every gate of that version with its value.
    pub gates: BTreeMap<String, bool>,
    /// Every tunable with its value.
    pub tunables: BTreeMap<String, TunableValue>,
}

struct StateFacts<'a> {
    space: &'a Space,
    state: &'a State,
}

impl Facts for StateFacts<'_> {
    fn gate(&self, name: &str) -> bool {
        self.state.gates.get(name).copied().unwrap_or(false)
    }
    fn version(&self) -> &semver::Version {
        &self.space.versions[self.state.version].number
    }
    fn tunable_int(&self, name: &str) -> Option<i64> {
        match self.state.tunables.get(name)? {
            TunableValue::Int(i) => Some(*i),
            TunableValue::Str(_) => None,
        }
    }
    fn tunable_str(&self, name: &str) -> Option<&str> {
        match self.state.tunables.get(name)? {
            TunableValue::Str(s) => Some(s),
            TunableValue::Int(_) => None,
        }
    }
}

impl Space {
    /// The default state of version `v`: Stable and Beta gates on, Alpha off; tunables at
    /// their first value.
    pub fn defaults(&self, v: usize) -> State {
        State {
            version: v,
            gates: self.versions[v]
                .gates
                .iter()
                .map(|(g, s)| (g.clone(), *s != Stage::Alpha))
                .collect(),
            tunables: self
                .tunables
                .iter()
                .map(|(t, spec)| {
                    let v = match spec {
                        TunableSpec::Range { min, .. } => TunableValue::Int(*min),
                        TunableSpec::Enum { values } => {
                            TunableValue::Str(values.first().cloned().unwrap_or_default())
                        }
                    };
                    (t.clone(), v)
                })
                .collect(),
        }
    }

    /// Where a walk starts: the oldest version's defaults, or the first valid state found by
    /// turning off non-Stable gates one by one when the defaults break a constraint, each gate
    /// setting tried with every class of tunable values the constraints tell apart (defaults
    /// first), so `tunable:X >= 200` starts at 200 rather than finding no start.
    pub fn start(&self) -> Option<State> {
        // One representative of each class of each tunable's values.
        let classes: Vec<(String, Vec<TunableValue>)> = self
            .tunables
            .iter()
            .map(|(name, spec)| {
                let reps = census::tunable_classes(name, spec, &self.constraints)
                    .into_iter()
                    .map(|(v, _)| v)
                    .collect();
                (name.clone(), reps)
            })
            .collect();
        let combos: u128 = classes
            .iter()
            .map(|(_, r)| r.len().max(1) as u128)
            .product();
        let mut s = self.defaults(0);
        let names: Vec<String> = s.gates.keys().cloned().collect();
        let mut settings = vec![s.gates.clone()];
        for g in names {
            if self.versions[0].gates.get(&g) != Some(&Stage::Stable) {
                s.gates.insert(g, false);
                settings.push(s.gates.clone());
            }
        }
        for gates in settings {
            s.gates = gates;
            // Mixed-radix over the classes; bounded like the census.
            for mut i in 0..combos.min(Space::CENSUS_LIMIT) {
                for (name, reps) in &classes {
                    if let Some(v) = reps.get((i % reps.len().max(1) as u128) as usize) {
                        s.tunables.insert(name.clone(), v.clone());
                    }
                    i /= reps.len().max(1) as u128;
                }
                if self.is_valid(&s) {
                    return Some(s);
                }
            }
        }
        None
    }

    /// Why `s` is not a valid state, or `None` when it is.
    pub fn why_invalid(&self, s: &State) -> Option<String> {
        let v = self.versions.get(s.version)?;
        for (g, on) in &s.gates {
            match v.gates.get(g) {
                None => return Some(format!("gate `{g}` does not exist in {}", v.name)),
                Some(Stage::Stable) if !on => {
                    return Some(format!(
                        "gate `{g}` is Stable in {} and cannot be off",
                        v.name
                    ));
                }
                _ => {}
            }
        }
        if let Some(g) = v.gates.keys().find(|g| !s.gates.contains_key(*g)) {
            return Some(format!("gate `{g}` of {} has no value", v.name));
        }
        for (t, spec) in &self.tunables {
            let Some(value) = s.tunables.get(t) else {
                return Some(format!("tunable `{t}` has no value"));
            };
            if let Some(why) = spec.problem(value) {
                return Some(format!("tunable `{t}`: {why}"));
            }
        }
        if s.tunables.len() != self.tunables.len() {
            return Some("an unknown tunable is set".to_owned());
        }
        let facts = StateFacts {
            space: self,
            state: s,
        };
        self.constraints
            .iter()
            .find(|(_, e)| !e.eval(&facts))
            .map(|(text, _)| format!("breaks constraint `{text}`"))
    }

    /// Whether every constraint holds in `s`, which must otherwise be well formed (the version's
    /// gates, Stable ones on, tunables in range): the fast check for states built that way.
    pub fn holds_constraints(&self, s: &State) -> bool {
        let facts = StateFacts {
            space: self,
            state: s,
        };
        self.constraints.iter().all(|(_, e)| e.eval(&facts))
    }

    pub fn is_valid(&self, s: &State) -> bool {
        self.why_invalid(s).is_none()
    }

    /// Why `a → b` is not a valid transition, or `None` when it is.
    pub fn why_invalid_transition(&self, a: &State, b: &State) -> Option<String> {
        if let Some(w) = self.why_invalid(a).or_else(|| self.why_invalid(b)) {
            return Some(w);
        }
        if a == b {
            return Some("a transition must change something".to_owned());
        }
        let (va, vb) = (&self.versions[a.version], &self.versions[b.version]);
        let (ma, mb) = (&va.number, &vb.number);
        let order = mb.cmp_precedence(ma);
        if ma.major != mb.major {
            return Some(format!(
                "{} → {} changes the major version",
                va.name, vb.name
            ));
        }
        if order.is_gt() && mb.minor - ma.minor > u64::from(self.hops.max_up) {
            return Some(format!(
                "{} → {} is more than {} minor up",
                va.name, vb.name, self.hops.max_up
            ));
        }
        if order.is_lt() {
            if !self.hops.allow_downgrade {
                return Some(format!(
                    "{} → {} is a downgrade, which the space forbids",
                    va.name, vb.name
                ));
            }
            if ma.minor - mb.minor > u64::from(self.hops.max_down) {
                return Some(format!(
                    "{} → {} is more than {} minor down",
                    va.name, vb.name, self.hops.max_down
                ));
            }
        }
        None
    }

    /// The space without the releases whose Kubernetes range does not hold the cluster's
    /// `(major, minor)` (a release without a range is kept), and the names of those dropped.
    pub fn supporting(&self, kube: (u32, u32)) -> (Space, Vec<String>) {
        let fits = |v: &Version| {
            v.kubernetes.as_ref().is_none_or(|k| {
                let bound = |s: &str| {
                    upsoak_agones::release::parse_version_loose(s).map(|(a, b, _)| (a, b))
                };
                bound(&k.min).is_none_or(|m| m <= kube) && bound(&k.max).is_none_or(|m| kube <= m)
            })
        };
        let (kept, dropped): (Vec<&Version>, Vec<&Version>) =
            self.versions.iter().partition(|v| fits(v));
        let mut space = self.clone();
        space.versions = kept.into_iter().cloned().collect();
        (space, dropped.into_iter().map(|v| v.name.clone()).collect())
    }

    /// The image tag release `name` runs: its `image_tag`, else the name itself.
    pub fn image_tag<'a>(&'a self, name: &'a str) -> &'a str {
        self.versions
            .iter()
            .find(|v| v.name == name)
            .and_then(|v| v.image_tag.as_deref())
            .unwrap_or(name)
    }

    /// Versions a transition from version `v` may go to (including `v`).
    pub fn reachable_versions(&self, v: usize) -> Vec<usize> {
        let from = &self.versions[v].number;
        (0..self.versions.len())
            .filter(|&w| {
                let to = &self.versions[w].number;
                let order = to.cmp_precedence(from);
                to.major == from.major
                    && if order.is_gt() {
                        to.minor - from.minor <= u64::from(self.hops.max_up)
                    } else if order.is_lt() {
                        self.hops.allow_downgrade
                            && from.minor - to.minor <= u64::from(self.hops.max_down)
                    } else {
                        true
                    }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHIPPED: &str = include_str!("../../../spaces/agones.yaml");

    #[test]
    fn the_shipped_space_loads_and_follows_the_reference() {
        let s = Space::parse(SHIPPED, "agones.yaml").unwrap();
        assert_eq!(s.versions.len(), 6);
        assert_eq!(s.versions[0].gates["SidecarContainers"], Stage::Alpha);
        assert_eq!(s.versions[1].gates["SidecarContainers"], Stage::Beta);
        assert_eq!(s.versions[4].gates["PortRanges"], Stage::Stable);
        assert_eq!(s.versions[5].gates["PortPolicyNone"], Stage::Stable);
        let start = s.start().unwrap();
        assert_eq!(s.versions[start.version].name, "1.55.0");
        assert!(s.is_valid(&start));
        assert_eq!(s.reachable_versions(0), vec![0, 1, 2]);
        assert_eq!(s.reachable_versions(3), vec![1, 2, 3, 4, 5]);
    }

    #[test]
    fn a_constraint_that_excludes_the_default_tunable_values_still_has_a_start() {
        // The shipped space with the batch wait held at 200 ms, as `make demo` holds it.
        for (constraint, wait) in [
            ("tunable:allocationBatchWaitTime == 200", 200),
            ("tunable:allocationBatchWaitTime >= 700", 700),
        ] {
            let text = format!("{SHIPPED}  - {constraint}\n");
            let s = Space::parse(&text, "held.yaml").unwrap();
            let start = s.start().unwrap();
            assert!(s.is_valid(&start), "{constraint}");
            assert_eq!(
                start.tunables["allocationBatchWaitTime"],
                TunableValue::Int(wait),
                "{constraint}"
            );
            // The other tunables keep their defaults.
            assert_eq!(start.tunables["logLevel"], TunableValue::Str("info".into()));
        }
        // A constraint no value meets: no start, and loading says so.
        let text = format!("{SHIPPED}  - tunable:allocationBatchWaitTime > 1000\n");
        let err = Space::parse(&text, "none.yaml").unwrap_err().to_string();
        assert!(
            err.contains("no valid state of the oldest version"),
            "{err}"
        );
    }

    #[test]
    fn releases_that_do_not_support_the_cluster_are_dropped() {
        let s = Space::parse(SHIPPED, "agones.yaml").unwrap();
        let (all, dropped) = s.supporting((1, 34));
        assert_eq!((all.versions.len(), dropped.len()), (6, 0));
        let (newer, dropped) = s.supporting((1, 35));
        assert_eq!(dropped, ["1.55.0", "1.56.0"]);
        assert_eq!(newer.versions[0].name, "1.57.0");
        assert_eq!(newer.start().map(|st| st.version), Some(0));
        let (none, dropped) = s.supporting((1, 37));
        assert!(none.versions.is_empty());
        assert_eq!(dropped.len(), 6);
    }

    #[test]
    fn invalid_states_and_transitions_say_why() {
        let s = Space::parse(SHIPPED, "agones.yaml").unwrap();
        let mut st = s.defaults(5);
        assert!(s.is_valid(&st));
        st.gates.insert("PortPolicyNone".into(), false);
        assert!(s.why_invalid(&st).unwrap().contains("Stable"));
        let mut st = s.defaults(5);
        st.gates.insert("PlayerAllocationFilter".into(), true);
        assert!(s.why_invalid(&st).unwrap().contains("PlayerTracking"));
        let mut st = s.defaults(5);
        st.gates.insert("Bogus".into(), true);
        assert!(s.why_invalid(&st).unwrap().contains("does not exist"));
        let a = s.defaults(0);
        let b = s.defaults(5);
        assert!(
            s.why_invalid_transition(&a, &b)
                .unwrap()
                .contains("more than 2 minor up")
        );
        assert!(
            s.why_invalid_transition(&a, &a)
                .unwrap()
                .contains("must change")
        );
        assert!(
            s.why_invalid_transition(&s.defaults(2), &s.defaults(0))
                .is_none()
        );
    }

    #[test]
    fn formats_write_and_read_back() {
        let cases = [
            (ValueFormat::DurationMs, 500, "500ms"),
            (ValueFormat::Millicpu, 250, "250m"),
            (ValueFormat::Mebibytes, 256, "256Mi"),
        ];
        for (f, n, text) in cases {
            let v = f.encode(&TunableValue::Int(n)).unwrap();
            assert_eq!(v, serde_json::json!(text));
            assert_eq!(f.decode(&v).unwrap(), TunableValue::Int(n));
        }
        assert_eq!(
            ValueFormat::DurationMs
                .decode(&serde_json::json!("2s"))
                .unwrap(),
            TunableValue::Int(2000)
        );
        // Go durations as Agones reads them, on a step grid or not.
        for (text, ms) in [
            ("1m30s", 90_000),
            ("1.5s", 1500),
            ("450ms", 450),
            ("0", 0),
            ("2000000us", 2000),
            ("1h", 3_600_000),
        ] {
            assert_eq!(
                ValueFormat::DurationMs.decode(&serde_json::json!(text)),
                Ok(TunableValue::Int(ms)),
                "{text}"
            );
        }
        for (text, why) in [
            ("1500us", "1500000ns is not a whole number of milliseconds"),
            ("5", "a number without a unit"),
            ("5d", "unknown unit in `d`"),
            ("1.2.3s", "`1.2.3` is not a number"),
            ("", "empty"),
        ] {
            let e = ValueFormat::DurationMs
                .decode(&serde_json::json!(text))
                .unwrap_err();
            assert!(e.ends_with(why), "{text}: {e}");
        }
        assert!(
            ValueFormat::DurationMs
                .decode(&serde_json::json!(500))
                .is_err()
        );
        assert_eq!(
            ValueFormat::Mebibytes
                .decode(&serde_json::json!("1Gi"))
                .unwrap(),
            TunableValue::Int(1024)
        );
        assert_eq!(ValueFormat::Int.encode(&TunableValue::Int(3)).unwrap(), 3);
        assert!(
            ValueFormat::Int
                .encode(&TunableValue::Str("x".into()))
                .is_err()
        );
        assert!(
            ValueFormat::DurationMs
                .decode(&serde_json::json!("soon"))
                .is_err()
        );
    }
}
