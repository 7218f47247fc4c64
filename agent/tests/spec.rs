//! The SLO spec loader: every problem reported, each at its exact path; the default specs load.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use upsoak_agent::criteria::Cmp;
use upsoak_agent::spec::{Direction, Severity, Specs, Verdict};

/// The problems of `text` as `path: message` lines.
fn problems(text: &str) -> Vec<String> {
    Specs::parse(text, "t.yaml")
        .unwrap_err()
        .problems
        .iter()
        .map(ToString::to_string)
        .collect()
}

/// `text` has exactly these problems (each given as a prefix of its line), in this order.
fn assert_problems(text: &str, want: &[&str]) {
    let got = problems(text);
    assert_eq!(got.len(), want.len(), "got:\n{}", got.join("\n"));
    for (g, w) in got.iter().zip(want) {
        assert!(
            g.starts_with(w),
            "want {w:?}\n got {g:?}\nall:\n{}",
            got.join("\n")
        );
    }
}

/// A one-SLO file with `fields` spliced into the SLO.
fn one(fields: &str) -> String {
    format!("groups:\n  - name: g\n    interval: 15s\n    slos:\n      - name: s\n{fields}")
}

#[test]
fn the_default_specs_load_and_cover_the_issue() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../rules/slos.yaml");
    let specs = Specs::load(&path).unwrap();
    let names: Vec<String> = specs
        .slos
        .iter()
        .map(|s| format!("{}/{}", s.group, s.spec.name))
        .collect();
    for want in [
        "control-plane/controller-ready",
        "control-plane/extensions-ready",
        "control-plane/allocator-ready",
        "control-plane/controller-scraped",
        "control-plane/extensions-scraped",
        "control-plane/allocator-scraped",
        "control-plane/upsoak-scraped",
        "fleets/fleet-converged",
        "fleets/gameservers-ready-when-demanded",
        "fleets/gameservers-failing",
        "fleets/gameservers-unhealthy",
        "allocation/allocation-success",
        "allocation/allocation-latency-p99",
        "allocation/allocation-latency-mean",
        "sessions/session-success",
        "transitions/transition-success",
        "allocation/allocations-dropped",
        "control-plane/controller-memory-growth",
        "control-plane/extensions-memory-growth",
        "control-plane/allocator-memory-growth",
        "control-plane/controller-cpu",
        "control-plane/extensions-cpu",
        "control-plane/allocator-cpu",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "{want} missing from {names:?}"
        );
    }
    // No blind spots: no `or vector(0)` turning "not scraped" into a pass, no unscoped `up`,
    // every Agones metric scoped to a job from `vars`.
    let text = std::fs::read_to_string(&path).unwrap();
    let mut code = text.lines().filter(|l| !l.trim_start().starts_with('#'));
    assert!(
        !code.any(|l| l.contains("vector(0)")),
        "rules/slos.yaml holds `or vector(0)`"
    );
    for s in &specs.slos {
        let e = &s.spec.expr;
        // `${window}` is the disruption window's length, filled in at evaluation time.
        let e = &e.replace("${window}", "5m");
        assert!(!e.contains("${"), "{}: unsubstituted {e}", s.spec.name);
        for sel in upsoak_agent::vars::selectors(e) {
            assert!(
                sel.contains("job="),
                "{}: `{sel}` is not scoped to a job",
                s.spec.name
            );
        }
    }
    for name in ["allocation-success", "session-success"] {
        let s = specs.slos.iter().find(|s| s.spec.name == name).unwrap();
        assert!(s.spec.budget.is_some(), "{name} has no error budget");
    }
    for s in &specs.slos {
        assert_ne!(s.spec.on_no_data, Verdict::Pass, "{}", s.spec.name);
        assert!(
            !s.spec.description.is_empty(),
            "{} has no description",
            s.spec.name
        );
    }
    assert_eq!(specs.hash.len(), 16);
}

#[test]
fn a_full_slo_parses_with_every_field() {
    let s = Specs::parse(
        &one(
            "        expr: histogram_quantile(0.99, sum by (le) (rate(x_bucket[1m])))\n        objective: \"< 2\"\n        baseline: \"<= +20%\"\n        for: 1m30s\n        direction: either\n        on_no_data: fail\n        on_error: warn\n        severity: critical\n        min_samples: 8\n        description: p99\n",
        ),
        "t",
    )
    .unwrap();
    let c = &s.slos[0];
    assert_eq!(c.group, "g");
    assert_eq!(c.spec.for_, Some(std::time::Duration::from_secs(90)));
    assert_eq!(c.direction, Direction::Either);
    assert_eq!(
        (
            c.spec.on_no_data,
            c.spec.on_error,
            c.spec.severity,
            c.spec.min_samples
        ),
        (Verdict::Fail, Verdict::Warn, Severity::Critical, 8)
    );
    assert_eq!(c.objective.unwrap().threshold, 2.0);
    assert_eq!(c.relative.unwrap().cmp, Cmp::Le);
    assert!(c.relative.unwrap().percent);
}

#[test]
fn defaults_are_filled_in() {
    let s = Specs::parse(&one("        expr: up\n        objective: \">= 1\"\n"), "t").unwrap();
    let c = &s.slos[0];
    assert_eq!(c.spec.on_no_data, Verdict::Inconclusive);
    assert_eq!(c.spec.on_error, Verdict::Inconclusive);
    assert_eq!(c.spec.severity, Severity::Warning);
    assert_eq!(c.spec.min_samples, 5);
    assert_eq!(c.spec.for_, None);
}

#[test]
fn direction_is_inferred_from_the_criteria() {
    let text = "groups: [ { name: g, interval: 15s, slos: [ { name: lat, expr: up, baseline: \"<= +20%\" }, { name: ok, expr: up, objective: \">= 0.99\" }, { name: eq, expr: up, objective: \"== 1\" }, { name: both, expr: up, objective: \">= 0\", baseline: \"<= +1\" } ] } ]";
    let s = Specs::parse(text, "d").unwrap();
    let dirs: Vec<Direction> = s.slos.iter().map(|c| c.direction).collect();
    assert_eq!(
        dirs,
        [
            Direction::IncreaseIsBad,
            Direction::DecreaseIsBad,
            Direction::Either,
            // The baseline criterion sets the direction when both are given.
            Direction::IncreaseIsBad,
        ]
    );
}

#[test]
fn the_hash_is_stable_across_spellings_and_changes_with_content() {
    let flow = "groups: [ { name: g, interval: 15s, slos: [ { name: s, expr: up, objective: \">= 1\" } ] } ]";
    let block = one(
        "        expr: up\n        objective: \">= 1\"\n        on_no_data: inconclusive\n        min_samples: 5\n",
    );
    let a = Specs::parse(flow, "a").unwrap().hash;
    assert_eq!(a, Specs::parse(&block, "b").unwrap().hash);
    let other = Specs::parse(
        &one("        expr: up\n        objective: \">= 0.9\"\n"),
        "c",
    )
    .unwrap();
    assert_ne!(a, other.hash);
    // The hash is the shared FNV-1a 64 (tested in `upsoak_common::fnv`), in hex.
    assert_eq!(a.len(), 16);
    assert!(a.chars().all(|c| c.is_ascii_hexdigit()), "{a}");
}

#[test]
fn every_problem_is_reported_with_its_path() {
    let text = r#"
groups:
  - name: core
    interval: 1x
    slos:
      - name: ok
        expr: sum(rate(x_total[1m]))
        objective: ">= 1"
      - name: ok
        expr: sum(rate(x_total[1m])
        objective: "0.99"
        severity: loud
      - name: ranged
        expr: x_total[5m]
        baseline: "<= 20%"
        on_no_data: pass
        min_samples: -3
        for: 5
      - name: 9lives
        expr: up
        colour: red
  - name: core
    interval: 100ms
    slos: []
  - name: a-b
    slos:
      - { name: s, expr: '"text"', objective: ">= 1", on_error: pass, direction: up }
  - name: a_b
    interval: 15s
    slos: {}
extra: 1
"#;
    assert_problems(
        text,
        &[
            "extra: unknown field `extra`, expected one of vars, groups",
            "groups[0].interval: invalid duration \"1x\"",
            "groups[0].slos[1].name: `ok` is already used by groups[0].slos[0]",
            "groups[0].slos[1].expr: PromQL parse error: unclosed left parenthesis",
            "groups[0].slos[1].objective: `0.99` at column 1: expected a comparison",
            "groups[0].slos[1].severity: unknown variant `loud`, expected one of `info`, `warning`, `critical`",
            "groups[0].slos[2].expr: evaluates to a range vector",
            "groups[0].slos[2].baseline: `<= 20%` at column 4: a baseline criterion is a signed change",
            "groups[0].slos[2].for: invalid duration 5: give a unit",
            "groups[0].slos[2].on_no_data: cannot be `pass`: no data is never evidence of health",
            "groups[0].slos[2].min_samples: invalid value: integer `-3`",
            "groups[0].slos[3].colour: unknown field `colour`",
            "groups[0].slos[3].name: `9lives` must start with a letter or `_`",
            "groups[0].slos[3]: needs an `objective`, a `baseline` criterion, or both",
            "groups[1].name: `core` is already used by groups[0]",
            "groups[1].interval: must be at least 1s",
            "groups[1].slos: a group needs at least one SLO",
            "groups[2].interval: missing (required)",
            "groups[2].slos[0].expr: evaluates to a string",
            "groups[2].slos[0].direction: unknown variant `up`",
            "groups[2].slos[0].on_error: cannot be `pass`",
            "groups[3].name: `a_b` is already used by groups[2] (names are compared with `-` read as `_`)",
            "groups[3].slos: expected a list, found a mapping",
        ],
    );
}

/// One broken field per fixture: (fields of the SLO, the one problem expected).
#[test]
fn each_broken_field_alone() {
    let table: &[(&str, &str)] = &[
        (
            "        objective: \">= 1\"\n",
            "groups[0].slos[0].expr: missing (required)",
        ),
        (
            "        expr: \"\"\n        objective: \">= 1\"\n",
            "groups[0].slos[0].expr: empty expression",
        ),
        (
            "        expr: up\n",
            "groups[0].slos[0]: needs an `objective`",
        ),
        (
            "        expr: sum(\n        objective: \">= 1\"\n",
            "groups[0].slos[0].expr: PromQL parse error",
        ),
        (
            "        expr: nosuchfunction(up)\n        objective: \">= 1\"\n",
            "groups[0].slos[0].expr: PromQL parse error",
        ),
        (
            "        expr: rate(x[5m])[10m:1m]\n        objective: \">= 1\"\n",
            "groups[0].slos[0].expr: evaluates to a range vector",
        ),
        (
            "        expr: up\n        objective: 1\n",
            "groups[0].slos[0].objective: invalid type: integer `1`, expected a string",
        ),
        (
            "        expr: up\n        objective: \">= abc\"\n",
            "groups[0].slos[0].objective: `>= abc` at column 4: unexpected `a` in a number",
        ),
        (
            "        expr: up\n        objective: \">= 5%\"\n",
            "groups[0].slos[0].objective: `>= 5%` at column 4: an objective is absolute",
        ),
        (
            "        expr: up\n        baseline: \"<= +x%\"\n",
            "groups[0].slos[0].baseline: `<= +x%` at column 5: unexpected `x` in a number",
        ),
        (
            "        expr: up\n        baseline: \"~ +1\"\n",
            "groups[0].slos[0].baseline: `~ +1` at column 1: expected a comparison",
        ),
        (
            "        expr: up\n        objective: \">= 1\"\n        for: soon\n",
            "groups[0].slos[0].for: invalid duration \"soon\"",
        ),
        (
            "        expr: up\n        objective: \">= 1\"\n        for: [1m]\n",
            "groups[0].slos[0].for: invalid duration: expected a string like \"15s\", found a list",
        ),
        (
            "        expr: up\n        objective: \">= 1\"\n        direction: down\n",
            "groups[0].slos[0].direction: unknown variant `down`",
        ),
        (
            "        expr: up\n        objective: \">= 1\"\n        on_no_data: pass\n",
            "groups[0].slos[0].on_no_data: cannot be `pass`",
        ),
        (
            "        expr: up\n        objective: \">= 1\"\n        on_no_data: maybe\n",
            "groups[0].slos[0].on_no_data: unknown variant `maybe`",
        ),
        (
            "        expr: up\n        objective: \">= 1\"\n        on_error: pass\n",
            "groups[0].slos[0].on_error: cannot be `pass`",
        ),
        (
            "        expr: up\n        objective: \">= 1\"\n        severity: error\n",
            "groups[0].slos[0].severity: unknown variant `error`",
        ),
        (
            "        expr: up\n        objective: \">= 1\"\n        min_samples: 0\n",
            "groups[0].slos[0].min_samples: must be at least 1",
        ),
        (
            "        expr: up\n        objective: \">= 1\"\n        min_samples: many\n",
            "groups[0].slos[0].min_samples: invalid type: string \"many\"",
        ),
        (
            "        expr: up\n        objective: \">= 1\"\n        description: [a]\n",
            "groups[0].slos[0].description: invalid type: sequence",
        ),
        (
            "        expr: up\n        objective: \">= 1\"\n        expresion: up\n",
            "groups[0].slos[0].expresion: unknown field `expresion`",
        ),
    ];
    for (fields, want) in table {
        assert_problems(&one(fields), &[want]);
    }
}

#[test]
fn names_follow_the_rule() {
    for bad in ["\"\"", "\"has space\"", "\"1st\"", "\"dot.ted\"", "\"ünï\""] {
        let text = format!(
            "groups: [ {{ name: {bad}, interval: 15s, slos: [ {{ name: s, expr: up, objective: \">= 1\" }} ] }} ]"
        );
        let got = problems(&text);
        assert!(
            got.len() == 1 && got[0].starts_with("groups[0].name: "),
            "{bad}: {got:?}"
        );
    }
    let long = "x".repeat(65);
    let got = problems(&format!(
        "groups: [ {{ name: g, interval: 15s, slos: [ {{ name: {long}, expr: up, objective: \">= 1\" }} ] }} ]"
    ));
    assert!(got[0].contains("longer than 64"), "{got:?}");
    for good in ["_x", "control-plane", "a_b-9", "X"] {
        let text = format!(
            "groups: [ {{ name: {good}, interval: 15s, slos: [ {{ name: {good}, expr: up, objective: \">= 1\" }} ] }} ]"
        );
        assert!(Specs::parse(&text, "t").is_ok(), "{good}");
    }
}

#[test]
fn the_shape_of_the_file() {
    assert_problems(
        "",
        &["(top level): expected a mapping with `groups`, found nothing"],
    );
    assert_problems(
        "- 1\n",
        &["(top level): expected a mapping with `groups`, found a list"],
    );
    assert_problems("groups: []\n", &["groups: at least one group is required"]);
    assert_problems("groups: 3\n", &["groups: expected a list, found a number"]);
    assert_problems("{}\n", &["groups: missing (required)"]);
    assert_problems(
        "groups: [ 7, { interval: 15s, slos: [ 1 ] } ]\n",
        &[
            "groups[0]: expected a mapping, found a number",
            "groups[1].name: missing (required)",
            "groups[1].slos[0]: expected a mapping, found a number",
        ],
    );
    assert_problems(
        "groups: [ { name: g, interval: 15, slos: [ { name: s, expr: up, objective: \">= 1\" } ] } ]",
        &["groups[0].interval: invalid duration 15: give a unit, e.g. \"15s\""],
    );
}

#[test]
fn yaml_syntax_errors_have_line_and_column() {
    let got = problems("groups: [\n  {");
    assert!(
        got.len() == 1 && got[0].starts_with("t.yaml:3:1: YAML syntax error"),
        "{got:?}"
    );
    // An unquoted `>=` opens a folded block scalar: the error says so and how to fix it.
    let got = problems(&one("        expr: up\n        objective: >= 1\n"));
    assert!(got[0].starts_with("t.yaml:7:"), "{got:?}");
    assert!(got[0].contains("hint: quote criteria"), "{got:?}");
    let got = problems("groups:\n  - name: g\n    name: h\n");
    assert!(
        got[0].starts_with("t.yaml:2:5: ") && got[0].contains("duplicate"),
        "{got:?}"
    );
}

#[test]
fn merge_keys_share_defaults() {
    let text = r#"
defaults: &d { severity: critical, min_samples: 9 }
groups:
  - name: g
    interval: 15s
    slos:
      - { <<: *d, name: s, expr: up, objective: ">= 1" }
"#;
    // `defaults` is not a field: anchors go inside the groups, or the file is rejected.
    assert_problems(text, &["defaults: unknown field `defaults`"]);
    let text = r#"
groups:
  - name: g
    interval: 15s
    slos:
      - &first { name: s, expr: up, objective: ">= 1", severity: critical, min_samples: 9 }
      - { <<: *first, name: t }
"#;
    let s = Specs::parse(text, "t").unwrap();
    assert_eq!(s.slos[1].spec.severity, Severity::Critical);
    assert_eq!(s.slos[1].spec.min_samples, 9);
}

#[test]
fn a_missing_file_is_one_problem() {
    let e = Specs::load(std::path::Path::new("/nonexistent/slos.yaml")).unwrap_err();
    assert_eq!(e.problems.len(), 1);
    assert!(e.to_string().contains("cannot read"), "{e}");
}

#[test]
fn vars_are_substituted_everywhere_and_checked() {
    let text = r#"
vars:
  job: agones-controller-metrics-service
  ns: exported_namespace
groups:
  - name: g
    interval: 15s
    slos:
      - name: up
        expr: min(up{job="${job}"}) by (${ns})
        objective: ">= 1"
      - name: ok
        budget: { good: 'x_total{job="${job}", r="ok"}', total: 'x_total{job="${job}"}', target: 0.99 }
      - name: disrupted
        expr: sum(increase(x_total{job="${job}"}[${window}]))
        window: disruption
        baseline: "<= +1"
"#;
    let s = Specs::parse(text, "t").unwrap();
    assert_eq!(
        s.slos[0].spec.expr,
        r#"min(up{job="agones-controller-metrics-service"}) by (exported_namespace)"#
    );
    let b = s.slos[1].spec.budget.as_ref().unwrap();
    assert_eq!(
        b.good,
        r#"x_total{job="agones-controller-metrics-service", r="ok"}"#
    );
    // A budget SLO's value is the derived ratio; its bad way is down.
    assert!(
        s.slos[1]
            .spec
            .expr
            .contains("sum(rate(x_total{job=\"agones-controller-metrics-service\"}[1m])) * 0")
    );
    assert_eq!(s.slos[1].direction, Direction::DecreaseIsBad);
    // `${window}` is the disruption window's, left for evaluation time.
    assert!(
        s.slos[2].spec.expr.contains("[${window}]"),
        "{}",
        s.slos[2].spec.expr
    );
    // The same specs with another job hash differently.
    let other = Specs::parse(
        &text.replace("agones-controller-metrics-service", "agones"),
        "t",
    )
    .unwrap();
    assert_ne!(s.hash, other.hash);

    assert_problems(
        r#"
vars: { window: 5m, "bad-name": x, list: [1] }
groups:
  - name: g
    interval: 15s
    slos:
      - { name: a, expr: 'up{job="${nope}"}', objective: ">= 1" }
      - { name: b, expr: 'up * ${job', objective: ">= 1" }
      - { name: c, budget: { good: 'x{a="${nope}"}', total: 'rate(x[1m])', target: 1.5 }, objective: ">= 1" }
      - { name: d, budget: { good: x, target: 0.9, colour: red } }
"#,
        &[
            "vars.window: `window` is reserved",
            "vars.bad-name: `bad-name` must start with a letter",
            "vars.list: expected a string, found a list",
            "groups[0].slos[0].expr: `${nope}` is not defined in `vars` (defined: none)",
            "groups[0].slos[1].expr: `${` at byte 5 has no closing `}`",
            "groups[0].slos[1].expr: PromQL parse error",
            "groups[0].slos[2].budget.target: 1.5 is not a share in (0, 1)",
            "groups[0].slos[2].budget.good: `${nope}` is not defined",
            "groups[0].slos[2].budget.total: not a counter selector",
            "groups[0].slos[2].objective: an SLO with a `budget` takes no `objective`",
            "groups[0].slos[3].budget.colour: unknown field `colour`",
            "groups[0].slos[3].budget.total: missing (required)",
            "groups[0].slos[3].expr: missing (required)",
        ],
    );
}

#[test]
fn baseline_by_is_checked_item_by_item_and_only_where_a_baseline_is_compared() {
    let ok = Specs::parse(
        &one("        expr: up\n        baseline: \"<= +50%\"\n        baseline_by: [tunable:allocationBatchWaitTime, gate:PlayerTracking, version]\n"),
        "t.yaml",
    )
    .unwrap();
    let keys: Vec<String> = ok.slos[0]
        .baseline_by
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        keys,
        vec![
            "tunable:allocationBatchWaitTime",
            "gate:PlayerTracking",
            "version"
        ]
    );
    // Left out, it is empty and the hash is the one of a file without it.
    let plain = one("        expr: up\n        baseline: \"<= +50%\"\n");
    assert!(
        Specs::parse(&plain, "t.yaml").unwrap().slos[0]
            .baseline_by
            .is_empty()
    );
    assert_ne!(Specs::parse(&plain, "t.yaml").unwrap().hash, ok.hash);
    assert_problems(
        &one(
            "        expr: up\n        baseline: \"<= +50%\"\n        baseline_by: [tunables:x, 'gate:', 3, version, version]\n",
        ),
        &[
            "groups[0].slos[0].baseline_by[0]: unknown configuration key `tunables:x`, expected `version`, `tunable:NAME` or `gate:NAME`",
            "groups[0].slos[0].baseline_by[1]: `gate:`: the gate name must be non-empty",
            "groups[0].slos[0].baseline_by[2]: expected a string, found a number",
            "groups[0].slos[0].baseline_by[4]: `version` is listed twice",
        ],
    );
    assert_problems(
        &one("        expr: up\n        baseline: \"<= +50%\"\n        baseline_by: version\n"),
        &["groups[0].slos[0].baseline_by: expected a list of configuration keys"],
    );
    assert_problems(
        &one("        expr: up\n        baseline: \"<= +50%\"\n        baseline_by: []\n"),
        &["groups[0].slos[0].baseline_by: an empty list"],
    );
    // Where no baseline is compared: an objective alone, a disruption SLO.
    assert_problems(
        &one("        expr: up\n        objective: \">= 1\"\n        baseline_by: [version]\n"),
        &["groups[0].slos[0].baseline_by: needs a `baseline` criterion or a `budget`"],
    );
    assert_problems(
        &one(
            "        expr: max_over_time(up[${window}])\n        baseline: \"<= +5\"\n        window: disruption\n        baseline_by: [version]\n",
        ),
        &["groups[0].slos[0].baseline_by: only steady SLOs take it"],
    );
    // A budget SLO takes it: its baseline feeds the significance test.
    Specs::parse(
        &one("        budget: { good: 'x{r=\"ok\"}', total: x, target: 0.99 }\n        baseline_by: [tunable:allocatorReplicas]\n"),
        "t.yaml",
    )
    .unwrap();
}

#[test]
fn a_duration_over_a_year_is_refused_with_its_path() {
    let text = "groups:\n  - name: g\n    interval: 400days\n    slos:\n      - { name: s, expr: up, objective: \">= 1\", for: 9999h }\n";
    assert_problems(
        text,
        &[
            "groups[0].interval: \"400days\" is longer than 365 days",
            "groups[0].slos[0].for: \"9999h\" is longer than 365 days",
        ],
    );
}
