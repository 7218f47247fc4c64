//! SLO specifications: groups evaluated on an interval, each SLO a PromQL expression with an
//! absolute objective and/or a criterion relative to a recorded baseline. Parsing is strict and
//! reports every problem with its path; every expression is parsed as PromQL.
//!
//! The file, field by field (`?` marks an optional field, with its default):
//!
//! ```yaml
//! vars:                            # ? names substituted as `${name}` in every expression
//!   controller_job: agones-controller-metrics-service
//! groups:                          # at least one
//!   - name: allocation             # [A-Za-z_][A-Za-z0-9_-]*, unique in the file
//!     interval: 15s                # evaluation period, at least 1s (15s, 5m, 1h, 1h30m)
//!     slos:                        # at least one
//!       - name: allocation-success # same rule as group names, unique in its group
//!         expr: sum(rate(x{result="ok"}[1m])) / sum(rate(x[1m]))   # instant vector or scalar
//!         objective: ">= 0.95"     # ? absolute (see criteria); quote it: `>` starts a YAML block
//!         baseline: ">= -2%"       # ? relative to the recorded baseline; one of the two required
//!         for: 1m                  # ? 0s: how long a violation lasts before it counts
//!         direction: decrease_is_bad  # ? inferred from the criteria, else `either`
//!         on_no_data: inconclusive # ? inconclusive | warn | fail; never pass
//!         on_error: inconclusive   # ? inconclusive | warn | fail; never pass
//!         severity: warning        # ? info | warning | critical
//!         min_samples: 5           # ? samples a window needs before it is judged
//!         description: ""          # ? free text for reports and alerts
//!         window: steady           # ? steady | disruption (see below)
//!         min_transitions: 5       # ? disruption SLOs: earlier transitions before `baseline` counts
//!         judged_after: 6h         # ? steady SLOs: only windows starting this long after the transition
//!         baseline_by: [tunable:allocationBatchWaitTime]  # ? baseline only at the same values
//!         budget:                  # ? an error-budget objective on a good/total ratio
//!           good: x{result="ok"}   #   counter selector of the good events
//!           total: x               #   counter selector of every event
//!           target: 0.995          #   share of events that must be good, in (0, 1)
//! ```
//!
//! `window` says which window of a transition the SLO is judged on. `steady` (the default): the
//! judge window after the settle period, step by step, against the recorded baseline.
//! `disruption`: the upgrade itself, from the moment the apply started to the end of the settle
//! period, judged once (module `disruption`): the expression is evaluated at the settle end
//! with the reserved placeholder `${window}` replaced by the window's length as a PromQL
//! duration (`95s`), must give exactly one series, and its `baseline` criterion is judged
//! against the median of the earlier judged transitions once `min_transitions` of them exist.
//! `${window}` is refused in steady SLOs, and `for` and `min_samples` in disruption SLOs.
//!
//! `baseline_by` lists configuration keys of the Wanderer (`version`, `tunable:NAME`,
//! `gate:NAME`, as its space's constraints write them) that move the SLO by design: the window
//! is then compared only with a baseline taken at the same values of those keys (the recorded
//! one, else the latest earlier passing window at them; module `baseline_by`), else judged as
//! without a baseline. Only steady SLOs with a `baseline` criterion or a `budget` take it.
//!
//! `vars:` holds the user's stack in one place (job names, selectors): every `${name}` in an
//! `expr`, `budget.good` or `budget.total` is replaced by its value before the PromQL is
//! checked; a reference to a name not in `vars` is an error at its path. `${window}` is
//! reserved (the length of the disruption window, filled in at evaluation time): it is left as
//! written, checked as `5m`, and `vars` may not define it.
//!
//! An SLO with a `budget` is judged by how fast its window burns the error budget `1 − target`
//! (see `judge::judge_budget`); it needs no `expr` (the good/total ratio over `1m` is derived)
//! and takes no `objective` or `baseline` criterion: the budget is its objective, and its
//! baseline is kept for the significance test.
//!
//! `direction` says which change of the value is bad: `increase_is_bad` (latency, error rates,
//! memory), `decrease_is_bad` (success ratios, ready replicas) or `either` (a value that must hold
//! still). Only a shift the bad way counts against an SLO; an improvement never fails it.
//!
//! Names may hold `-` because they are label values and baseline keys, not metric names; the
//! recording rules built from them turn `-` into `_`, so two names that differ only there are
//! rejected.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_yaml::{Mapping, Value};

use upsoak_common::fnv::fnv1a64_hex;
use upsoak_common::problems::{Invalid, Problem, Problems};

pub use crate::budget::Budget;
use crate::criteria::{Objective, Relative};
use crate::vars::kind;

mod baseline_by;
mod check_vars;
mod promql;
mod verdict;
pub use promql::{MAX_PROMQL_BYTES, MAX_PROMQL_NESTING, parse_promql};
pub use verdict::{Direction, Severity, Verdict};

/// The spec file.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SpecFile {
    /// Values substituted for `${name}` in every expression (job names, selectors).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub vars: BTreeMap<String, String>,
    /// Groups of SLOs, each evaluated on its own interval.
    pub groups: Vec<Group>,
}

/// SLOs evaluated together on one interval.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Group {
    /// Unique in the file.
    pub name: String,
    /// Evaluation period, e.g. `15s`.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// The SLOs of the group.
    pub slos: Vec<Slo>,
}

/// One SLO.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Slo {
    /// Unique in its group.
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
    /// How loud a failure is: `info`, `warning` (default) or `critical`.
    #[serde(default = "warning")]
    pub severity: Severity,
    /// Samples needed in a window before it is judged.
    #[serde(default = "default_min_samples")]
    pub min_samples: usize,
    /// Free text for reports and alerts.
    #[serde(default)]
    pub description: String,
    /// An error-budget objective on a good/total ratio, judged by burn rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<Budget>,
    /// The transition window the SLO is judged on: `steady` (default) or `disruption`.
    #[serde(default, skip_serializing_if = "SloWindow::is_steady")]
    pub window: SloWindow,
    /// Disruption SLOs: judged transitions needed before `baseline` is judged against their
    /// median (default [`DEFAULT_MIN_TRANSITIONS`]); until then only the objective counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_transitions: Option<usize>,
    /// Steady SLOs over long ranges (a 6 h memory slope): judged only on windows (the first
    /// one, or a chunk) that start at least this long after the transition went live, so their
    /// range holds one configuration past its restart; earlier windows leave them out.
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub judged_after: Option<Duration>,
    /// Configuration keys (`version`, `tunable:NAME`, `gate:NAME`) a baseline must share with
    /// the judged window; empty (default): the recorded baseline, whatever its configuration.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub baseline_by: Vec<String>,
}

/// Which window of a transition an SLO is judged on.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SloWindow {
    /// After the settle period, over the judge window, against the recorded baseline.
    #[default]
    Steady,
    /// From the apply's start to the settle end, once, against earlier transitions.
    Disruption,
}

impl SloWindow {
    pub fn is_steady(&self) -> bool {
        *self == SloWindow::Steady
    }
    pub fn as_str(self) -> &'static str {
        match self {
            SloWindow::Steady => "steady",
            SloWindow::Disruption => "disruption",
        }
    }
}

/// The placeholder a disruption SLO's expression uses for its window's length.
pub const WINDOW_PLACEHOLDER: &str = "${window}";

/// What [`WINDOW_PLACEHOLDER`] stands for when an expression is parsed at load time.
pub const WINDOW_PLACEHOLDER_CHECK: &str = "5m";

/// Earlier judged transitions a disruption SLO's `baseline` needs when `min_transitions` is
/// not given: a median of five is not moved by one odd transition.
pub const DEFAULT_MIN_TRANSITIONS: usize = 5;

fn inconclusive() -> Verdict {
    Verdict::Inconclusive
}
fn warning() -> Severity {
    Severity::Warning
}
/// Five samples: below that Mann–Whitney cannot reach p < 0.05 against any baseline size.
pub const DEFAULT_MIN_SAMPLES: usize = 5;
fn default_min_samples() -> usize {
    DEFAULT_MIN_SAMPLES
}

/// A checked SLO: its criteria parsed.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckedSlo {
    pub group: String,
    pub spec: Slo,
    pub objective: Option<Objective>,
    pub relative: Option<Relative>,
    /// As written, or inferred from the criteria.
    pub direction: Direction,
    /// `baseline_by`, parsed.
    pub baseline_by: Vec<crate::wanderer::ConfigKey>,
}

/// Every problem of a spec file, each at a path such as `groups[1].slos[3].expr` (a file
/// position `f.yaml:3:7` for YAML syntax errors), under the headline
/// `invalid SLO specs `f.yaml` (N problems):`.
pub type SpecErrors = Invalid;

/// What [`SpecErrors`] call the input.
const WHAT: &str = "SLO specs";

/// Loaded and checked specs.
#[derive(Clone, Debug, PartialEq)]
pub struct Specs {
    pub file: SpecFile,
    pub slos: Vec<CheckedSlo>,
    /// FNV-1a 64 (hex) of the canonical JSON of the specs, defaults filled in, so that the same
    /// specs written differently (flow or block YAML, defaults omitted) hash the same.
    pub hash: String,
}

impl Specs {
    /// Reads and checks a spec file.
    pub fn load(path: &Path) -> Result<Specs, SpecErrors> {
        let name = path.display().to_string();
        let text = upsoak_common::yaml::read(path).map_err(|message| {
            Problems::from(Problem {
                path: name.clone(),
                message,
            })
            .invalid(WHAT, name.clone())
        })?;
        Specs::parse(&text, &name)
    }

    /// Checks spec text; `name` names it in errors.
    pub fn parse(text: &str, name: &str) -> Result<Specs, SpecErrors> {
        let mut c = Checker::default();
        let file = parse_yaml(text, name).and_then(|root| c.file(&root));
        let file = match file {
            Ok(file) if c.problems.is_empty() => file,
            Ok(_) => return Err(Problems::from(c.problems).invalid(WHAT, name)),
            Err(p) => return Err(Problems::from(p).invalid(WHAT, name)),
        };
        let hash = fnv1a64_hex(canonical_json(&file).as_bytes());
        Ok(Specs {
            slos: c.checked,
            file,
            hash,
        })
    }
}

/// The YAML document, or the syntax error at its line and column.
fn parse_yaml(text: &str, name: &str) -> Result<Value, Problem> {
    // Size, nesting and alias expansion are bounded before serde_yaml builds anything.
    upsoak_common::yaml::check(text, name).map_err(|e| Problem {
        path: e.at(),
        message: e.message,
    })?;
    let mut root: Value = serde_yaml::from_str(text).map_err(|e| {
        let (path, hint) = match e.location() {
            Some(l) => {
                let line = text.lines().nth(l.line().saturating_sub(1)).unwrap_or("");
                // `objective: >= 1` is the likely mistake: `>` opens a folded block scalar.
                let hint = if line.contains(": >") {
                    "; hint: quote criteria that start with `>`, e.g. objective: \">= 0.999\""
                } else {
                    ""
                };
                (format!("{name}:{}:{}", l.line(), l.column()), hint)
            }
            None => (name.to_owned(), ""),
        };
        Problem {
            path,
            message: format!("YAML syntax error: {e}{hint}"),
        }
    })?;
    // Merge keys (`<<: *defaults`) let a file share SLO defaults between entries.
    root.apply_merge().map_err(|e| Problem {
        path: name.to_owned(),
        message: format!("YAML merge key: {e}"),
    })?;
    Ok(root)
}

/// The spec file as JSON with a fixed field order (struct order) and defaults filled in.
fn canonical_json(file: &SpecFile) -> String {
    // Serializing plain structs of strings, numbers and durations cannot fail.
    serde_json::to_string(file).unwrap_or_default()
}

/// `[A-Za-z_][A-Za-z0-9_-]*`, at most 64 characters.
fn name_problem(s: &str) -> Option<String> {
    let first_ok = s
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    let rest_ok = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if s.is_empty() {
        Some("must not be empty".to_owned())
    } else if !first_ok || !rest_ok {
        Some(format!(
            "`{s}` must start with a letter or `_` and hold only letters, digits, `_` or `-`"
        ))
    } else if s.len() > 64 {
        Some(format!("`{s}` is longer than 64 characters"))
    } else {
        None
    }
}

const FILE_FIELDS: &[&str] = &["vars", "groups"];
const BUDGET_FIELDS: &[&str] = &["good", "total", "target"];
const GROUP_FIELDS: &[&str] = &["name", "interval", "slos"];
const SLO_FIELDS: &[&str] = &[
    "name",
    "expr",
    "objective",
    "baseline",
    "for",
    "direction",
    "on_no_data",
    "on_error",
    "severity",
    "min_samples",
    "description",
    "budget",
    "window",
    "min_transitions",
    "judged_after",
    "baseline_by",
];

/// Walks the YAML tree field by field, so that one bad field does not hide the others.
#[derive(Default)]
struct Checker {
    problems: Vec<Problem>,
    checked: Vec<CheckedSlo>,
    vars: BTreeMap<String, String>,
}

impl Checker {
    fn problem(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem {
            path: path.into(),
            message: message.into(),
        });
    }

    /// The mapping at `path`, with every unknown key reported.
    fn mapping<'v>(&mut self, v: &'v Value, path: &str, fields: &[&str]) -> Option<&'v Mapping> {
        let Value::Mapping(m) = v else {
            self.problem(path, format!("expected a mapping, found {}", kind(v)));
            return None;
        };
        for key in m.keys() {
            match key.as_str() {
                Some(k) if fields.contains(&k) => {}
                Some(k) => self.problem(
                    if path.is_empty() {
                        k.to_owned()
                    } else {
                        format!("{path}.{k}")
                    },
                    format!("unknown field `{k}`, expected one of {}", fields.join(", ")),
                ),
                None => self.problem(path, format!("a key is {}, not a string", kind(key))),
            }
        }
        Some(m)
    }

    /// A field that may be absent (or null).
    fn optional<T: DeserializeOwned>(&mut self, m: &Mapping, path: &str, key: &str) -> Option<T> {
        match m.get(key) {
            None | Some(Value::Null) => None,
            Some(v) => match serde_yaml::from_value(v.clone()) {
                Ok(t) => Some(t),
                Err(e) => {
                    self.problem(format!("{path}.{key}"), e.to_string());
                    None
                }
            },
        }
    }

    /// A field that must be present.
    fn required<T: DeserializeOwned>(&mut self, m: &Mapping, path: &str, key: &str) -> Option<T> {
        if matches!(m.get(key), None | Some(Value::Null)) {
            self.problem(format!("{path}.{key}"), "missing (required)");
            return None;
        }
        self.optional(m, path, key)
    }

    /// A duration such as `15s`, `5m`, `1h30m`.
    fn duration(&mut self, m: &Mapping, path: &str, key: &str) -> Option<Duration> {
        let at = format!("{path}.{key}");
        match m.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => match humantime::parse_duration(s.trim()) {
                // The flags' bound: a typo in a unit is refused, not waited on.
                Ok(d) if d > crate::cli::monitor::MAX_DURATION => {
                    self.problem(at, format!("{s:?} is longer than 365 days"));
                    None
                }
                Ok(d) => Some(d),
                Err(e) => {
                    self.problem(at, format!("invalid duration {s:?}: {e}"));
                    None
                }
            },
            Some(Value::Number(n)) => {
                self.problem(
                    at,
                    format!("invalid duration {n}: give a unit, e.g. \"{n}s\" or \"{n}m\""),
                );
                None
            }
            Some(v) => {
                self.problem(
                    at,
                    format!(
                        "invalid duration: expected a string like \"15s\", found {}",
                        kind(v)
                    ),
                );
                None
            }
        }
    }

    fn file(&mut self, root: &Value) -> Result<SpecFile, Problem> {
        let Some(m) = self.mapping(root, "", FILE_FIELDS) else {
            return Err(Problem {
                path: "(top level)".to_owned(),
                message: format!("expected a mapping with `groups`, found {}", kind(root)),
            });
        };
        self.vars(m.get("vars"));
        let mut groups = Vec::new();
        match m.get("groups") {
            None | Some(Value::Null) => self.problem("groups", "missing (required)"),
            Some(Value::Sequence(gs)) if gs.is_empty() => {
                self.problem("groups", "at least one group is required");
            }
            Some(Value::Sequence(gs)) => {
                let mut names: BTreeMap<String, usize> = BTreeMap::new();
                for (gi, g) in gs.iter().enumerate() {
                    if let Some(g) = self.group(g, gi, &mut names) {
                        groups.push(g);
                    }
                }
            }
            Some(v) => self.problem("groups", format!("expected a list, found {}", kind(v))),
        }
        Ok(SpecFile {
            vars: self.vars.clone(),
            groups,
        })
    }

    /// Checks a name against the naming rule and earlier names in its scope (keyed by the
    /// recording-rule form, where `-` becomes `_`).
    fn name(
        &mut self,
        name: &str,
        at: &str,
        seen: &mut BTreeMap<String, usize>,
        i: usize,
        of: &str,
    ) {
        if let Some(p) = name_problem(name) {
            self.problem(at, p);
            return;
        }
        let key = name.replace('-', "_");
        if let Some(first) = seen.get(&key) {
            self.problem(
                at,
                format!("`{name}` is already used by {of}[{first}] (names are compared with `-` read as `_`)"),
            );
        } else {
            seen.insert(key, i);
        }
    }

    fn group(
        &mut self,
        v: &Value,
        gi: usize,
        names: &mut BTreeMap<String, usize>,
    ) -> Option<Group> {
        let at = format!("groups[{gi}]");
        let m = self.mapping(v, &at, GROUP_FIELDS)?;
        let name: Option<String> = self.required(m, &at, "name");
        if let Some(n) = &name {
            self.name(n, &format!("{at}.name"), names, gi, "groups");
        }
        if !m.contains_key("interval") {
            self.problem(format!("{at}.interval"), "missing (required)");
        }
        let interval = self.duration(m, &at, "interval");
        if interval.is_some_and(|d| d < Duration::from_secs(1)) {
            self.problem(format!("{at}.interval"), "must be at least 1s");
        }
        let mut slos = Vec::new();
        match m.get("slos") {
            None | Some(Value::Null) => self.problem(format!("{at}.slos"), "missing (required)"),
            Some(Value::Sequence(ss)) if ss.is_empty() => {
                self.problem(format!("{at}.slos"), "a group needs at least one SLO");
            }
            Some(Value::Sequence(ss)) => {
                let mut seen = BTreeMap::new();
                let group = name.clone().unwrap_or_default();
                for (si, s) in ss.iter().enumerate() {
                    if let Some(s) = self.slo(s, &format!("{at}.slos[{si}]"), si, &mut seen, &group)
                    {
                        slos.push(s);
                    }
                }
            }
            Some(v) => self.problem(
                format!("{at}.slos"),
                format!("expected a list, found {}", kind(v)),
            ),
        }
        Some(Group {
            name: name?,
            interval: interval?,
            slos,
        })
    }

    fn slo(
        &mut self,
        v: &Value,
        at: &str,
        si: usize,
        seen: &mut BTreeMap<String, usize>,
        group: &str,
    ) -> Option<Slo> {
        let m = self.mapping(v, at, SLO_FIELDS)?;
        let name: Option<String> = self.required(m, at, "name");
        if let Some(n) = &name {
            let scope = format!("{}.slos", at.rsplit_once(".slos").map_or(at, |(g, _)| g));
            self.name(n, &format!("{at}.name"), seen, si, &scope);
        }
        let window: SloWindow = self.optional(m, at, "window").unwrap_or_default();
        let budget = self.budget(m, at);
        let expr: Option<String> = if budget.is_some() {
            self.optional(m, at, "expr")
        } else {
            self.required(m, at, "expr")
        };
        let expr = expr
            .map(|e| self.substitute(&e, &format!("{at}.expr")))
            .or_else(|| budget.as_ref().map(|b| b.ratio_expr("1m")));
        if let Some(e) = &expr {
            self.window_fields(m, at, window, e);
        }
        // A derived expression is as good as the budget's selectors, checked there.
        if let Some(e) = expr.as_ref().filter(|_| m.contains_key("expr")) {
            self.expr(e, &format!("{at}.expr"));
        }
        let min_transitions: Option<usize> = self.optional(m, at, "min_transitions");
        let objective_text: Option<String> = self.optional(m, at, "objective");
        let objective = objective_text
            .as_deref()
            .and_then(|t| match Objective::parse(t) {
                Ok(o) => Some(o),
                Err(e) => {
                    self.problem(format!("{at}.objective"), e.to_string());
                    None
                }
            });
        let baseline_text: Option<String> = self.optional(m, at, "baseline");
        let relative = baseline_text
            .as_deref()
            .and_then(|t| match Relative::parse(t) {
                Ok(r) => Some(r),
                Err(e) => {
                    self.problem(format!("{at}.baseline"), e.to_string());
                    None
                }
            });
        if m.contains_key("budget") {
            for k in ["objective", "baseline", "for"] {
                if m.contains_key(k) {
                    self.problem(
                        format!("{at}.{k}"),
                        format!("an SLO with a `budget` takes no `{k}`: the budget's target is its objective, judged by burn rate"),
                    );
                }
            }
        } else if !m.contains_key("objective") && !m.contains_key("baseline") {
            self.problem(
                at,
                "needs an `objective`, a `baseline` criterion, or both (or a `budget`): an SLO with none can never fail",
            );
        }
        let for_ = self.duration(m, at, "for");
        let direction: Option<Direction> = self.optional(m, at, "direction");
        let on_no_data: Verdict = self
            .optional(m, at, "on_no_data")
            .unwrap_or(Verdict::Inconclusive);
        if on_no_data == Verdict::Pass {
            self.problem(
                format!("{at}.on_no_data"),
                "cannot be `pass`: no data is never evidence of health (use inconclusive, warn or fail)",
            );
        }
        let on_error: Verdict = self
            .optional(m, at, "on_error")
            .unwrap_or(Verdict::Inconclusive);
        if on_error == Verdict::Pass {
            self.problem(
                format!("{at}.on_error"),
                "cannot be `pass`: a failed query is never evidence of health (use inconclusive, warn or fail)",
            );
        }
        let severity: Severity = self
            .optional(m, at, "severity")
            .unwrap_or(Severity::Warning);
        let min_samples: usize = self
            .optional(m, at, "min_samples")
            .unwrap_or(DEFAULT_MIN_SAMPLES);
        if min_samples == 0 {
            self.problem(format!("{at}.min_samples"), "must be at least 1");
        }
        let description: String = self.optional(m, at, "description").unwrap_or_default();
        let judged_after = self.duration(m, at, "judged_after");
        if judged_after.is_some() && !window.is_steady() {
            self.problem(format!("{at}.judged_after"), "only steady SLOs take it");
        }
        let (baseline_by, by_keys) = self.baseline_by(m, at, window);
        let slo = Slo {
            name: name?,
            expr: expr?,
            objective: objective_text,
            baseline: baseline_text,
            for_,
            direction,
            on_no_data,
            on_error,
            severity,
            min_samples,
            description,
            budget: budget.clone(),
            window,
            min_transitions,
            judged_after,
            baseline_by,
        };
        // The criterion that sets the bad way: the relative one, else the objective; `==`
        // says nothing about it.
        let inferred = relative
            .map(|r| r.cmp)
            .or(objective.map(|o| o.cmp))
            .and_then(|c| c.higher_is_bad())
            .or(budget.as_ref().map(|_| false))
            .map_or(Direction::Either, |higher| {
                if higher {
                    Direction::IncreaseIsBad
                } else {
                    Direction::DecreaseIsBad
                }
            });
        self.checked.push(CheckedSlo {
            group: group.to_owned(),
            spec: slo.clone(),
            objective,
            relative,
            direction: direction.unwrap_or(inferred),
            baseline_by: by_keys,
        });
        Some(slo)
    }

    /// The fields that only fit one kind of window: `${window}` and `min_transitions` need a
    /// disruption SLO; `for` and `min_samples` (per-step notions) a steady one.
    fn window_fields(&mut self, m: &Mapping, at: &str, window: SloWindow, expr: &str) {
        let misplaced: &[(&str, bool, &str)] = match window {
            SloWindow::Steady => &[
                (
                    "expr",
                    expr.contains(WINDOW_PLACEHOLDER),
                    "`${window}` is only defined for `window: disruption` SLOs",
                ),
                (
                    "min_transitions",
                    m.contains_key("min_transitions"),
                    "only `window: disruption` SLOs have a baseline of earlier transitions",
                ),
            ],
            SloWindow::Disruption => &[
                (
                    "for",
                    m.contains_key("for"),
                    "a disruption SLO is judged once over its window, so `for` has no meaning",
                ),
                (
                    "min_samples",
                    m.contains_key("min_samples"),
                    "a disruption SLO is one number per transition; use `min_transitions`",
                ),
            ],
        };
        for (key, bad, why) in misplaced {
            if *bad {
                self.problem(format!("{at}.{key}"), *why);
            }
        }
        if let Some(Value::Number(n)) = m.get("min_transitions")
            && n.as_u64() == Some(0)
        {
            self.problem(format!("{at}.min_transitions"), "must be at least 1");
        }
    }

    /// The expression parses as PromQL and gives one value per step.
    fn expr(&mut self, expr: &str, at: &str) {
        use promql_parser::parser::value::ValueType;
        if expr.trim().is_empty() {
            self.problem(at, "empty expression");
            return;
        }
        let checked = expr.replace(WINDOW_PLACEHOLDER, WINDOW_PLACEHOLDER_CHECK);
        match parse_promql(&checked) {
            Err(e) => self.problem(at, format!("PromQL parse error: {}", e.trim())),
            Ok(parsed) => match parsed.value_type() {
                ValueType::Vector | ValueType::Scalar => {}
                ValueType::Matrix => self.problem(
                    at,
                    "evaluates to a range vector; an SLO needs an instant vector or a scalar (wrap it in rate(), avg_over_time(), …)",
                ),
                ValueType::String => self.problem(
                    at,
                    "evaluates to a string; an SLO needs an instant vector or a scalar",
                ),
            },
        }
    }
}
