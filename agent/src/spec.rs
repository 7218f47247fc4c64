//! SLO specifications: groups evaluated on an interval, each SLO a PromQL expression with an
//! absolute objective and/or a criterion relative to a recorded baseline. Parsing is strict and
//! reports every problem with its path; every expression is parsed as PromQL.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::criteria::{Objective, Relative};

/// The spec file.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SpecFile {
    pub groups: Vec<Group>,
}

/// SLOs evaluated together on one interval.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Group {
    pub name: String,
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    pub slos: Vec<Slo>,
}

/// One SLO.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Slo {
    pub name: String,
    /// PromQL, an instant vector or scalar; each evaluation step gives one sample (the sum
    /// over series when several come back).
    pub expr: String,
    /// Absolute, e.g. `>= 0.999`.
    #[serde(default)]
    pub objective: Option<String>,
    /// Relative to the baseline, e.g. `<= +20%`, `>= -1%`, `<= +0.05`.
    #[serde(default)]
    pub baseline: Option<String>,
    /// How long a violation must last before the verdict is fail.
    #[serde(default, rename = "for", with = "humantime_serde")]
    pub for_: Option<Duration>,
    /// Which way is worse; inferred from the criteria when omitted.
    #[serde(default)]
    pub direction: Option<Direction>,
    /// The verdict when the query returns nothing: `inconclusive` (default), `warn` or `fail`;
    /// never `pass`.
    #[serde(default = "inconclusive")]
    pub on_no_data: Verdict,
    /// The verdict when the query fails: `inconclusive` (default), `warn` or `fail`.
    #[serde(default = "inconclusive")]
    pub on_error: Verdict,
    #[serde(default = "warning")]
    pub severity: Severity,
    /// Samples needed in a window before it is judged.
    #[serde(default = "default_min_samples")]
    pub min_samples: usize,
    #[serde(default)]
    pub description: String,
}

fn inconclusive() -> Verdict {
    Verdict::Inconclusive
}
fn warning() -> Severity {
    Severity::Warning
}
fn default_min_samples() -> usize {
    5
}

/// Which change of the value is bad.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    IncreaseIsBad,
    DecreaseIsBad,
    Either,
}

/// A verdict.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Inconclusive,
    Warn,
    Fail,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Warn => "warn",
            Verdict::Fail => "fail",
            Verdict::Inconclusive => "inconclusive",
        }
    }
    pub const ALL: [Verdict; 4] = [
        Verdict::Pass,
        Verdict::Warn,
        Verdict::Fail,
        Verdict::Inconclusive,
    ];
}

/// How loud a failed SLO is.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

/// A checked SLO: its criteria parsed.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckedSlo {
    pub group: String,
    pub spec: Slo,
    pub objective: Option<Objective>,
    pub relative: Option<Relative>,
    pub direction: Direction,
}

/// Every problem found in a spec file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid SLO specs `{source_name}` ({} problem{}):\n  {}", problems.len(), if problems.len() == 1 { "" } else { "s" }, problems.join("\n  "))]
pub struct SpecErrors {
    pub source_name: String,
    pub problems: Vec<String>,
}

fn valid_name(s: &str) -> bool {
    s.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Loaded and checked specs.
#[derive(Clone, Debug, PartialEq)]
pub struct Specs {
    pub file: SpecFile,
    pub slos: Vec<CheckedSlo>,
    /// FNV-1a 64 of the canonical JSON of the specs, for baselines to refer to.
    pub hash: String,
}

impl Specs {
    pub fn load(path: &Path) -> Result<Specs, SpecErrors> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| SpecErrors {
            source_name: name.clone(),
            problems: vec![format!("cannot read: {e}")],
        })?;
        Specs::parse(&text, &name)
    }

    pub fn parse(text: &str, name: &str) -> Result<Specs, SpecErrors> {
        let fail = |problems: Vec<String>| SpecErrors {
            source_name: name.to_owned(),
            problems,
        };
        let value: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| {
            let at = e
                .location()
                .map(|l| format!("{name}:{}:{}: ", l.line(), l.column()))
                .unwrap_or_default();
            fail(vec![format!("{at}{e}")])
        })?;
        let file: SpecFile = serde_path_to_error::deserialize(value)
            .map_err(|e| fail(vec![format!("{}: {}", e.path(), e.inner())]))?;
        let mut p = Vec::new();
        let mut slos = Vec::new();
        let mut groups = std::collections::BTreeSet::new();
        if file.groups.is_empty() {
            p.push("groups: at least one group is required".to_owned());
        }
        for (gi, g) in file.groups.iter().enumerate() {
            let at = format!("groups[{gi}]");
            if !valid_name(&g.name) {
                p.push(format!(
                    "{at}.name: `{}` must be letters, digits, `_` or `-`",
                    g.name
                ));
            }
            if !groups.insert(g.name.as_str()) {
                p.push(format!("{at}.name: `{}` is used twice", g.name));
            }
            if g.interval < Duration::from_secs(1) {
                p.push(format!("{at}.interval: must be at least 1s"));
            }
            let mut names = std::collections::BTreeSet::new();
            for (si, s) in g.slos.iter().enumerate() {
                let at = format!("{at}.slos[{si}]");
                if !valid_name(&s.name) {
                    p.push(format!(
                        "{at}.name: `{}` must be letters, digits, `_` or `-`",
                        s.name
                    ));
                }
                if !names.insert(s.name.as_str()) {
                    p.push(format!(
                        "{at}.name: `{}` is used twice in group `{}`",
                        s.name, g.name
                    ));
                }
                match promql_parser::parser::parse(&s.expr) {
                    Err(e) => p.push(format!("{at}.expr: {}", e.trim())),
                    Ok(expr) => {
                        use promql_parser::parser::value::ValueType;
                        match expr.value_type() {
                            ValueType::Vector | ValueType::Scalar => {}
                            other => p.push(format!(
                                "{at}.expr: evaluates to a {other}, an SLO needs an instant vector or a scalar"
                            )),
                        }
                    }
                }
                let objective = match s.objective.as_deref().map(Objective::parse) {
                    Some(Err(e)) => {
                        p.push(format!("{at}.objective: {e}"));
                        None
                    }
                    Some(Ok(o)) => Some(o),
                    None => None,
                };
                let relative = match s.baseline.as_deref().map(Relative::parse) {
                    Some(Err(e)) => {
                        p.push(format!("{at}.baseline: {e}"));
                        None
                    }
                    Some(Ok(r)) => Some(r),
                    None => None,
                };
                if s.objective.is_none() && s.baseline.is_none() {
                    p.push(format!(
                        "{at}: needs an objective, a baseline criterion, or both"
                    ));
                }
                if s.on_no_data == Verdict::Pass {
                    p.push(format!(
                        "{at}.on_no_data: cannot be pass: no data is never evidence of health"
                    ));
                }
                if s.on_error == Verdict::Pass {
                    p.push(format!(
                        "{at}.on_error: cannot be pass: a failed query is never evidence of health"
                    ));
                }
                if s.min_samples == 0 {
                    p.push(format!("{at}.min_samples: must be at least 1"));
                }
                let inferred = relative
                    .map(|r| r.cmp)
                    .or(objective.map(|o| o.cmp))
                    .and_then(|c| c.higher_is_bad())
                    .map(|h| {
                        if h {
                            Direction::IncreaseIsBad
                        } else {
                            Direction::DecreaseIsBad
                        }
                    })
                    .unwrap_or(Direction::Either);
                slos.push(CheckedSlo {
                    group: g.name.clone(),
                    spec: s.clone(),
                    objective,
                    relative,
                    direction: s.direction.unwrap_or(inferred),
                });
            }
        }
        if !p.is_empty() {
            return Err(fail(p));
        }
        let canonical = serde_json::to_string(&file).unwrap_or_default();
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in canonical.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        Ok(Specs {
            file,
            slos,
            hash: format!("{h:016x}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_specs_load() {
        let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../rules/slos.yaml");
        let specs = Specs::load(&path).unwrap();
        assert!(specs.slos.len() >= 8, "{}", specs.slos.len());
        for s in &specs.slos {
            assert_ne!(s.spec.on_no_data, Verdict::Pass);
        }
    }

    #[test]
    fn every_problem_has_its_path() {
        let bad = r#"
groups:
  - name: core
    interval: 15s
    slos:
      - name: ok
        expr: sum(rate(x_total[1m]))
        objective: ">= 1"
      - name: ok
        expr: sum(rate(x_total[1m])
        objective: "0.99"
      - name: ranged
        expr: x_total[5m]
        baseline: "<= 20%"
        on_no_data: pass
      - name: nothing
        expr: up
  - name: core
    interval: 100ms
    slos: []
"#;
        let e = Specs::parse(bad, "s.yaml").unwrap_err().to_string();
        for want in [
            "groups[0].slos[1].name: `ok` is used twice in group `core`",
            "groups[0].slos[1].expr:",
            "groups[0].slos[1].objective: `0.99` must start with",
            "groups[0].slos[2].expr: evaluates to a matrix",
            "groups[0].slos[2].baseline: `<= 20%`: a baseline criterion is a signed change",
            "groups[0].slos[2].on_no_data: cannot be pass",
            "groups[0].slos[3]: needs an objective, a baseline criterion, or both",
            "groups[1].name: `core` is used twice",
            "groups[1].interval: must be at least 1s",
        ] {
            assert!(e.contains(want), "missing {want:?} in:\n{e}");
        }
        let e = Specs::parse(
            "groups: [ { name: a, interval: 15s, slos: [], extra: 1 } ]",
            "x",
        )
        .unwrap_err();
        assert!(e.problems[0].contains("unknown field `extra`"), "{e}");
        let e = Specs::parse("groups: [\n  {", "y.yaml").unwrap_err();
        assert!(e.problems[0].starts_with("y.yaml:"), "{e}");
    }

    #[test]
    fn direction_is_inferred_from_the_criteria() {
        let s = Specs::parse(
            "groups: [ { name: g, interval: 15s, slos: [ { name: lat, expr: up, baseline: \"<= +20%\" }, { name: ok, expr: up, objective: \">= 0.99\" } ] } ]",
            "d",
        )
        .unwrap();
        assert_eq!(s.slos[0].direction, Direction::IncreaseIsBad);
        assert_eq!(s.slos[1].direction, Direction::DecreaseIsBad);
        let again = Specs::parse(
            "groups: [ { name: g, interval: 15s, slos: [ { name: lat, expr: up, baseline: \"<= +20%\" }, { name: ok, expr: up, objective: \">= 0.99\" } ] } ]",
            "other name",
        )
        .unwrap();
        assert_eq!(s.hash, again.hash);
    }
}
