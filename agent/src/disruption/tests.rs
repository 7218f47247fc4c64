//! The disruption decision table, row by row, and the window's placeholder.

use super::*;
use crate::spec::Specs;

fn slo(extra: &str) -> CheckedSlo {
    let text = format!(
        "groups: [ {{ name: d, interval: 15s, slos: [ {{ name: s, window: disruption, expr: 'max_over_time(up[${{window}}])', {extra} }} ] }} ]"
    );
    Specs::parse(&text, "t").unwrap().slos.remove(0)
}

/// Every row of the module's table, by number.
#[test]
fn the_decision_table() {
    let lost = slo("objective: \"<= 0\"");
    let gap = slo("objective: \"<= 30\", baseline: \"<= +5\", min_transitions: 3");
    let rel = slo("baseline: \"<= +50%\", min_transitions: 3");
    let strict = slo("objective: \"<= 0\", on_no_data: fail, on_error: warn");
    let three = [1.0, 2.0, 1.5];
    // (row, slo, answer (None: the query failed), earlier values, verdict, reason contains)
    type Case<'a> = (
        u8,
        &'a CheckedSlo,
        Option<Vec<f64>>,
        &'a [f64],
        Verdict,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        (1, &lost, None, &[], Verdict::Inconclusive, "query failed"),
        (1, &strict, None, &[], Verdict::Warn, "query failed"),
        (
            2,
            &lost,
            Some(vec![0.0, 0.0]),
            &[],
            Verdict::Inconclusive,
            "2 series",
        ),
        (
            3,
            &lost,
            Some(vec![]),
            &[],
            Verdict::Inconclusive,
            "no sample",
        ),
        (
            3,
            &lost,
            Some(vec![f64::NAN]),
            &[],
            Verdict::Inconclusive,
            "no sample",
        ),
        (3, &strict, Some(vec![]), &[], Verdict::Fail, "no sample"),
        (
            4,
            &lost,
            Some(vec![2.0]),
            &[],
            Verdict::Fail,
            "breaks the objective",
        ),
        (
            4,
            &gap,
            Some(vec![31.0]),
            &three,
            Verdict::Fail,
            "breaks the objective",
        ),
        (
            5,
            &gap,
            Some(vec![7.0]),
            &three,
            Verdict::Fail,
            "median 1.5",
        ),
        (
            5,
            &gap,
            Some(vec![6.5]),
            &three,
            Verdict::Pass,
            "of 3 earlier",
        ),
        (
            5,
            &rel,
            Some(vec![2.3]),
            &three,
            Verdict::Fail,
            "threshold 2.25",
        ),
        (
            6,
            &gap,
            Some(vec![7.0]),
            &three[..2],
            Verdict::Pass,
            "objective only",
        ),
        (
            6,
            &rel,
            Some(vec![1.0]),
            &three[..2],
            Verdict::Inconclusive,
            "2 earlier transitions judged, 3 needed",
        ),
        (
            7,
            &lost,
            Some(vec![0.0]),
            &[],
            Verdict::Pass,
            "meets the objective",
        ),
    ];
    for (row, s, answer, earlier, want, says) in cases {
        let e = match &answer {
            Some(v) => decide(s, Answer::Series(v), earlier),
            None => decide(s, Answer::Error("connection refused"), earlier),
        };
        assert_eq!(e.verdict, want, "row {row}: {e:?}");
        assert!(e.reason.contains(says), "row {row}: {}", e.reason);
        assert_eq!(e.baseline_samples, earlier.len(), "row {row}");
    }
}

#[test]
fn the_window_starts_at_the_apply_and_never_after_the_live_moment() {
    let p = |started| Phases {
        started,
        finished: None,
        source: String::new(),
    };
    assert_eq!(p(Some(950.7)).window_start(1000), 950);
    assert_eq!(p(None).window_start(1000), 1000);
    assert_eq!(p(Some(1000.9)).window_start(1000), 1000);
    assert_eq!(promql_duration(95), "95s");
    assert_eq!(promql_duration(0), "1s");
}

#[test]
fn the_spec_checks_window_fields_with_their_paths() {
    let bad = |slo: &str| {
        let text =
            format!("groups: [ {{ name: g, interval: 15s, slos: [ {{ name: s, {slo} }} ] }} ]");
        Specs::parse(&text, "t.yaml").unwrap_err().to_string()
    };
    let e = bad("expr: up, objective: \"<= 0\", window: disruptoin");
    assert!(
        e.contains("groups[0].slos[0].window") && e.contains("disruptoin"),
        "{e}"
    );
    let e = bad("expr: 'max_over_time(up[${window}])', objective: \"<= 0\"");
    assert!(
        e.contains("groups[0].slos[0].expr") && e.contains("${window}"),
        "{e}"
    );
    let e = bad("expr: up, objective: \"<= 0\", min_transitions: 3");
    assert!(e.contains("groups[0].slos[0].min_transitions"), "{e}");
    let e = bad("expr: up, objective: \"<= 0\", window: disruption, for: 1m, min_samples: 3");
    assert!(
        e.contains("slos[0].for") && e.contains("slos[0].min_samples"),
        "{e}"
    );
    let e = bad("expr: 'max_over_time(up[${window}]', objective: \"<= 0\", window: disruption");
    assert!(e.contains("PromQL parse error"), "{e}");
    // A steady spec file hashes as before the field existed: `window: steady` is the default.
    let plain = "groups: [ { name: g, interval: 15s, slos: [ { name: s, expr: up, objective: \">= 1\" } ] } ]";
    let explicit = "groups: [ { name: g, interval: 15s, slos: [ { name: s, expr: up, objective: \">= 1\", window: steady } ] } ]";
    assert_eq!(
        Specs::parse(plain, "a").unwrap().hash,
        Specs::parse(explicit, "b").unwrap().hash
    );
}
