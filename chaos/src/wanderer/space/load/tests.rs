//! Tests of loading a space file: every problem with its path, versions, gates, hops, tunables.
use super::*;

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
    assert!(
        e.problems
            .iter()
            .next()
            .unwrap()
            .to_string()
            .starts_with("x.yaml:"),
        "{e}"
    );
    let e = Space::parse(
        "versions: []\nhops: {max_up: 1, max_down: 1, allow_downgrade: true}\nextra: 1\n",
        "y",
    )
    .unwrap_err();
    assert!(
        e.problems
            .iter()
            .next()
            .unwrap()
            .to_string()
            .contains("unknown field `extra`"),
        "{e}"
    );
    let e = Space::parse(
            "versions: [ { version: 1.0.0, gates: { A: Alpha } } ]\nhops: {max_up: 1, max_down: 1, allow_downgrade: true}\nconstraints: [ \"gate:A AND NOT gate:A\" ]\n",
            "z",
        )
        .unwrap_err();
    assert!(
        e.problems
            .iter()
            .next()
            .unwrap()
            .to_string()
            .contains("no valid state"),
        "{e}"
    );
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
  ok: { min: 1, max: 2, stride: 1 }
constraints:
  - gate:A
  - [ not, a, string ]
  - IF tunable:missing == 3 THEN gate:A
extra: true
"#;
    let e = Space::parse(bad, "bad.yaml").unwrap_err();
    let text = e.to_string();
    for want in [
        "versions[0].colour: unknown field `colour`, expected one of `version`, `kubernetes`, `image_tag`, `chart`, `gates`",
        "versions[1].gates: invalid type: sequence, expected a map",
        "versions[2].kubernetes: missing field `max`",
        "hops.allow_downgrade: invalid type: string \"maybe\", expected a boolean",
        "tunables.wait: give either `{min, max}` or `{min, max, step}` (an integer range) or `{values: [...]}` (an enum)",
        "tunables.level.values[1]: `7` is not a word",
        "tunables.level.values[2]: `info` is listed twice",
        "tunables.ok.stride: unknown field `stride`, expected one of `min`, `max`, `step`, `values`, `chart`, `format`",
        "constraints[1]: invalid type: sequence, expected a string",
        "constraints[2]: col 4: unknown tunable `missing`",
        "extra: unknown field `extra`, expected one of versions, hops, tunables, constraints",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    assert_eq!(e.problems.len(), 11, "{text}");

    let e = Space::parse("constraints: []\n", "empty.yaml").unwrap_err();
    assert_eq!(
        e.problems.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
        [
            "versions: missing (a list of versions, oldest first)",
            "hops: missing (`{max_up, max_down, allow_downgrade}`)"
        ]
    );
    let e = Space::parse("versions: [\n  - {", "x.yaml").unwrap_err();
    assert_eq!(
        e.problems.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
        ["x.yaml:2:3: did not find expected node content, while parsing a flow node"]
    );
    let e = Space::parse("versions:\n  - version: 1.0.0\n   gates: {}\n", "y.yaml").unwrap_err();
    assert!(
        e.problems
            .iter()
            .next()
            .unwrap()
            .to_string()
            .starts_with("y.yaml:3:"),
        "{e}"
    );
}

#[test]
fn a_step_loads_and_its_errors_name_the_path_and_the_nearest_valid_max() {
    let head = "versions: [ { version: 1.0.0, gates: { A: Beta } } ]\nhops: { max_up: 1, max_down: 1, allow_downgrade: true }\n";
    let s = Space::parse(
            &format!("{head}tunables:\n  wait: {{ min: 100, max: 1000, step: 100 }}\n  n: {{ min: 1, max: 5 }}\n"),
            "ok.yaml",
        )
        .unwrap();
    assert_eq!(
        s.tunables["wait"],
        TunableSpec::Range {
            min: 100,
            max: 1000,
            step: 100
        }
    );
    assert_eq!(
        s.tunables["n"],
        TunableSpec::Range {
            min: 1,
            max: 5,
            step: DEFAULT_STEP
        }
    );
    let bad = format!(
        r#"{head}tunables:
  zero: {{ min: 1, max: 5, step: 0 }}
  negative: {{ min: 1, max: 5, step: -2 }}
  short: {{ min: 100, max: 1000, step: 400 }}
  near_above: {{ min: 100, max: 1050, step: 100 }}
  huge: {{ min: 0, max: 9223372036854775807, step: 2 }}
  word: {{ values: [a, b], step: 1 }}
  text: {{ min: 1, max: 5, step: ten }}
  upside: {{ min: 5, max: 1, step: 2 }}
"#
    );
    let e = Space::parse(&bad, "bad.yaml").unwrap_err();
    let text = e.to_string();
    for want in [
        "tunables.zero.step: must be at least 1, got 0",
        "tunables.negative.step: must be at least 1, got -2",
        "tunables.short.step: max 1000 is not min 100 plus a multiple of step 400, so the walk would never reach it: the nearest valid max is 900 (or 1300)",
        "tunables.near_above.step: max 1050 is not min 100 plus a multiple of step 100, so the walk would never reach it: the nearest valid max is 1000 (or 1100)",
        "tunables.huge.step: max 9223372036854775807 is not min 0 plus a multiple of step 2, so the walk would never reach it: the nearest valid max is 9223372036854775806",
        "tunables.word.step: a step belongs to an integer range `{min, max, step}`, not to an enum",
        "tunables.text.step: invalid type: string \"ten\", expected i64",
        "tunables.upside: min 5 is above max 1",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    assert!(!text.contains("9223372036854775806 (or"), "{text}");
    assert_eq!(e.problems.len(), 8, "{text}");
    // A constraint that can never tell grid values apart by `==` says so; `<=` may split
    // between grid values.
    let e = Space::parse(
            &format!("{head}tunables:\n  wait: {{ min: 100, max: 1000, step: 100 }}\nconstraints:\n  - IF tunable:wait == 450 THEN tunable:wait <= 450\n"),
            "c.yaml",
        )
        .unwrap_err();
    assert_eq!(
        e.problems.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
        [
            "constraints[0]: col 4: tunable `wait` never equals 450: 450 is off the step grid of 100..=1000 step 100 (nearest values 400 and 500)"
        ]
    );
}

#[test]
fn chart_paths_and_formats_are_checked() {
    let bad = r#"
versions: [ { version: 1.0.0, gates: { A: Beta } } ]
hops: { max_up: 1, max_down: 1, allow_downgrade: true }
tunables:
  wait: { min: 1, max: 5, chart: [agones..x, "agones.a b"], format: string }
  level: { values: [info], format: duration_ms }
  lone: { min: 1, max: 2, format: millicpu }
  none: { min: 1, max: 2, chart: [] }
"#;
    let text = Space::parse(bad, "bad.yaml").unwrap_err().to_string();
    for want in [
        "tunables.wait.format: an integer tunable is written as `int`, `duration_ms`, `millicpu` or `mebibytes`",
        "tunables.wait.chart[0]: `agones..x` is not a dotted path",
        "tunables.wait.chart[1]: `agones.a b` is not a dotted path",
        "tunables.level.format: an enum tunable is written as `string`",
        "tunables.lone.format: a format without `chart` paths",
        "tunables.none.chart: at least one path is required",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
}
