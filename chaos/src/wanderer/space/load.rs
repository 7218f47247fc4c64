//! Reading a configuration space file: each section on its own, so one bad entry does not hide
//! the problems of the others, and every problem reported with its path.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use upsoak_agones::release::{GATE_NAME_RULE, KubeRange, Stage, is_gate_name, parse_version_loose};
use upsoak_common::fnv::fnv1a64_hex;
use upsoak_common::problems::{Invalid, Problems};

use super::{ChartValue, Hops, Space, TunableSpec, TunableValue, ValueFormat, Version};
use crate::wanderer::constraint::{self, Expr, Op};

/// What a space file is called in errors.
const WHAT: &str = "configuration space";

/// The top-level keys of a space file; each section is read on its own so that one bad entry
/// does not hide the problems of the others.
const SECTIONS: [&str; 4] = ["versions", "hops", "tunables", "constraints"];

/// An integer tunable's `step` when the space gives none: every integer from `min` to `max`.
pub const DEFAULT_STEP: i64 = 1;

/// A tunable as written: `{min, max}`, `{min, max, step}` or `{values}`. Read as one struct
/// rather than an untagged enum, whose only error is "did not match any variant".
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTunable {
    /// The smallest value of an integer tunable.
    min: Option<i64>,
    /// The largest value of an integer tunable: `min` plus a multiple of `step`.
    max: Option<i64>,
    /// The distance between an integer tunable's values (default [`DEFAULT_STEP`]): the walk
    /// visits `min, min + step, …, max`, so values repeat (a baseline at the same value).
    step: Option<i64>,
    /// The words of an enum tunable.
    values: Option<Vec<String>>,
    /// Dotted paths into the Agones chart's values the helm applier writes it at.
    #[serde(default)]
    chart: Option<Vec<String>>,
    /// How it is written there (default: `int` for a range, `string` for an enum).
    #[serde(default)]
    format: Option<ValueFormat>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVersion {
    #[serde(deserialize_with = "string_or_number")]
    version: String,
    #[serde(default)]
    kubernetes: Option<KubeRange>,
    /// The images' tag when it is not the version (a dev build's `1.61.0-dev-abc123`).
    #[serde(default)]
    image_tag: Option<String>,
    /// The chart of this version when not the applier's: a local path or an `oci://` reference.
    #[serde(default)]
    chart: Option<String>,
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
    p: &mut Problems,
) -> Option<T> {
    serde_path_to_error::deserialize(value)
        .map_err(|e| {
            let inner = e.path().to_string();
            let at = match inner.as_str() {
                "." => path.to_owned(),
                i if i.starts_with('[') => format!("{path}{i}"),
                i => format!("{path}.{i}"),
            };
            p.push(at, e.inner().to_string());
        })
        .ok()
}

fn read_sections(value: serde_yaml::Value, p: &mut Problems) -> RawSections {
    let mut raw = RawSections {
        versions: Vec::new(),
        versions_given: false,
        versions_broken: false,
        hops: None,
        tunables: BTreeMap::new(),
        constraints: Vec::new(),
    };
    let serde_yaml::Value::Mapping(top) = value else {
        p.push(
            ".",
            format!("expected a mapping with keys {}", SECTIONS.join(", ")),
        );
        return raw;
    };
    for (k, v) in top {
        let key = match k {
            serde_yaml::Value::String(k) => k,
            other => {
                p.push(".", format!("a key must be text, got {other:?}"));
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
            other => p.push(
                other,
                format!(
                    "unknown field `{other}`, expected one of {}",
                    SECTIONS.join(", ")
                ),
            ),
        }
    }
    if !raw.versions_given {
        p.push("versions", "missing (a list of versions, oldest first)");
    }
    if raw.hops.is_none() && !p.any_under("hops") {
        p.push("hops", "missing (`{max_up, max_down, allow_downgrade}`)");
    }
    raw
}

impl Space {
    /// Reads and validates a space file.
    pub fn load(path: &Path) -> Result<Space, Invalid> {
        let name = path.display().to_string();
        let text = upsoak_common::yaml::read(path)
            .map_err(|message| Invalid::single(WHAT, &name, message))?;
        Space::parse(&text, &name)
    }

    /// Parses and validates YAML text; `name` names it in errors.
    pub fn parse(text: &str, name: &str) -> Result<Space, Invalid> {
        let fail = |problems: Problems| problems.invalid(WHAT, name);
        // Size, nesting and alias expansion are bounded before serde_yaml builds anything.
        upsoak_common::yaml::check(text, name).map_err(|e| {
            let mut p = Problems::new();
            p.push(e.at(), e.message);
            fail(p)
        })?;
        let value: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| {
            let msg = e.to_string();
            // The position goes first, as compilers print it; serde_yaml also says it in words.
            let mut p = Problems::new();
            match e.location() {
                Some(l) => {
                    let words = format!(" at line {} column {}", l.line(), l.column());
                    p.push(
                        format!("{name}:{}:{}", l.line(), l.column()),
                        msg.replacen(&words, "", 1),
                    );
                }
                None => p.push_message(msg),
            }
            fail(p)
        })?;
        let mut p = Problems::new();
        let raw = read_sections(value, &mut p);
        let mut versions = Vec::new();
        for (i, v) in &raw.versions {
            let number = constraint::parse_semver(&v.version);
            if number.is_none() {
                p.push(
                    format!("versions[{i}].version"),
                    format!(
                        "`{}` is not MAJOR.MINOR.PATCH (a SemVer pre-release such as 1.61.0-rc.1 may follow)",
                        v.version
                    ),
                );
            }
            let mut gates = BTreeMap::new();
            for (g, stage) in &v.gates {
                if !is_gate_name(g) {
                    p.push(format!("versions[{i}].gates.{g}"), GATE_NAME_RULE);
                }
                match stage.parse::<Stage>() {
                    Ok(st) => {
                        gates.insert(g.clone(), st);
                    }
                    Err(e) => p.push(format!("versions[{i}].gates.{g}"), e.to_string()),
                }
            }
            if let Some(k) = &v.kubernetes {
                for (field, val) in [("min", &k.min), ("max", &k.max)] {
                    if parse_version_loose(val).is_none() {
                        p.push(
                            format!("versions[{i}].kubernetes.{field}"),
                            format!("`{val}` is not a version like 1.34"),
                        );
                    }
                }
            }
            if let Some(tag) = &v.image_tag
                && (tag.is_empty()
                    || tag.len() > 128
                    || !tag
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)))
            {
                // distribution/reference's tag grammar: [\w][\w.-]{0,127}.
                p.push(
                    format!("versions[{i}].image_tag"),
                    format!(
                        "`{tag}` is not an image tag (letters, digits, `_`, `.`, `-`; at most 128)"
                    ),
                );
            }
            if let Some(chart) = &v.chart
                && chart.trim().is_empty()
            {
                p.push(
                    format!("versions[{i}].chart"),
                    "empty: a local chart path, an `oci://` reference, or REPO/NAME",
                );
            }
            versions.push(Version {
                image_tag: v.image_tag.clone(),
                chart: v.chart.clone(),
                index: *i,
                name: v.version.clone(),
                number: number.unwrap_or(semver::Version::new(0, 0, 0)),
                kubernetes: v.kubernetes.clone(),
                gates,
            });
        }
        if versions.is_empty() && raw.versions_given && !raw.versions_broken {
            p.push("versions", "at least one version is required");
        }
        for w in 1..versions.len() {
            if versions[w]
                .number
                .cmp_precedence(&versions[w - 1].number)
                .is_le()
            {
                p.push(
                    format!("versions[{}].version", versions[w].index),
                    format!(
                        "`{}` must be newer than `{}` (list versions oldest first, once each)",
                        versions[w].name,
                        versions[w - 1].name
                    ),
                );
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
                    p.push(
                        format!("versions[{}].gates.{g}", versions[w].index),
                        format!(
                            "Stable in {} but not in {}",
                            versions[w - 1].name,
                            versions[w].name
                        ),
                    );
                }
            }
        }
        if let Some(h) = raw.hops
            && h.max_up == 0
            && h.max_down == 0
        {
            p.push(
                "hops",
                "max_up and max_down are both 0: the version can never change",
            );
        }
        let mut tunables = BTreeMap::new();
        let mut chart = BTreeMap::new();
        for (t, spec) in &raw.tunables {
            let at = format!("tunables.{t}");
            if let Some(c) = chart_value(spec, &at, &mut p) {
                chart.insert(t.clone(), c);
            }
            match spec {
                RawTunable {
                    min: Some(min),
                    max: Some(max),
                    step,
                    values: None,
                    ..
                } => {
                    let step = step.unwrap_or(DEFAULT_STEP);
                    if min > max {
                        p.push(&at, format!("min {min} is above max {max}"));
                    } else if let Some(why) = step_problem(*min, *max, step) {
                        p.push(format!("{at}.step"), why);
                    }
                    tunables.insert(
                        t.clone(),
                        TunableSpec::Range {
                            min: *min,
                            max: *max,
                            step,
                        },
                    );
                }
                RawTunable {
                    min: None,
                    max: None,
                    step: Some(_),
                    values: Some(_),
                    ..
                } => p.push(
                    format!("{at}.step"),
                    "a step belongs to an integer range `{min, max, step}`, not to an enum",
                ),
                RawTunable {
                    min: None,
                    max: None,
                    step: None,
                    values: Some(values),
                    ..
                } => {
                    if values.is_empty() {
                        p.push(format!("{at}.values"), "at least one value is required");
                    }
                    for (k, v) in values.iter().enumerate() {
                        // A value that reads as a number would be compared as one in a constraint.
                        if v.is_empty()
                            || v.parse::<i64>().is_ok()
                            || !v
                                .chars()
                                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
                        {
                            p.push(format!("{at}.values[{k}]"), format!("`{v}` is not a word (letters, digits, `-`, `_`, `.`, not a number)"));
                        }
                        if values[..k].contains(v) {
                            p.push(
                                format!("{at}.values[{k}]"),
                                format!("`{v}` is listed twice"),
                            );
                        }
                    }
                    tunables.insert(
                        t.clone(),
                        TunableSpec::Enum {
                            values: values.clone(),
                        },
                    );
                }
                _ => p.push(
                    &at,
                    "give either `{min, max}` or `{min, max, step}` (an integer range) or `{values: [...]}` (an enum)",
                ),
            }
        }
        let mut constraints = Vec::new();
        for (i, c) in &raw.constraints {
            match constraint::parse(c) {
                Err(e) => p.push(format!("constraints[{i}]"), e.to_string()),
                Ok(expr) => {
                    let (mut gates, mut names) = (Vec::new(), Vec::new());
                    expr.names(&mut gates, &mut names);
                    let path = format!("constraints[{i}]");
                    let at = |word: String| {
                        constraint::column_of(c, &word)
                            .map(|col| format!("col {col}: "))
                            .unwrap_or_default()
                    };
                    for g in gates {
                        if !raw.versions_broken
                            && !versions.iter().any(|v| v.gates.contains_key(&g))
                        {
                            p.push(
                                &path,
                                format!("{}unknown gate `{g}`", at(format!("gate:{g}"))),
                            );
                        }
                    }
                    for (t, numeric) in names {
                        let here = at(format!("tunable:{t}"));
                        match tunables.get(&t) {
                            // An unknown tunable is only an error when the tunables parsed;
                            // a broken `tunables` entry is already reported.
                            None if !raw.tunables.contains_key(&t) => {
                                p.push(&path, format!("{here}unknown tunable `{t}`"))
                            }
                            Some(TunableSpec::Range { .. }) if !numeric => p.push(
                                &path,
                                format!("{here}tunable `{t}` is an integer, compared with a word"),
                            ),
                            Some(TunableSpec::Enum { .. }) if numeric => p.push(
                                &path,
                                format!("{here}tunable `{t}` is an enum, compared with a number"),
                            ),
                            _ => {}
                        }
                    }
                    // `==` or `!=` with a value between grid points is always false or true.
                    for (t, v) in equalities(&expr) {
                        if let Some(spec @ TunableSpec::Range { min, max, .. }) = tunables.get(&t)
                            && (min..=max).contains(&&v)
                            && let Some(why) = spec.problem(&TunableValue::Int(v))
                        {
                            let here = at(format!("tunable:{t}"));
                            p.push(
                                &path,
                                format!("{here}tunable `{t}` never equals {v}: {why}"),
                            );
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
            chart,
            constraints,
            hash: fnv1a64_hex(text.as_bytes()),
        };
        if space.start().is_none() {
            let mut p = Problems::new();
            p.push(
                "constraints",
                "no valid state of the oldest version exists (every combination breaks a constraint)",
            );
            return Err(fail(p));
        }
        Ok(space)
    }
}

/// The `tunable:NAME == N` and `!= N` comparisons of `e`, as (NAME, N).
fn equalities(e: &Expr) -> Vec<(String, i64)> {
    match e {
        Expr::TunableInt(t, Op::Eq | Op::Ne, v) => vec![(t.clone(), *v)],
        Expr::Not(a) => equalities(a),
        Expr::And(a, b) | Expr::Or(a, b) | Expr::Implies(a, b) => {
            let mut out = equalities(a);
            out.extend(equalities(b));
            out
        }
        Expr::Gate(_) | Expr::Version(..) | Expr::TunableInt(..) | Expr::TunableStr(..) => {
            Vec::new()
        }
    }
}

/// Why `step` cannot walk `min..=max` (`min <= max`), or `None`: it must be at least 1 and
/// reach `max` exactly, so the last value is the one written (the strict rule: a `max` the walk
/// never reaches would read as a value it visits).
fn step_problem(min: i64, max: i64, step: i64) -> Option<String> {
    if step < 1 {
        return Some(format!("must be at least 1, got {step}"));
    }
    let (span, st) = (i128::from(max) - i128::from(min), i128::from(step));
    if span % st == 0 {
        return None;
    }
    let below = i128::from(min) + span / st * st;
    let above = below + st;
    let max = i128::from(max);
    // `below` lies in min..max; `above` may pass i64::MAX, and then is no choice.
    let nearest = if i64::try_from(above).is_err() {
        below.to_string()
    } else if above - max < max - below {
        format!("{above} (or {below})")
    } else {
        format!("{below} (or {above})")
    };
    Some(format!(
        "max {max} is not min {min} plus a multiple of step {step}, so the walk would never reach it: the nearest valid max is {nearest}"
    ))
}

/// A tunable's `chart` and `format`, checked: paths are dotted words, and the format fits the
/// kind (an enum is written as a string; a range as an integer or a suffixed string).
fn chart_value(spec: &RawTunable, at: &str, p: &mut Problems) -> Option<ChartValue> {
    let enumerated = spec.values.is_some();
    let format = spec.format.unwrap_or(if enumerated {
        ValueFormat::String
    } else {
        ValueFormat::Int
    });
    if enumerated != (format == ValueFormat::String) {
        p.push(
            format!("{at}.format"),
            if enumerated {
                "an enum tunable is written as `string`"
            } else {
                "an integer tunable is written as `int`, `duration_ms`, `millicpu` or `mebibytes`"
            },
        );
    }
    let paths = match &spec.chart {
        None => {
            if spec.format.is_some() {
                p.push(format!("{at}.format"), "a format without `chart` paths");
            }
            return None;
        }
        Some(paths) => paths,
    };
    if paths.is_empty() {
        p.push(format!("{at}.chart"), "at least one path is required");
    }
    for (i, path) in paths.iter().enumerate() {
        let ok = path.split('.').all(|k| {
            !k.is_empty()
                && k.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-".contains(c))
        });
        if !ok {
            p.push(
                format!("{at}.chart[{i}]"),
                format!("`{path}` is not a dotted path like agones.allocator.logLevel"),
            );
        }
    }
    Some(ChartValue {
        paths: paths.clone(),
        format,
    })
}

#[cfg(test)]
mod tests;
