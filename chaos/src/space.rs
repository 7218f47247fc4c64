//! The configuration space the Wanderer walks: versions with their gates and stages, the hop
//! policy, tunables and constraints. Loading reports every problem with its path; a state or
//! transition is valid only if every rule holds.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::apply::Install;
use crate::constraint::{self, Expr, Facts};

/// A feature gate's stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Stage {
    Alpha,
    Beta,
    Stable,
}

/// The top-level keys of a space file; each section is read on its own so that one bad entry
/// does not hide the problems of the others.
const SECTIONS: [&str; 4] = ["versions", "hops", "tunables", "constraints"];

/// A tunable as written: `{min, max}` or `{values}`. Read as one struct rather than an untagged
/// enum, whose only error is "did not match any variant".
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTunable {
    min: Option<i64>,
    max: Option<i64>,
    values: Option<Vec<String>>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVersion {
    #[serde(deserialize_with = "string_or_number")]
    version: String,
    #[serde(default)]
    kubernetes: Option<KubeRange>,
    gates: BTreeMap<String, String>,
}

/// YAML reads `1.60` as a number; a version is text either way.
fn string_or_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match serde_yaml::Value::deserialize(d)? {
        serde_yaml::Value::String(s) => Ok(s),
        serde_yaml::Value::Number(n) => Ok(n.to_string()),
        other => Err(serde::de::Error::custom(format!(
            "expected a version, got {other:?}"
        ))),
    }
}

/// Supported Kubernetes minor versions.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct KubeRange {
    pub min: String,
    pub max: String,
}

/// How far one transition may move the version, in minor releases.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Hops {
    pub max_up: u32,
    pub max_down: u32,
    pub allow_downgrade: bool,
}

/// A tunable's allowed values.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(untagged, deny_unknown_fields)]
pub enum Tunable {
    Int { min: i64, max: i64 },
    Enum { values: Vec<String> },
}

/// A tunable's value.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    Int(i64),
    Str(String),
}

/// One release of the space.
#[derive(Clone, Debug, PartialEq)]
pub struct Version {
    /// Its position in the file's `versions`, for messages.
    pub index: usize,
    pub name: String,
    pub number: (u32, u32, u32),
    pub kubernetes: Option<KubeRange>,
    pub gates: BTreeMap<String, Stage>,
}

/// A loaded, valid configuration space.
#[derive(Clone, Debug)]
pub struct Space {
    /// Oldest first.
    pub versions: Vec<Version>,
    pub hops: Hops,
    pub tunables: BTreeMap<String, Tunable>,
    pub constraints: Vec<(String, Expr)>,
    /// FNV-1a 64 of the file's text, so a journal is never resumed against another space.
    pub hash: String,
}

/// A point of the space.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct State {
    /// Index into [`Space::versions`].
    pub version: usize,
    /// Every gate of that version with its value.
    pub gates: BTreeMap<String, bool>,
    pub tunables: BTreeMap<String, Value>,
}

/// What enumerating every valid state of a space found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Census {
    /// How many valid states there are (saturating).
    pub states: u128,
    /// Per version: whether it has a valid state at all.
    pub inhabited: Vec<bool>,
    /// Every (version, gate, value) of a gate the version lets vary that some valid state has.
    pub gate_version: BTreeSet<(usize, String, bool)>,
    /// Every (gate, value, gate, value) of two varying gates, in name order, that some valid
    /// state of some version has.
    pub gate_pairs: BTreeSet<(String, bool, String, bool)>,
}

/// Classes of a tunable's values that every constraint treats alike: a representative and how
/// many values it stands for.
fn tunable_classes(
    name: &str,
    spec: &Tunable,
    constraints: &[(String, Expr)],
) -> Vec<(Value, u128)> {
    let mut consts = Vec::new();
    let mut named = false;
    for (_, e) in constraints {
        let (mut g, mut t) = (Vec::new(), Vec::new());
        e.names(&mut g, &mut t);
        named |= t.iter().any(|(n, _)| n == name);
        e.int_constants(name, &mut consts);
    }
    match spec {
        Tunable::Enum { values } if named => {
            values.iter().map(|v| (Value::Str(v.clone()), 1)).collect()
        }
        Tunable::Enum { values } => match values.first() {
            Some(v) => vec![(Value::Str(v.clone()), values.len() as u128)],
            None => Vec::new(),
        },
        Tunable::Int { min, max } => {
            consts.retain(|c| (min..=max).contains(&c));
            consts.sort_unstable();
            consts.dedup();
            let mut out = Vec::new();
            // i128: a range may span all of i64.
            let mut lo = i128::from(*min);
            // Each constant is its own class; the runs between constants are one class each.
            for c in consts.into_iter().map(i128::from) {
                if c > lo {
                    out.push((Value::Int(lo as i64), (c - lo) as u128));
                }
                out.push((Value::Int(c as i64), 1));
                lo = c + 1;
            }
            if lo <= i128::from(*max) {
                out.push((Value::Int(lo as i64), (i128::from(*max) - lo) as u128 + 1));
            }
            out
        }
    }
}

/// Every problem found in a space file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration space `{source_name}` ({} problem{}):\n  {}", problems.len(), if problems.len() == 1 { "" } else { "s" }, problems.join("\n  "))]
pub struct SpaceErrors {
    pub source_name: String,
    pub problems: Vec<String>,
}

struct StateFacts<'a> {
    space: &'a Space,
    state: &'a State,
}

impl Facts for StateFacts<'_> {
    fn gate(&self, name: &str) -> bool {
        self.state.gates.get(name).copied().unwrap_or(false)
    }
    fn version(&self) -> (u32, u32, u32) {
        self.space.versions[self.state.version].number
    }
    fn tunable_int(&self, name: &str) -> Option<i64> {
        match self.state.tunables.get(name)? {
            Value::Int(i) => Some(*i),
            Value::Str(_) => None,
        }
    }
    fn tunable_str(&self, name: &str) -> Option<&str> {
        match self.state.tunables.get(name)? {
            Value::Str(s) => Some(s),
            Value::Int(_) => None,
        }
    }
}

fn fnv1a(text: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// The sections of a space file as far as they could be read; `p` gets every problem.
struct RawSections {
    versions: Vec<(usize, RawVersion)>,
    versions_given: bool,
    /// Some entry of `versions` could not be read: checks across versions (none left, unknown
    /// gate) would only echo that problem.
    versions_broken: bool,
    hops: Option<Hops>,
    tunables: BTreeMap<String, RawTunable>,
    /// With their index in the file, which a broken entry before them must not shift.
    constraints: Vec<(usize, String)>,
}

/// Reads `value` as a `T`, or records why not under `path`.
fn entry<T: serde::de::DeserializeOwned>(
    value: serde_yaml::Value,
    path: &str,
    p: &mut Vec<String>,
) -> Option<T> {
    serde_path_to_error::deserialize(value)
        .map_err(|e| {
            let inner = e.path().to_string();
            let at = match inner.as_str() {
                "." => path.to_owned(),
                i if i.starts_with('[') => format!("{path}{i}"),
                i => format!("{path}.{i}"),
            };
            p.push(format!("{at}: {}", e.inner()));
        })
        .ok()
}

fn read_sections(value: serde_yaml::Value, p: &mut Vec<String>) -> RawSections {
    let mut raw = RawSections {
        versions: Vec::new(),
        versions_given: false,
        versions_broken: false,
        hops: None,
        tunables: BTreeMap::new(),
        constraints: Vec::new(),
    };
    let serde_yaml::Value::Mapping(top) = value else {
        p.push(format!(
            ".: expected a mapping with keys {}",
            SECTIONS.join(", ")
        ));
        return raw;
    };
    for (k, v) in top {
        let key = match k {
            serde_yaml::Value::String(k) => k,
            other => {
                p.push(format!(".: a key must be text, got {other:?}"));
                continue;
            }
        };
        match key.as_str() {
            "versions" => {
                raw.versions_given = true;
                let seq = entry::<Vec<serde_yaml::Value>>(v, "versions", p);
                raw.versions_broken = seq.is_none();
                if let Some(seq) = seq {
                    for (i, item) in seq.into_iter().enumerate() {
                        match entry(item, &format!("versions[{i}]"), p) {
                            Some(rv) => raw.versions.push((i, rv)),
                            None => raw.versions_broken = true,
                        }
                    }
                }
            }
            "hops" => raw.hops = entry(v, "hops", p),
            "tunables" => {
                if let Some(map) = entry::<BTreeMap<String, serde_yaml::Value>>(v, "tunables", p) {
                    for (t, spec) in map {
                        if let Some(rt) = entry(spec, &format!("tunables.{t}"), p) {
                            raw.tunables.insert(t, rt);
                        }
                    }
                }
            }
            "constraints" => {
                if let Some(seq) = entry::<Vec<serde_yaml::Value>>(v, "constraints", p) {
                    for (i, c) in seq.into_iter().enumerate() {
                        if let Some(c) = entry(c, &format!("constraints[{i}]"), p) {
                            raw.constraints.push((i, c));
                        }
                    }
                }
            }
            other => p.push(format!(
                "{other}: unknown field `{other}`, expected one of {}",
                SECTIONS.join(", ")
            )),
        }
    }
    if !raw.versions_given {
        p.push("versions: missing (a list of versions, oldest first)".to_owned());
    }
    if raw.hops.is_none() && !p.iter().any(|x| x.starts_with("hops")) {
        p.push("hops: missing (`{max_up, max_down, allow_downgrade}`)".to_owned());
    }
    raw
}

impl Space {
    /// Reads and validates a space file.
    pub fn load(path: &Path) -> Result<Space, SpaceErrors> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| SpaceErrors {
            source_name: name.clone(),
            problems: vec![format!("cannot read: {e}")],
        })?;
        Space::parse(&text, &name)
    }

    /// Parses and validates YAML text; `name` names it in errors.
    pub fn parse(text: &str, name: &str) -> Result<Space, SpaceErrors> {
        let fail = |problems: Vec<String>| SpaceErrors {
            source_name: name.to_owned(),
            problems,
        };
        let value: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| {
            let msg = e.to_string();
            // The position goes first, as compilers print it; serde_yaml also says it in words.
            let located = e.location().map(|l| {
                let words = format!(" at line {} column {}", l.line(), l.column());
                format!(
                    "{name}:{}:{}: {}",
                    l.line(),
                    l.column(),
                    msg.replacen(&words, "", 1)
                )
            });
            fail(vec![located.unwrap_or(msg)])
        })?;
        let mut p = Vec::new();
        let raw = read_sections(value, &mut p);
        let mut versions = Vec::new();
        for (i, v) in &raw.versions {
            let number = constraint::parse_version_loose(&v.version)
                .filter(|_| v.version.split('.').count() == 3);
            if number.is_none() {
                p.push(format!(
                    "versions[{i}].version: `{}` is not MAJOR.MINOR.PATCH",
                    v.version
                ));
            }
            let mut gates = BTreeMap::new();
            for (g, stage) in &v.gates {
                if !(g.chars().next().is_some_and(|c| c.is_ascii_uppercase())
                    && g.chars().all(|c| c.is_ascii_alphanumeric()))
                {
                    p.push(format!("versions[{i}].gates.{g}: a gate name is letters and digits, starting with a capital"));
                }
                match stage.as_str() {
                    "Alpha" => gates.insert(g.clone(), Stage::Alpha),
                    "Beta" => gates.insert(g.clone(), Stage::Beta),
                    "Stable" => gates.insert(g.clone(), Stage::Stable),
                    other => {
                        p.push(format!("versions[{i}].gates.{g}: unknown stage `{other}`, expected Alpha, Beta or Stable"));
                        None
                    }
                };
            }
            if let Some(k) = &v.kubernetes {
                for (field, val) in [("min", &k.min), ("max", &k.max)] {
                    if constraint::parse_version_loose(val).is_none() {
                        p.push(format!(
                            "versions[{i}].kubernetes.{field}: `{val}` is not a version like 1.34"
                        ));
                    }
                }
            }
            versions.push(Version {
                index: *i,
                name: v.version.clone(),
                number: number.unwrap_or_default(),
                kubernetes: v.kubernetes.clone(),
                gates,
            });
        }
        if versions.is_empty() && raw.versions_given && !raw.versions_broken {
            p.push("versions: at least one version is required".to_owned());
        }
        for w in 1..versions.len() {
            if versions[w].number <= versions[w - 1].number {
                p.push(format!(
                    "versions[{}].version: `{}` must be newer than `{}` (list versions oldest first, once each)",
                    versions[w].index,
                    versions[w].name,
                    versions[w - 1].name
                ));
            }
        }
        // A gate that becomes Stable stays Stable: Agones never demotes a gate.
        for w in 1..versions.len() {
            for (g, stage) in &versions[w - 1].gates {
                if *stage == Stage::Stable
                    && versions[w]
                        .gates
                        .get(g)
                        .is_some_and(|s| *s != Stage::Stable)
                {
                    p.push(format!(
                        "versions[{}].gates.{g}: Stable in {} but not in {}",
                        versions[w].index,
                        versions[w - 1].name,
                        versions[w].name
                    ));
                }
            }
        }
        if let Some(h) = raw.hops
            && h.max_up == 0
            && h.max_down == 0
        {
            p.push("hops: max_up and max_down are both 0: the version can never change".to_owned());
        }
        let mut tunables = BTreeMap::new();
        for (t, spec) in &raw.tunables {
            let at = format!("tunables.{t}");
            match spec {
                RawTunable {
                    min: Some(min),
                    max: Some(max),
                    values: None,
                } => {
                    if min > max {
                        p.push(format!("{at}: min {min} is above max {max}"));
                    }
                    tunables.insert(t.clone(), Tunable::Int { min: *min, max: *max });
                }
                RawTunable {
                    min: None,
                    max: None,
                    values: Some(values),
                } => {
                    if values.is_empty() {
                        p.push(format!("{at}.values: at least one value is required"));
                    }
                    for (k, v) in values.iter().enumerate() {
                        // A value that reads as a number would be compared as one in a constraint.
                        if v.is_empty() || v.parse::<i64>().is_ok() || !v.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
                            p.push(format!("{at}.values[{k}]: `{v}` is not a word (letters, digits, `-`, `_`, `.`, not a number)"));
                        }
                        if values[..k].contains(v) {
                            p.push(format!("{at}.values[{k}]: `{v}` is listed twice"));
                        }
                    }
                    tunables.insert(t.clone(), Tunable::Enum { values: values.clone() });
                }
                _ => p.push(format!(
                    "{at}: give either `{{min, max}}` (an integer range) or `{{values: [...]}}` (an enum)"
                )),
            }
        }
        let mut constraints = Vec::new();
        for (i, c) in &raw.constraints {
            match constraint::parse(c) {
                Err(e) => p.push(format!("constraints[{i}]: {e}")),
                Ok(expr) => {
                    let (mut gates, mut names) = (Vec::new(), Vec::new());
                    expr.names(&mut gates, &mut names);
                    let at = |word: String| {
                        constraint::column_of(c, &word)
                            .map(|col| format!("constraints[{i}]: col {col}: "))
                            .unwrap_or_else(|| format!("constraints[{i}]: "))
                    };
                    for g in gates {
                        if !raw.versions_broken
                            && !versions.iter().any(|v| v.gates.contains_key(&g))
                        {
                            p.push(format!("{}unknown gate `{g}`", at(format!("gate:{g}"))));
                        }
                    }
                    for (t, numeric) in names {
                        let here = at(format!("tunable:{t}"));
                        match tunables.get(&t) {
                            // An unknown tunable is only an error when the tunables parsed;
                            // a broken `tunables` entry is already reported.
                            None if !raw.tunables.contains_key(&t) => {
                                p.push(format!("{here}unknown tunable `{t}`"))
                            }
                            Some(Tunable::Int { .. }) if !numeric => p.push(format!(
                                "{here}tunable `{t}` is an integer, compared with a word"
                            )),
                            Some(Tunable::Enum { .. }) if numeric => p.push(format!(
                                "{here}tunable `{t}` is an enum, compared with a number"
                            )),
                            _ => {}
                        }
                    }
                    constraints.push((c.clone(), expr));
                }
            }
        }
        let Some(hops) = raw.hops else {
            return Err(fail(p));
        };
        if !p.is_empty() {
            return Err(fail(p));
        }
        let space = Space {
            versions,
            hops,
            tunables,
            constraints,
            hash: fnv1a(text),
        };
        if space.start().is_none() {
            return Err(fail(vec![
                "constraints: no valid state of the oldest version exists (every combination breaks a constraint)".to_owned(),
            ]));
        }
        Ok(space)
    }

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
                        Tunable::Int { min, .. } => Value::Int(*min),
                        Tunable::Enum { values } => {
                            Value::Str(values.first().cloned().unwrap_or_default())
                        }
                    };
                    (t.clone(), v)
                })
                .collect(),
        }
    }

    /// Where a walk starts: the oldest version's defaults, or the first valid state found by
    /// turning off non-Stable gates one by one when the defaults break a constraint.
    pub fn start(&self) -> Option<State> {
        let mut s = self.defaults(0);
        if self.is_valid(&s) {
            return Some(s);
        }
        let names: Vec<String> = s.gates.keys().cloned().collect();
        for g in names {
            if self.versions[0].gates.get(&g) != Some(&Stage::Stable) {
                s.gates.insert(g, false);
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
            let ok = match (spec, s.tunables.get(t)) {
                (Tunable::Int { min, max }, Some(Value::Int(i))) => (min..=max).contains(&i),
                (Tunable::Enum { values }, Some(Value::Str(x))) => values.contains(x),
                _ => false,
            };
            if !ok {
                return Some(format!("tunable `{t}` is missing or out of range"));
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

    /// The most candidate states a census tries before giving up (about a second of work).
    pub const CENSUS_LIMIT: u128 = 1 << 22;

    /// Enumerates every valid state, exactly: all combinations of the gates each version lets
    /// vary, times the classes of tunable values the constraints can tell apart. `None` when
    /// that is more than [`Space::CENSUS_LIMIT`] states.
    pub fn census(&self) -> Option<Census> {
        let classes: Vec<(String, Vec<(Value, u128)>)> = self
            .tunables
            .iter()
            .map(|(t, spec)| (t.clone(), tunable_classes(t, spec, &self.constraints)))
            .collect();
        let combos = classes
            .iter()
            .try_fold(1u128, |n, (_, c)| n.checked_mul(c.len() as u128))?;
        let mut tries = 0u128;
        for v in &self.versions {
            let free = v.gates.values().filter(|s| **s != Stage::Stable).count();
            let masks = 1u128.checked_shl(u32::try_from(free).ok()?)?;
            tries = tries.checked_add(masks.checked_mul(combos)?)?;
        }
        if tries > Self::CENSUS_LIMIT {
            return None;
        }
        let mut census = Census {
            states: 0,
            inhabited: vec![false; self.versions.len()],
            gate_version: BTreeSet::new(),
            gate_pairs: BTreeSet::new(),
        };
        for (vi, v) in self.versions.iter().enumerate() {
            let free: Vec<&String> = v
                .gates
                .iter()
                .filter(|(_, s)| **s != Stage::Stable)
                .map(|(g, _)| g)
                .collect();
            let n = free.len();
            // Seen values of gate i, and of gate pairs (i, j) as 2·a + b, by index: cheaper
            // than building named tuples for each of thousands of states.
            let mut seen_gv = vec![[false; 2]; n];
            let mut seen_gp = vec![[false; 4]; n * n];
            let mut s = self.defaults(vi);
            for combo in 0..combos {
                let mut rest = combo;
                let mut weight = 1u128;
                for (t, cls) in &classes {
                    let k = cls.len() as u128;
                    let (value, w) = &cls[(rest % k) as usize];
                    rest /= k;
                    weight = weight.saturating_mul(*w);
                    s.tunables.insert(t.clone(), value.clone());
                }
                for mask in 0u64..(1u64 << n) {
                    for (i, g) in free.iter().enumerate() {
                        if let Some(on) = s.gates.get_mut(*g) {
                            *on = mask >> i & 1 == 1;
                        }
                    }
                    if !self.holds_constraints(&s) {
                        continue;
                    }
                    census.states = census.states.saturating_add(weight);
                    census.inhabited[vi] = true;
                    let bit = |i: usize| (mask >> i & 1) as usize;
                    for i in 0..n {
                        seen_gv[i][bit(i)] = true;
                        for j in i + 1..n {
                            seen_gp[i * n + j][2 * bit(i) + bit(j)] = true;
                        }
                    }
                }
            }
            for i in 0..n {
                for (b, seen) in seen_gv[i].iter().enumerate() {
                    if *seen {
                        census.gate_version.insert((vi, free[i].clone(), b == 1));
                    }
                }
                for j in i + 1..n {
                    for (ab, seen) in seen_gp[i * n + j].iter().enumerate() {
                        if *seen {
                            census.gate_pairs.insert((
                                free[i].clone(),
                                ab >= 2,
                                free[j].clone(),
                                ab % 2 == 1,
                            ));
                        }
                    }
                }
            }
        }
        Some(census)
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
        let (ma, mb) = (va.number, vb.number);
        if ma.0 != mb.0 {
            return Some(format!(
                "{} → {} changes the major version",
                va.name, vb.name
            ));
        }
        if mb > ma && mb.1 - ma.1 > self.hops.max_up {
            return Some(format!(
                "{} → {} is more than {} minor up",
                va.name, vb.name, self.hops.max_up
            ));
        }
        if mb < ma {
            if !self.hops.allow_downgrade {
                return Some(format!(
                    "{} → {} is a downgrade, which the space forbids",
                    va.name, vb.name
                ));
            }
            if ma.1 - mb.1 > self.hops.max_down {
                return Some(format!(
                    "{} → {} is more than {} minor down",
                    va.name, vb.name, self.hops.max_down
                ));
            }
        }
        None
    }

    /// Versions a transition from version `v` may go to (including `v`).
    pub fn reachable_versions(&self, v: usize) -> Vec<usize> {
        let from = self.versions[v].number;
        (0..self.versions.len())
            .filter(|&w| {
                let to = self.versions[w].number;
                to.0 == from.0
                    && if to > from {
                        to.1 - from.1 <= self.hops.max_up
                    } else if to < from {
                        self.hops.allow_downgrade && from.1 - to.1 <= self.hops.max_down
                    } else {
                        true
                    }
            })
            .collect()
    }

    /// What to install for `s`: the version and every gate's value.
    pub fn install(&self, s: &State) -> Install {
        Install {
            version: self.versions[s.version].name.clone(),
            feature_gates: s.gates.clone(),
            tunables: s
                .tunables
                .iter()
                .map(|(k, v)| {
                    let j = match v {
                        Value::Int(i) => serde_json::Value::from(*i),
                        Value::Str(x) => serde_json::Value::from(x.clone()),
                    };
                    (k.clone(), j)
                })
                .collect(),
        }
    }

    /// The state an observed install is in, when it is a point of this space: gates the
    /// install does not report take their defaults, tunables it does not report keep `fallback`'s.
    pub fn state_of(&self, i: &Install, fallback: &State) -> Option<State> {
        let v = self.versions.iter().position(|x| x.name == i.version)?;
        let mut s = self.defaults(v);
        for (g, on) in &i.feature_gates {
            if s.gates.contains_key(g) {
                s.gates.insert(g.clone(), *on);
            }
        }
        for (t, spec) in &self.tunables {
            let val = match (spec, i.tunables.get(t)) {
                (Tunable::Int { .. }, Some(j)) => j.as_i64().map(Value::Int),
                (Tunable::Enum { .. }, Some(j)) => j.as_str().map(|x| Value::Str(x.to_owned())),
                _ => None,
            }
            .or_else(|| fallback.tunables.get(t).cloned());
            if let Some(val) = val {
                s.tunables.insert(t.clone(), val);
            }
        }
        Some(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHIPPED: &str = include_str!("../spaces/agones.yaml");

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
    fn bad_spaces_list_every_problem_with_its_path() {
        let bad = r#"
versions:
  - version: 1.2
    gates: { Good: Beta, bad: Alpha, Weird: Gamma }
  - version: 1.1.0
    kubernetes: { min: x, max: "1.3" }
    gates: { Good: Stable }
  - version: 1.0.5
    gates: { Good: Beta }
hops: { max_up: 0, max_down: 0, allow_downgrade: false }
tunables:
  wait: { min: 10, max: 1 }
constraints:
  - IF gate:Good THEN gate:Nope
  - IF tunable:wait == fast THEN gate:Good
  - IF gate:Good THEN
"#;
        let e = Space::parse(bad, "bad.yaml").unwrap_err();
        let text = e.to_string();
        for want in [
            "versions[0].version: `1.2` is not MAJOR.MINOR.PATCH",
            "versions[0].gates.bad: a gate name",
            "versions[0].gates.Weird: unknown stage `Gamma`, expected Alpha, Beta or Stable",
            "versions[1].kubernetes.min: `x`",
            "versions[2].version: `1.0.5` must be newer than `1.1.0`",
            "versions[2].gates.Good: Stable in 1.1.0 but not in 1.0.5",
            "hops: max_up and max_down are both 0",
            "tunables.wait: min 10 is above max 1",
            "constraints[0]: col 19: unknown gate `Nope`",
            "constraints[1]: col 4: tunable `wait` is an integer, compared with a word",
            "constraints[2]: col 18: unexpected end of the constraint",
        ] {
            assert!(text.contains(want), "missing {want:?} in:\n{text}");
        }
        let e = Space::parse("versions: [\n  - {", "x.yaml").unwrap_err();
        assert!(e.problems[0].starts_with("x.yaml:"), "{e}");
        let e = Space::parse(
            "versions: []\nhops: {max_up: 1, max_down: 1, allow_downgrade: true}\nextra: 1\n",
            "y",
        )
        .unwrap_err();
        assert!(e.problems[0].contains("unknown field `extra`"), "{e}");
        let e = Space::parse(
            "versions: [ { version: 1.0.0, gates: { A: Alpha } } ]\nhops: {max_up: 1, max_down: 1, allow_downgrade: true}\nconstraints: [ \"gate:A AND NOT gate:A\" ]\n",
            "z",
        )
        .unwrap_err();
        assert!(e.problems[0].contains("no valid state"), "{e}");
    }

    #[test]
    fn structural_errors_are_all_reported_not_just_the_first() {
        let bad = r#"
versions:
  - version: 1.0.0
    gates: { A: Beta }
    colour: blue
  - version: 1.1.0
    gates: [ A ]
  - version: 1.2.0
    kubernetes: { min: "1.30" }
    gates: { A: Stable }
hops: { max_up: 1, max_down: 1, allow_downgrade: maybe }
tunables:
  wait: { min: 1, max: 5, values: [a] }
  level: { values: [info, "7", info] }
  ok: { min: 1, max: 2, step: 1 }
constraints:
  - gate:A
  - [ not, a, string ]
  - IF tunable:missing == 3 THEN gate:A
extra: true
"#;
        let e = Space::parse(bad, "bad.yaml").unwrap_err();
        let text = e.to_string();
        for want in [
            "versions[0].colour: unknown field `colour`, expected one of `version`, `kubernetes`, `gates`",
            "versions[1].gates: invalid type: sequence, expected a map",
            "versions[2].kubernetes: missing field `max`",
            "hops.allow_downgrade: invalid type: string \"maybe\", expected a boolean",
            "tunables.wait: give either `{min, max}` (an integer range) or `{values: [...]}` (an enum)",
            "tunables.level.values[1]: `7` is not a word",
            "tunables.level.values[2]: `info` is listed twice",
            "tunables.ok.step: unknown field `step`, expected one of `min`, `max`, `values`",
            "constraints[1]: invalid type: sequence, expected a string",
            "constraints[2]: col 4: unknown tunable `missing`",
            "extra: unknown field `extra`, expected one of versions, hops, tunables, constraints",
        ] {
            assert!(text.contains(want), "missing {want:?} in:\n{text}");
        }
        assert_eq!(e.problems.len(), 11, "{text}");

        let e = Space::parse("constraints: []\n", "empty.yaml").unwrap_err();
        assert_eq!(
            e.problems,
            [
                "versions: missing (a list of versions, oldest first)",
                "hops: missing (`{max_up, max_down, allow_downgrade}`)"
            ]
        );
        let e = Space::parse("versions: [\n  - {", "x.yaml").unwrap_err();
        assert_eq!(
            e.problems,
            ["x.yaml:2:3: did not find expected node content, while parsing a flow node"]
        );
        let e =
            Space::parse("versions:\n  - version: 1.0.0\n   gates: {}\n", "y.yaml").unwrap_err();
        assert!(e.problems[0].starts_with("y.yaml:3:"), "{e}");
    }

    #[test]
    fn the_census_counts_exactly() {
        // Brute force over every integer agrees with the census's classes of values.
        let text = r#"
versions:
  - { version: 1.0.0, gates: { A: Alpha, B: Beta, S: Stable } }
  - { version: 1.1.0, gates: { A: Alpha, B: Stable, C: Alpha } }
hops: { max_up: 1, max_down: 1, allow_downgrade: true }
tunables:
  wait: { min: 0, max: 40 }
  level: { values: [info, debug, trace] }
constraints:
  - IF gate:A THEN tunable:wait < 10 OR tunable:wait == 30
  - IF tunable:level == trace THEN NOT gate:B
  - IF version >= 1.1 THEN NOT (gate:A AND gate:C)
"#;
        let s = Space::parse(text, "t").unwrap();
        let c = s.census().unwrap();
        let mut brute = 0u128;
        for v in 0..2 {
            let free: Vec<String> = s.versions[v]
                .gates
                .iter()
                .filter(|(_, st)| **st != Stage::Stable)
                .map(|(g, _)| g.clone())
                .collect();
            for mask in 0..1u32 << free.len() {
                for wait in 0..=40 {
                    for level in ["info", "debug", "trace"] {
                        let mut st = s.defaults(v);
                        for (i, g) in free.iter().enumerate() {
                            st.gates.insert(g.clone(), mask >> i & 1 == 1);
                        }
                        st.tunables.insert("wait".into(), Value::Int(wait));
                        st.tunables.insert("level".into(), Value::Str(level.into()));
                        brute += u128::from(s.is_valid(&st));
                    }
                }
            }
        }
        assert_eq!(c.states, brute);
        assert_eq!(c.inhabited, [true, true]);
        // 1.1.0: A and C both on is never valid, each alone is.
        assert!(!c.gate_pairs.contains(&("A".into(), true, "C".into(), true)));
        assert!(
            c.gate_pairs
                .contains(&("A".into(), true, "C".into(), false))
        );
        assert!(c.gate_version.contains(&(1, "C".into(), true)));

        // The shipped space, by hand: free gates 13, 13, 13, 13, 11, 10; PlayerAllocationFilter
        // needs PlayerTracking (3 of 4), Example off, ProcessorAllocator on only with a wait of
        // at most 500 (401 of 901 waits), times 2 log levels.
        let shipped = Space::parse(SHIPPED, "agones.yaml").unwrap();
        let per = 3 * (901 + 401) * 2;
        let want = per * (4 * (1 << 9) + (1 << 7) + (1 << 6));
        assert_eq!(shipped.census().unwrap().states, want);
    }
}
