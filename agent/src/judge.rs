//! The decision for one SLO over one window: the window's samples against the baseline's and
//! against the absolute objective, with a significance test so noise does not flap verdicts.
//!
//! The value is the mean of the window's finite samples; "baseline" is the mean of the
//! baseline's samples; "significant" means the two-sided Mann–Whitney U test of window against
//! baseline gives p < α (default 0.05) **and** the window moved the bad way for the SLO's
//! `direction` (any way for `either`). Rows are tried in order; the first that matches decides:
//!
//! | # | data | objective | baseline criterion | significant shift the bad way | verdict |
//! |---|---|---|---|---|---|
//! | 1 | query failed | – | – | – | `on_error` (default inconclusive) |
//! | 2 | no finite sample | – | – | – | `on_no_data` (default inconclusive; never pass) |
//! | 3 | fewer than `min_samples` | – | – | – | inconclusive |
//! | 4 | enough | violated | – | – | fail (an absolute line needs no test) |
//! | 5 | enough | holds or none | set, baseline missing (with `baseline_by`: none at the window's values) or under `min_samples` | – | objective set: pass on it, the reason says the baseline was not judged; none: inconclusive |
//! | 6 | enough | holds or none | violated | yes | **fail** |
//! | 7 | enough | holds or none | violated | no | warn (too small a change to tell from noise) |
//! | 8 | enough | holds or none | holds or none | yes | warn (a real shift, still within the threshold), if it used at least [`WARN_SHARE`] of the margin to a baseline criterion's threshold; else pass |
//! | 9 | enough | holds or none | holds or none | no | pass |
//!
//! Row 7 has one exception: when neither side varies (both windows flat, as a gauge often is),
//! the test has nothing to rank and cannot speak, so the criterion alone decides (fail).
//! A significant *improvement* is never held against an SLO. `for` hysteresis is applied by the
//! caller over the per-step samples (in `eval`).

use serde::{Deserialize, Serialize};

use crate::spec::{CheckedSlo, Direction, Verdict};
use crate::stats;

mod clean;
pub use clean::{CLEAN_K, Clean, MIN_CLEAN};

/// Row 5's phrase when there is no baseline at all (`baseline_by` replaces it with the
/// configuration it looked for one at).
pub const NO_BASELINE: &str = "no baseline recorded for this SLO";

/// Significance level of the Mann–Whitney test.
pub const DEFAULT_ALPHA: f64 = 0.05;

/// Row 8 warns only for a shift that used at least this share of the margin between the
/// baseline and the criterion's threshold. A criterion states how much change is tolerable
/// (an absolute quarter core, +50 %); a shift the test can tell from noise but that spent less
/// than half of that allowance is what transitions do (a restarted process's CPU), not a
/// finding, and a warn nobody should read teaches people to ignore warns.
pub const WARN_SHARE: f64 = 0.5;

/// The share of the margin from `baseline` to `threshold` that `value` used (0 at the
/// baseline, 1 at the threshold); infinite for a zero margin, so any shift then warns.
fn margin_used(value: f64, baseline: f64, threshold: f64) -> f64 {
    let margin = (threshold - baseline).abs();
    if margin == 0.0 || !margin.is_finite() {
        return f64::INFINITY;
    }
    (value - baseline).abs() / margin
}

/// What a window was judged on, and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    pub verdict: Verdict,
    /// Mean of the window's samples.
    pub value: Option<f64>,
    /// Mean of the baseline's samples.
    pub baseline: Option<f64>,
    /// The threshold the relative criterion sets against the baseline.
    pub threshold: Option<f64>,
    /// Two-sided Mann–Whitney p-value of the window against the baseline.
    pub p_value: Option<f64>,
    /// Finite samples in the window.
    pub samples: usize,
    /// Finite samples in the baseline.
    #[serde(default)]
    pub baseline_samples: usize,
    /// Why, in a sentence, with the numbers.
    pub reason: String,
    /// The clean spread (a robust standard deviation, `stats::robust_sd`) of the earlier
    /// passing windows the relative threshold was allowed to widen to ([`Clean`]); `None`
    /// when there were fewer than [`MIN_CLEAN`] of them or the SLO has no relative criterion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spread: Option<f64>,
}

impl Evidence {
    /// A verdict and its reason, with no numbers yet.
    pub fn new(verdict: Verdict, reason: impl Into<String>) -> Evidence {
        Evidence {
            verdict,
            value: None,
            baseline: None,
            threshold: None,
            p_value: None,
            samples: 0,
            baseline_samples: 0,
            reason: reason.into(),
            spread: None,
        }
    }
}

/// The inputs of one judgement.
pub enum Window<'a> {
    /// The query failed with this message.
    Error(&'a str),
    /// The per-step samples of the judged window.
    Samples(&'a [f64]),
}

fn finite(xs: &[f64]) -> Vec<f64> {
    xs.iter().copied().filter(|x| x.is_finite()).collect()
}

/// Judges a window against the baseline's samples; see the module's table.
pub fn judge(
    slo: &CheckedSlo,
    window: Window<'_>,
    baseline: Option<&[f64]>,
    alpha: f64,
) -> Evidence {
    judge_clean(slo, window, baseline, Clean::default(), alpha)
}

/// [`judge`], with a relative threshold that knows the clean spread ([`Clean`]).
pub fn judge_clean(
    slo: &CheckedSlo,
    window: Window<'_>,
    baseline: Option<&[f64]>,
    clean: Clean<'_>,
    alpha: f64,
) -> Evidence {
    let base = baseline.map(finite).unwrap_or_default();
    let mut ev = Evidence {
        baseline: (!base.is_empty()).then(|| stats::mean(&base)),
        baseline_samples: base.len(),
        ..Evidence::new(Verdict::Inconclusive, "")
    };
    // Rows 1–3: nothing, or too little, to judge.
    let window = match window {
        Window::Error(e) => {
            ev.verdict = slo.spec.on_error;
            ev.reason = format!("query failed: {e}");
            return ev;
        }
        Window::Samples(s) => finite(s),
    };
    ev.samples = window.len();
    if window.is_empty() {
        ev.verdict = slo.spec.on_no_data;
        ev.reason = "no data in the window".to_owned();
        return ev;
    }
    if window.len() < slo.spec.min_samples {
        ev.reason = format!(
            "{} samples in the window, {} needed",
            window.len(),
            slo.spec.min_samples
        );
        return ev;
    }
    let value = stats::mean(&window);
    ev.value = Some(value);

    // Row 4: the absolute objective.
    if let Some(o) = slo.objective
        && !o.holds(value)
    {
        ev.verdict = Verdict::Fail;
        ev.reason = format!("{value:.6} breaks the objective {o}");
        return ev;
    }

    // The baseline counts only with as many samples as a window needs.
    let usable = base.len() >= slo.spec.min_samples.max(2);
    let base_mean = ev.baseline.filter(|_| usable);
    // Evidence carries the numbers the decision used, so a thin baseline is not shown as one.
    ev.baseline = base_mean;
    let test = usable
        .then(|| stats::mann_whitney(&window, &base))
        .flatten();
    ev.p_value = test.map(|t| t.p);
    let bad_way = base_mean.is_some_and(|b| match slo.direction {
        Direction::IncreaseIsBad => value > b,
        Direction::DecreaseIsBad => value < b,
        Direction::Either => value != b,
    });
    let significant = bad_way && ev.p_value.is_some_and(|p| p < alpha);
    let p_text = ev
        .p_value
        .map(|p| format!("p = {p:.3e}"))
        .unwrap_or_else(|| "no test".to_owned());

    match (slo.relative, base_mean) {
        // Row 5.
        (Some(_), None) => {
            let why = if base.is_empty() {
                NO_BASELINE.to_owned()
            } else {
                format!(
                    "the baseline has {} samples, {} needed",
                    base.len(),
                    slo.spec.min_samples.max(2)
                )
            };
            if let Some(o) = slo.objective {
                ev.verdict = Verdict::Pass;
                ev.reason = format!(
                    "{value:.6} meets the objective {o}; {why}, so the baseline criterion was not judged"
                );
            } else {
                ev.reason = why;
            }
        }
        (Some(r), Some(b)) => {
            let Some(mut check) = r.check(value, b) else {
                ev.reason = format!("cannot compare {value} with the baseline {b}");
                return ev;
            };
            ev.spread = clean.spread();
            let (threshold, widened) = clean::threshold(&r, b, ev.spread);
            check.threshold = threshold;
            check.holds = r.cmp.holds(value, threshold);
            ev.threshold = Some(check.threshold);
            let rule = match ev.spread {
                Some(sd) if widened => format!(
                    "`{r}`, widened to {CLEAN_K} × the clean spread {sd:.6} of {} passing windows",
                    clean.0.len()
                ),
                _ => format!("`{r}`"),
            };
            let against = format!(
                "{value:.6} against the baseline {b:.6} ({rule}, threshold {:.6}, {p_text})",
                check.threshold
            );
            // Both sides flat: no ranks to compare, the criterion alone decides.
            let flat = stats::stddev(&window) == 0.0 && stats::stddev(&base) == 0.0;
            (ev.verdict, ev.reason) = match (check.holds, significant) {
                (false, true) => (Verdict::Fail, format!("breaks: {against}")),
                (false, false) if flat => (
                    Verdict::Fail,
                    format!("breaks: {against}; both windows are flat, so no test is needed"),
                ),
                (false, false) => (
                    Verdict::Warn,
                    format!("breaks, but the shift is not significant: {against}"),
                ),
                (true, true) if margin_used(value, b, check.threshold) < WARN_SHARE => (
                    Verdict::Pass,
                    format!(
                        "within: {against}; a significant shift, but of {:.0} % of the margin to the threshold",
                        100.0 * margin_used(value, b, check.threshold)
                    ),
                ),
                (true, true) => (
                    Verdict::Warn,
                    format!("within the threshold, but shifted the bad way: {against}"),
                ),
                (true, false) => (Verdict::Pass, format!("within: {against}")),
            };
        }
        // Objective only (it held, or row 4 returned).
        (None, _) => {
            let met = slo
                .objective
                .map(|o| format!("{value:.6} meets the objective {o}"))
                .unwrap_or_else(|| format!("{value:.6}"));
            (ev.verdict, ev.reason) = match base_mean {
                Some(b) if significant => (
                    Verdict::Warn,
                    format!("{met}, but shifted the bad way from the baseline {b:.6} ({p_text})"),
                ),
                _ => (Verdict::Pass, met),
            };
        }
    }
    ev
}

/// Events counted over a window: `sum(increase(good))` and `sum(increase(total))`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Counts {
    pub good: f64,
    pub total: f64,
}

impl Counts {
    /// The bad events, never negative (counter resets can make `increase` disagree).
    pub fn bad(&self) -> f64 {
        (self.total - self.good).max(0.0)
    }
    /// How fast the window spent the budget: its error ratio over the budget `allowed`.
    pub fn burn(&self, allowed: f64) -> f64 {
        self.bad() / self.total / allowed
    }
}

/// Judges an SLO with a `budget` by its burn rate, the SRE workbook's multi-window rule made
/// for one judged window: the long window is the judged one, the short one its last quarter.
/// Rows in order, the first that matches decides:
///
/// | # | counts | long burn | short window | against the baseline (Mann–Whitney, ratio samples) | verdict |
/// |---|---|---|---|---|---|
/// | 1 | query failed | – | – | – | `on_error` |
/// | 2 | no events counted | – | – | – | `on_no_data` |
/// | 3 | ratio samples under `min_samples` | – | – | – | inconclusive |
/// | 4 | some | ≤ 1 (within the budget) | – | – | pass |
/// | 5 | some | > 1 | significantly below the budget (recovered) | – | warn |
/// | 6 | some | > 1 | burning, or too few events to tell | no significant shift the bad way | warn (the baseline burned as fast) |
/// | 7 | some | > 1 | burning, or too few events to tell | significant, flat, or no baseline | **fail** |
///
/// "Significantly below" is a one-sided Poisson test: the short window's bad events are fewer
/// than burning exactly the budget would give, with P(X ≤ bad) < α. With few events (a small
/// budget, a short window) that cannot happen, so thin data never clears a burning window.
pub fn judge_budget(
    slo: &CheckedSlo,
    window: Window<'_>,
    long: Option<Counts>,
    short: Option<Counts>,
    baseline: Option<&[f64]>,
    alpha: f64,
) -> Evidence {
    let base = baseline.map(finite).unwrap_or_default();
    let mut ev = Evidence {
        baseline_samples: base.len(),
        ..Evidence::new(Verdict::Inconclusive, "")
    };
    let Some(budget) = &slo.spec.budget else {
        ev.reason = "not an error-budget SLO".to_owned();
        return ev;
    };
    let allowed = budget.allowed();
    ev.threshold = Some(budget.target);
    let samples = match window {
        Window::Error(e) => {
            ev.verdict = slo.spec.on_error;
            ev.reason = format!("query failed: {e}");
            return ev;
        }
        Window::Samples(s) => finite(s),
    };
    ev.samples = samples.len();
    let Some(long) = long.filter(|c| c.total.is_finite() && c.good.is_finite() && c.total > 0.0)
    else {
        ev.verdict = slo.spec.on_no_data;
        ev.reason = "no events counted in the window".to_owned();
        return ev;
    };
    let ratio = (long.good / long.total).clamp(0.0, 1.0);
    ev.value = Some(ratio);
    let burn = long.burn(allowed);
    let spent = format!(
        "{:.4} % good of {:.0} events against the target {} % (burn rate {burn:.2})",
        ratio * 100.0,
        long.total,
        budget.target * 100.0
    );
    if samples.len() < slo.spec.min_samples {
        ev.reason = format!(
            "{spent}; {} ratio samples in the window, {} needed",
            samples.len(),
            slo.spec.min_samples
        );
        return ev;
    }
    // Row 4.
    if burn <= 1.0 {
        ev.verdict = Verdict::Pass;
        ev.reason = format!("within the error budget: {spent}");
        return ev;
    }
    // Row 5: the short window shows, beyond noise, that the burn stopped.
    if let Some(s) = short.filter(|c| c.total.is_finite() && c.total > 0.0) {
        let p = stats::poisson_cdf(s.bad().round() as u64, s.total * allowed);
        if p < alpha {
            ev.verdict = Verdict::Warn;
            ev.reason = format!(
                "burned the budget, then recovered: {spent}; the last quarter had {:.0} bad of {:.0} (burn rate {:.2}, p = {p:.3e} below the budget)",
                s.bad(),
                s.total,
                s.burn(allowed)
            );
            return ev;
        }
    }
    // Rows 6–7: the significance test against the baseline's ratio samples.
    let usable = base.len() >= slo.spec.min_samples.max(2);
    if !usable {
        ev.verdict = Verdict::Fail;
        ev.reason = format!(
            "burns the error budget: {spent}; no usable baseline to test against, the budget alone decides"
        );
        return ev;
    }
    let b = stats::mean(&base);
    ev.baseline = Some(b);
    let test = stats::mann_whitney(&samples, &base);
    ev.p_value = test.map(|t| t.p);
    let flat = stats::stddev(&samples) == 0.0 && stats::stddev(&base) == 0.0;
    let bad_way = stats::mean(&samples) < b;
    let significant = bad_way && (flat || ev.p_value.is_some_and(|p| p < alpha));
    let p_text = ev
        .p_value
        .map(|p| format!("p = {p:.3e}"))
        .unwrap_or_else(|| "no test".to_owned());
    (ev.verdict, ev.reason) = if significant {
        (
            Verdict::Fail,
            format!("burns the error budget: {spent}; below the baseline {b:.6} ({p_text})"),
        )
    } else {
        (
            Verdict::Warn,
            format!(
                "burns the error budget, but no worse than the baseline {b:.6} ({p_text}): {spent}"
            ),
        )
    };
    ev
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Specs;

    fn slo(extra: &str) -> CheckedSlo {
        let text = format!(
            "groups: [ {{ name: g, interval: 15s, slos: [ {{ name: s, expr: up, {extra} }} ] }} ]"
        );
        Specs::parse(&text, "t").unwrap().slos.remove(0)
    }

    /// Deterministic noise of ±2.4 % around `center`.
    fn noisy(center: f64, n: usize) -> Vec<f64> {
        (0..n)
            .map(|i| center * (1.0 + (((i * 7919) % 13) as f64 - 6.0) * 0.004))
            .collect()
    }

    /// Every row of the module's table, by number.
    #[test]
    fn the_decision_table() {
        let lat = slo("baseline: \"<= +20%\"");
        let both = slo("objective: \"<= 1\", baseline: \"<= +20%\"");
        let ok = slo("objective: \">= 0.99\"");
        let no_data_fails = slo("objective: \">= 0.99\", on_no_data: fail, on_error: warn");
        let base = noisy(0.1, 30);
        let a = DEFAULT_ALPHA;
        let overlapping_high = [0.09, 0.3, 0.1, 0.25, 0.11];
        let overlapping_base = [0.1, 0.12, 0.09, 0.2, 0.1];
        // (row, slo, window (None: the query failed), baseline, verdict)
        type Case<'a> = (
            u8,
            &'a CheckedSlo,
            Option<Vec<f64>>,
            Option<Vec<f64>>,
            Verdict,
        );
        let cases: Vec<Case> = vec![
            (1, &lat, None, Some(base.to_vec()), Verdict::Inconclusive),
            (1, &no_data_fails, None, None, Verdict::Warn),
            (
                2,
                &lat,
                Some(Vec::new()),
                Some(base.to_vec()),
                Verdict::Inconclusive,
            ),
            (
                2,
                &lat,
                Some([f64::NAN; 9].to_vec()),
                Some(base.to_vec()),
                Verdict::Inconclusive,
            ),
            (2, &no_data_fails, Some(Vec::new()), None, Verdict::Fail),
            (
                3,
                &lat,
                Some([0.4, 0.4].to_vec()),
                Some(base.to_vec()),
                Verdict::Inconclusive,
            ),
            (4, &ok, Some([0.5; 10].to_vec()), None, Verdict::Fail),
            (
                4,
                &both,
                Some(noisy(2.0, 30)),
                Some(base.to_vec()),
                Verdict::Fail,
            ),
            (5, &lat, Some(noisy(0.1, 30)), None, Verdict::Inconclusive),
            (
                5,
                &lat,
                Some(noisy(0.1, 30)),
                Some([0.1; 3].to_vec()),
                Verdict::Inconclusive,
            ),
            (5, &both, Some(noisy(0.1, 30)), None, Verdict::Pass),
            (
                6,
                &lat,
                Some(noisy(0.4, 30)),
                Some(base.to_vec()),
                Verdict::Fail,
            ),
            (
                7,
                &lat,
                Some(overlapping_high.to_vec()),
                Some(overlapping_base.to_vec()),
                Verdict::Warn,
            ),
            // A real shift that spent 70 % of the margin to the threshold warns ...
            (
                8,
                &lat,
                Some(noisy(0.114, 30)),
                Some(base.to_vec()),
                Verdict::Warn,
            ),
            // ... one that spent 20 % of it (however significant) passes.
            (
                8,
                &lat,
                Some(noisy(0.104, 30)),
                Some(base.to_vec()),
                Verdict::Pass,
            ),
            (
                8,
                &ok,
                Some(noisy(1.0, 30)),
                Some(noisy(1.2, 30)),
                Verdict::Warn,
            ),
            (
                9,
                &lat,
                Some(noisy(0.1, 30)),
                Some(base.to_vec()),
                Verdict::Pass,
            ),
            // An improvement, however significant, is a pass.
            (
                9,
                &lat,
                Some(noisy(0.02, 30)),
                Some(base.to_vec()),
                Verdict::Pass,
            ),
            (9, &ok, Some([1.0; 10].to_vec()), None, Verdict::Pass),
        ];
        for (row, s, w, b, want) in cases {
            let w = match &w {
                Some(w) => Window::Samples(w),
                None => Window::Error("connection refused"),
            };
            let e = judge(s, w, b.as_deref(), a);
            assert_eq!(e.verdict, want, "row {row}: {e:?}");
            assert!(!e.reason.is_empty(), "row {row}: no reason");
        }
    }

    /// Every row of `judge_budget`'s table: 99.5 % target (budget 0.5 %).
    #[test]
    fn the_budget_table() {
        let ok = slo_budget();
        let c = |good: f64, total: f64| Some(Counts { good, total });
        let clean = [1.0; 20];
        let base = [1.0; 20];
        let hurt: Vec<f64> = (0..20)
            .map(|i| if i % 3 == 0 { 0.96 } else { 0.98 })
            .collect();
        let a = DEFAULT_ALPHA;
        // (row, window samples (None: failed), long, short, baseline, verdict)
        type Case<'a> = (
            u8,
            Option<&'a [f64]>,
            Option<Counts>,
            Option<Counts>,
            Option<&'a [f64]>,
            Verdict,
        );
        let cases: Vec<Case> = vec![
            (
                1,
                None,
                c(1.0, 1.0),
                None,
                Some(&base),
                Verdict::Inconclusive,
            ),
            (
                2,
                Some(&clean),
                None,
                None,
                Some(&base),
                Verdict::Inconclusive,
            ),
            (
                2,
                Some(&clean),
                c(0.0, 0.0),
                None,
                Some(&base),
                Verdict::Inconclusive,
            ),
            (
                3,
                Some(&clean[..2]),
                c(240.0, 240.0),
                None,
                Some(&base),
                Verdict::Inconclusive,
            ),
            // 1 bad in 240 is 0.42 %: within the 0.5 % budget.
            (
                4,
                Some(&clean),
                c(239.0, 240.0),
                c(60.0, 60.0),
                Some(&base),
                Verdict::Pass,
            ),
            // 2 % bad, but the last quarter had none of 2000: recovered beyond noise.
            (
                5,
                Some(&hurt),
                c(7840.0, 8000.0),
                c(2000.0, 2000.0),
                Some(&base),
                Verdict::Warn,
            ),
            // 2 % bad and the baseline as bad: not this transition's doing.
            (
                6,
                Some(&hurt),
                c(235.0, 240.0),
                c(59.0, 60.0),
                Some(&hurt),
                Verdict::Warn,
            ),
            // 2 % bad against a clean baseline; a clean short window of 60 proves nothing.
            (
                7,
                Some(&hurt),
                c(235.0, 240.0),
                c(60.0, 60.0),
                Some(&base),
                Verdict::Fail,
            ),
            (
                7,
                Some(&hurt),
                c(235.0, 240.0),
                c(58.0, 60.0),
                None,
                Verdict::Fail,
            ),
        ];
        for (row, w, long, short, b, want) in cases {
            let w = match w {
                Some(w) => Window::Samples(w),
                None => Window::Error("connection refused"),
            };
            let e = judge_budget(&ok, w, long, short, b, a);
            assert_eq!(e.verdict, want, "row {row}: {e:?}");
            assert!(!e.reason.is_empty(), "row {row}: no reason");
        }
        let e = judge_budget(
            &ok,
            Window::Samples(&hurt),
            c(235.0, 240.0),
            None,
            Some(&base),
            a,
        );
        assert!(e.reason.contains("burn rate 4.17"), "{}", e.reason);
    }

    fn slo_budget() -> CheckedSlo {
        let text = "groups: [ { name: g, interval: 15s, slos: [ { name: s, budget: { good: 'x{r=\"ok\"}', total: x, target: 0.995 } } ] } ]";
        Specs::parse(text, "t").unwrap().slos.remove(0)
    }

    #[test]
    fn evidence_carries_the_numbers() {
        let lat = slo("baseline: \"<= +20%\"");
        let e = judge(
            &lat,
            Window::Samples(&noisy(0.4, 30)),
            Some(&noisy(0.1, 20)),
            DEFAULT_ALPHA,
        );
        assert_eq!(e.verdict, Verdict::Fail);
        assert_eq!((e.samples, e.baseline_samples), (30, 20));
        let (v, b, t, p) = (
            e.value.unwrap(),
            e.baseline.unwrap(),
            e.threshold.unwrap(),
            e.p_value.unwrap(),
        );
        assert!((b * 1.2 - t).abs() < 1e-12 && v > t && p < 1e-6, "{e:?}");
        assert!(
            e.reason.contains("breaks") && e.reason.contains("p ="),
            "{}",
            e.reason
        );
    }

    #[test]
    fn flat_gauges_and_directions() {
        // A flat gauge that moved past its threshold fails without a p-value to lean on.
        let flat = slo("baseline: \">= -5%\", min_samples: 2");
        let e = judge(
            &flat,
            Window::Samples(&[0.5; 2]),
            Some(&[1.0; 2]),
            DEFAULT_ALPHA,
        );
        assert_eq!(e.verdict, Verdict::Fail, "{e:?}");
        // `either`: a significant shift down (of 75 % of the margin) warns even though the
        // criterion is `<=`.
        let either = slo("baseline: \"<= +20%\", direction: either");
        let e = judge(
            &either,
            Window::Samples(&noisy(0.085, 30)),
            Some(&noisy(0.1, 30)),
            DEFAULT_ALPHA,
        );
        assert_eq!(e.verdict, Verdict::Warn, "{e:?}");
        // A stricter alpha turns a borderline fail into a warning.
        let lat = slo("baseline: \"<= +20%\"");
        // Window mean 0.14 over the threshold 0.13; SciPy's asymptotic p is 0.036.
        let w = [0.15, 0.12, 0.16, 0.13, 0.17, 0.11];
        let b = [0.10, 0.12, 0.09, 0.11, 0.10, 0.13];
        assert_eq!(
            judge(&lat, Window::Samples(&w), Some(&b), 0.05).verdict,
            Verdict::Fail
        );
        assert_eq!(
            judge(&lat, Window::Samples(&w), Some(&b), 0.01).verdict,
            Verdict::Warn
        );
    }

    proptest::proptest! {
        /// Whatever the samples, too few of them is never a pass, and no data never is.
        #[test]
        fn thin_or_missing_data_never_passes(
            n in 0usize..5,
            v in proptest::collection::vec(-1e3f64..1e3, 0..40),
        ) {
            let lat = slo("baseline: \"<= +20%\", objective: \"< 1e9\"");
            let e = judge(&lat, Window::Samples(&v[..n.min(v.len())]), Some(&v), DEFAULT_ALPHA);
            proptest::prop_assert_ne!(e.verdict, Verdict::Pass);
        }

        /// Moving the window further the bad way never makes the verdict better.
        #[test]
        fn worse_is_never_better(shift in 0.0f64..1.0, more in 0.0f64..1.0) {
            let lat = slo("baseline: \"<= +20%\"");
            let base = noisy(1.0, 30);
            let at = |s: f64| {
                let w: Vec<f64> = noisy(1.0, 30).iter().map(|x| x + s).collect();
                judge(&lat, Window::Samples(&w), Some(&base), DEFAULT_ALPHA).verdict
            };
            let rank = |v: Verdict| match v {
                Verdict::Pass => 0,
                Verdict::Warn => 1,
                Verdict::Fail => 2,
                Verdict::Inconclusive => 3,
            };
            proptest::prop_assert!(rank(at(shift)) <= rank(at(shift + more)));
        }
    }
}
