//! Baseline selection: recorded at the same values, learned from an earlier passing window,
//! none (row 5's reason with the values), never a failed window.

use std::collections::BTreeMap;

use super::*;
use crate::baseline::SloBaseline;
use crate::history::{Judged, SloVerdict, Transition};
use crate::judge::{DEFAULT_ALPHA, Window};
use crate::spec::{Severity, Specs};

fn slo(extra: &str) -> CheckedSlo {
    let text = format!(
        "groups: [ {{ name: g, interval: 15s, slos: [ {{ name: lat, expr: up, baseline: \"<= +50%\", min_samples: 3{extra} }} ] }} ]"
    );
    Specs::parse(&text, "t").unwrap().slos.remove(0)
}

fn by_wait() -> CheckedSlo {
    slo(", baseline_by: [tunable:allocationBatchWaitTime]")
}

fn config(version: &str, wait: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("version".to_owned(), version.to_owned()),
        ("feature_gates".to_owned(), "PlayerTracking=true".to_owned()),
        (
            "tunables".to_owned(),
            format!("allocationBatchWaitTime={wait}&logLevel=info"),
        ),
    ])
}

fn recorded(wait: &str, level: f64) -> Baseline {
    let samples = vec![level; 5];
    Baseline {
        format_version: crate::baseline::FORMAT_VERSION,
        spec_hash: String::new(),
        from: 0,
        to: 100,
        step_seconds: 15.0,
        configuration: config("1.58.0", wait),
        slos: BTreeMap::from([(
            "g/lat".to_owned(),
            SloBaseline {
                query: "up".into(),
                count: samples.len(),
                mean: level,
                stddev: 0.0,
                p50: level,
                p90: level,
                p99: level,
                samples,
            },
        )]),
        example: false,
    }
}

/// A judged window whose `g/lat` verdict is `verdict` with samples at `level`.
fn window(end: i64, verdict: Verdict, level: f64) -> Judged {
    let v = SloVerdict {
        group: "g".into(),
        slo: "lat".into(),
        severity: Severity::Warning,
        query: "up".into(),
        evidence: Evidence {
            value: Some(level),
            samples: 3,
            ..Evidence::new(verdict, "")
        },
        previous: None,
        samples: vec![(1.0, level), (2.0, level), (3.0, level)],
    };
    Judged {
        window_start: end - 100,
        window_end: end,
        judged_at: end,
        verdict,
        slos: BTreeMap::from([("g/lat".to_owned(), v)]),
    }
}

/// Transitions to the given waits, each judged with the given verdict at its level.
fn history(steps: &[(&str, Verdict, f64)]) -> History {
    let mut h = History::default();
    let mut from = config("1.58.0", "500");
    for (n, (wait, verdict, level)) in steps.iter().enumerate() {
        let to = config(&format!("1.{}.0", 59 + n), wait);
        let at = 1000 * (n as i64 + 1);
        let mut t = Transition::new(n as u64 + 2, at, from, to.clone());
        t.judged = Some(window(at + 400, *verdict, *level));
        h.transitions.push(t);
        from = to;
    }
    h
}

#[test]
fn an_slo_without_baseline_by_always_takes_the_recorded_baseline() {
    let h = history(&[("800", Verdict::Pass, 0.8)]);
    let b = recorded("500", 0.5);
    let c = choose(&slo(""), Some(&b), &h, 0);
    assert_eq!(c.source, Source::Recorded);
    assert_eq!(c.samples, Some(vec![0.5; 5]));
    let mut ev = Evidence::new(Verdict::Pass, "within");
    c.explain(&mut ev);
    assert_eq!(ev.reason, "within", "the reason is unchanged");
}

#[test]
fn the_recorded_baseline_counts_only_at_its_own_values() {
    let b = recorded("500", 0.5);
    // A version change at the same batch wait: recorded.
    let h = history(&[("500", Verdict::Pass, 0.5)]);
    let c = choose(&by_wait(), Some(&b), &h, 0);
    assert_eq!(
        (c.source, c.samples),
        (Source::Recorded, Some(vec![0.5; 5]))
    );
    // The batch wait moved: not the recorded one, and nothing earlier.
    let h = history(&[("800", Verdict::Pass, 0.8)]);
    let c = choose(&by_wait(), Some(&b), &h, 0);
    assert_eq!(c.samples, None);
    assert_eq!(
        c.source,
        Source::Missing(
            "no baseline at tunable:allocationBatchWaitTime=800 (the recorded one is at tunable:allocationBatchWaitTime=500, and no earlier passing window at it)".into()
        )
    );
    let c = choose(&by_wait(), None, &h, 0);
    assert!(
        matches!(&c.source, Source::Missing(w) if w.contains("(no baseline recorded")),
        "{c:?}"
    );
}

#[test]
fn a_baseline_is_learned_from_the_latest_earlier_passing_window_at_the_same_values() {
    let b = recorded("500", 0.5);
    let h = history(&[
        ("800", Verdict::Pass, 0.8),
        ("300", Verdict::Pass, 0.3),
        ("800", Verdict::Pass, 0.81),
        ("800", Verdict::Pass, 0.82),
    ]);
    // Generation 5 (index 3): the latest earlier window at 800 is generation 4's.
    let c = choose(&by_wait(), Some(&b), &h, 3);
    assert_eq!(c.source, Source::Learned { generation: 4 });
    assert_eq!(c.samples, Some(vec![0.81; 3]));
    // A chunk is later than its transition's first window.
    let mut h = h;
    h.transitions[2]
        .chunks
        .push(window(3900, Verdict::Pass, 0.85));
    let c = choose(&by_wait(), Some(&b), &h, 3);
    assert_eq!(c.samples, Some(vec![0.85; 3]));
    // Never the transition's own windows: generation 2 (index 0) has nothing earlier.
    assert!(matches!(
        choose(&by_wait(), Some(&b), &h, 0).source,
        Source::Missing(_)
    ));
}

#[test]
fn a_failed_warned_or_inconclusive_window_never_becomes_the_baseline() {
    for bad in [Verdict::Fail, Verdict::Warn, Verdict::Inconclusive] {
        let h = history(&[
            ("800", Verdict::Pass, 0.8),
            ("800", bad, 3.0),
            ("800", Verdict::Pass, 0.8),
        ]);
        let c = choose(&by_wait(), None, &h, 2);
        assert_eq!(c.source, Source::Learned { generation: 2 }, "{bad:?}");
        assert_eq!(c.samples, Some(vec![0.8; 3]));
        // With only the bad one earlier: none.
        let h = history(&[("800", bad, 3.0), ("800", Verdict::Pass, 0.8)]);
        assert!(matches!(
            choose(&by_wait(), None, &h, 1).source,
            Source::Missing(_)
        ));
    }
    // A window whose samples were dropped (older than the latest kept) is skipped.
    let mut h = history(&[("800", Verdict::Pass, 0.8), ("800", Verdict::Pass, 0.8)]);
    assert_eq!(h.drop_old_samples(1), 1);
    assert!(matches!(
        choose(&by_wait(), None, &h, 1).source,
        Source::Missing(_)
    ));
}

#[test]
fn the_reason_says_which_baseline_was_used_or_why_there_was_none() {
    let s = by_wait();
    let h = history(&[("800", Verdict::Pass, 0.8), ("800", Verdict::Pass, 0.8)]);
    let window = [0.8, 0.82, 0.79, 0.81, 0.8];
    let judged = |c: &Chosen| {
        let mut ev = judge::judge(
            &s,
            Window::Samples(&window),
            c.samples.as_deref(),
            DEFAULT_ALPHA,
        );
        c.explain(&mut ev);
        ev
    };
    let learned = judged(&choose(&s, None, &h, 1));
    assert_eq!(learned.verdict, Verdict::Pass, "{}", learned.reason);
    assert!(
        learned.reason.ends_with(
            "; baseline learned from generation 2 at tunable:allocationBatchWaitTime=800"
        ),
        "{}",
        learned.reason
    );
    // Row 5 without an objective: inconclusive, the values in place of "no baseline recorded".
    let b = recorded("500", 0.5);
    let none = judged(&choose(&s, Some(&b), &h, 0));
    assert_eq!(none.verdict, Verdict::Inconclusive);
    assert!(
        none.reason.starts_with("no baseline at tunable:allocationBatchWaitTime=800 (the recorded one is at tunable:allocationBatchWaitTime=500"),
        "{}",
        none.reason
    );
    // With an objective, row 5 passes on it and says the same.
    let both = slo(", objective: \"<= 2\", baseline_by: [tunable:allocationBatchWaitTime]");
    let c = choose(&both, Some(&b), &h, 0);
    let mut ev = judge::judge(
        &both,
        Window::Samples(&window),
        c.samples.as_deref(),
        DEFAULT_ALPHA,
    );
    c.explain(&mut ev);
    assert_eq!(ev.verdict, Verdict::Pass);
    assert!(
        ev.reason.contains("meets the objective")
            && ev
                .reason
                .contains("no baseline at tunable:allocationBatchWaitTime=800"),
        "{}",
        ev.reason
    );
    // Recorded at the same values: named.
    let h = history(&[("500", Verdict::Pass, 0.5)]);
    let rec = judged(&choose(&s, Some(&b), &h, 0));
    assert!(
        rec.reason
            .ends_with("; baseline recorded at tunable:allocationBatchWaitTime=500"),
        "{}",
        rec.reason
    );
}

#[test]
fn the_usual_spread_of_a_baseline_by_slo_counts_only_transitions_at_its_values() {
    let h = history(&[
        ("800", Verdict::Pass, 0.8),
        ("300", Verdict::Pass, 0.3),
        ("800", Verdict::Pass, 0.82),
    ]);
    let all = crate::eval::earlier_values(&h);
    assert_eq!(all["g/lat"], vec![0.8, 0.3, 0.82]);
    assert_eq!(spread(&slo(""), &h, 2, &all), Some(vec![0.8, 0.3, 0.82]));
    assert_eq!(spread(&by_wait(), &h, 2, &all), Some(vec![0.8, 0.82]));
    assert_eq!(spread(&by_wait(), &h, 1, &all), Some(vec![0.3]));
}

/// A second SLO, `g/ok`, with `verdict`, in window `w` (the window's verdict is the worst).
fn with_other(mut w: Judged, verdict: Verdict) -> Judged {
    let mut v = w.slos["g/lat"].clone();
    v.slo = "ok".into();
    v.evidence.verdict = verdict;
    w.slos.insert("g/ok".to_owned(), v);
    w.verdict = crate::eval::worst(w.slos.values().map(|v| v.evidence.verdict));
    w
}

#[test]
fn a_transition_that_failed_any_slo_lends_no_window_as_a_baseline() {
    // Issue 24: generation 3 failed `allocation-success` (here `g/ok`) while its latency
    // window passed; generation 4 must not be judged against that latency.
    for bad in [Verdict::Fail, Verdict::Inconclusive] {
        let mut h = history(&[
            ("800", Verdict::Pass, 0.8),
            ("800", Verdict::Pass, 3.0),
            ("800", Verdict::Pass, 0.8),
        ]);
        let first = h.transitions[1].judged.take().unwrap();
        h.transitions[1].judged = Some(with_other(first, bad));
        assert!(!lends(&h.transitions[1]));
        let c = choose(&by_wait(), None, &h, 2);
        assert_eq!(c.source, Source::Learned { generation: 2 }, "{bad:?}");
        assert_eq!(c.samples, Some(vec![0.8; 3]));
        assert_eq!(clean_values(&by_wait(), &h, 2), vec![0.8]);
        // A failed chunk after a passing first window disqualifies it as well.
        let mut h = history(&[("800", Verdict::Pass, 3.0), ("800", Verdict::Pass, 0.8)]);
        let chunk = with_other(window(1900, Verdict::Pass, 3.0), bad);
        h.transitions[0].chunks.push(chunk);
        assert!(matches!(
            choose(&by_wait(), None, &h, 1).source,
            Source::Missing(_)
        ));
        assert!(clean_values(&slo(""), &h, 1).is_empty());
    }
    // A warn on another SLO does not: the exit code counts it as a pass.
    let mut h = history(&[("800", Verdict::Pass, 0.9), ("800", Verdict::Pass, 0.8)]);
    let first = h.transitions[0].judged.take().unwrap();
    h.transitions[0].judged = Some(with_other(first, Verdict::Warn));
    assert!(lends(&h.transitions[0]));
    assert_eq!(
        choose(&by_wait(), None, &h, 1).source,
        Source::Learned { generation: 2 }
    );
    // Not judged yet: lends nothing.
    h.transitions[0].judged = None;
    assert!(!lends(&h.transitions[0]));
}

#[test]
fn the_clean_values_are_the_passing_windows_of_earlier_passing_transitions_at_the_same_values() {
    let mut h = history(&[
        ("800", Verdict::Pass, 0.8),
        ("300", Verdict::Pass, 0.3),
        ("800", Verdict::Warn, 0.9),
        ("800", Verdict::Pass, 0.82),
        ("800", Verdict::Pass, 0.84),
    ]);
    h.transitions[3]
        .chunks
        .push(window(4900, Verdict::Pass, 0.83));
    // Transition 4 (index 4): 800 only, the warned window left out, chunks in, itself not.
    assert_eq!(clean_values(&by_wait(), &h, 4), vec![0.8, 0.82, 0.83]);
    // Without baseline_by: every earlier passing window.
    assert_eq!(clean_values(&slo(""), &h, 4), vec![0.8, 0.3, 0.82, 0.83]);
    // What `choose` hands the judge.
    assert_eq!(choose(&by_wait(), None, &h, 4).clean, vec![0.8, 0.82, 0.83]);
    // Only the latest CLEAN_WINDOWS.
    let many: Vec<_> = (0..CLEAN_WINDOWS + 3)
        .map(|n| ("800", Verdict::Pass, n as f64))
        .collect();
    let h = history(&many);
    let clean = clean_values(&by_wait(), &h, CLEAN_WINDOWS + 2);
    assert_eq!(clean.len(), CLEAN_WINDOWS);
    assert_eq!(
        (clean[0], clean[CLEAN_WINDOWS - 1]),
        (2.0, (CLEAN_WINDOWS + 1) as f64)
    );
}
