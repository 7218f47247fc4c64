//! The decision for one SLO over one window: the window's samples against the baseline's and
//! against the absolute objective, with a significance test so noise does not flap verdicts.
//!
//! | data | objective | baseline criterion (value = window mean) | significant shift the bad way | verdict |
//! |---|---|---|---|---|
//! | query failed | – | – | – | `on_error` (default inconclusive) |
//! | no samples | – | – | – | `on_no_data` (default inconclusive) |
//! | fewer than `min_samples` | – | – | – | inconclusive |
//! | enough | violated | – | – | fail |
//! | enough | holds or none | violated | yes (p < α) | fail |
//! | enough | holds or none | violated | no | warn (a change too small to tell from noise) |
//! | enough | holds or none | holds or none | yes | warn (a real shift, within the threshold) |
//! | enough | holds or none | holds or none | no | pass |
//!
//! With no baseline recorded for a relative SLO, only the objective is judged; with neither,
//! the verdict is inconclusive. A window of a single value repeated (a flat gauge) cannot show
//! significance; the criterion alone then decides between pass and fail.

use serde::{Deserialize, Serialize};

use crate::spec::{CheckedSlo, Direction, Verdict};
use crate::stats;

/// Significance level of the Mann–Whitney test.
pub const DEFAULT_ALPHA: f64 = 0.05;

/// What a window was judged on, and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    pub verdict: Verdict,
    /// Mean of the window's samples.
    pub value: Option<f64>,
    pub baseline: Option<f64>,
    /// The threshold the relative criterion sets against the baseline.
    pub threshold: Option<f64>,
    pub p_value: Option<f64>,
    pub samples: usize,
    pub reason: String,
}

/// The inputs of one judgement.
pub enum Window<'a> {
    /// The query failed with this message.
    Error(&'a str),
    /// The per-step samples of the judged window.
    Samples(&'a [f64]),
}

/// Judges a window against the baseline's samples.
pub fn judge(
    slo: &CheckedSlo,
    window: Window<'_>,
    baseline: Option<&[f64]>,
    alpha: f64,
) -> Evidence {
    let samples = match window {
        Window::Error(e) => {
            return Evidence {
                verdict: slo.spec.on_error,
                value: None,
                baseline: None,
                threshold: None,
                p_value: None,
                samples: 0,
                reason: format!("query failed: {e}"),
            };
        }
        Window::Samples(s) => s,
    };
    let clean: Vec<f64> = samples.iter().copied().filter(|x| x.is_finite()).collect();
    let base_clean: Option<Vec<f64>> =
        baseline.map(|b| b.iter().copied().filter(|x| x.is_finite()).collect());
    let empty = |verdict, reason: String| Evidence {
        verdict,
        value: None,
        baseline: base_clean.as_deref().map(stats::mean),
        threshold: None,
        p_value: None,
        samples: clean.len(),
        reason,
    };
    if clean.is_empty() {
        return empty(slo.spec.on_no_data, "no data in the window".to_owned());
    }
    if clean.len() < slo.spec.min_samples {
        return empty(
            Verdict::Inconclusive,
            format!("{} samples, {} needed", clean.len(), slo.spec.min_samples),
        );
    }
    let value = stats::mean(&clean);
    let base_mean = base_clean
        .as_deref()
        .filter(|b| !b.is_empty())
        .map(stats::mean);
    let threshold = slo.relative.zip(base_mean).map(|(r, b)| r.threshold(b));
    let test = base_clean
        .as_deref()
        .filter(|b| b.len() >= 2)
        .and_then(|b| stats::mann_whitney(&clean, b));
    let p_value = test.map(|t| t.p);
    // Is the shift the bad way for this SLO?
    let bad_way = match (slo.direction, base_mean) {
        (Direction::IncreaseIsBad, Some(b)) => value > b,
        (Direction::DecreaseIsBad, Some(b)) => value < b,
        (Direction::Either, Some(_)) => true,
        (_, None) => false,
    };
    let significant = p_value.is_some_and(|p| p < alpha) && bad_way;
    let mut evidence = Evidence {
        verdict: Verdict::Pass,
        value: Some(value),
        baseline: base_mean,
        threshold,
        p_value,
        samples: clean.len(),
        reason: String::new(),
    };
    if let Some(o) = slo.objective
        && !o.holds(value)
    {
        evidence.verdict = Verdict::Fail;
        evidence.reason = format!("{value:.6} breaks the objective {o}");
        return evidence;
    }
    match (slo.relative, base_mean, threshold) {
        (Some(r), Some(b), Some(t)) if !r.holds(value, b) => {
            let flat = test.is_some_and(|t| t.z == 0.0 && t.p == 1.0)
                || stats::stddev(&clean) == 0.0
                    && base_clean
                        .as_deref()
                        .is_some_and(|b| stats::stddev(b) == 0.0);
            if significant || flat {
                evidence.verdict = Verdict::Fail;
                evidence.reason = format!(
                    "{value:.6} breaks `{r}` against the baseline {b:.6} (threshold {t:.6}){}",
                    p_value
                        .map(|p| format!(", p = {p:.2e}"))
                        .unwrap_or_default()
                );
            } else {
                evidence.verdict = Verdict::Warn;
                evidence.reason = format!(
                    "{value:.6} breaks `{r}` against the baseline {b:.6} (threshold {t:.6}), but the shift is not significant (p = {:.3})",
                    p_value.unwrap_or(1.0)
                );
            }
        }
        (Some(_), None, _) if slo.objective.is_none() => {
            evidence.verdict = Verdict::Inconclusive;
            evidence.reason = "no baseline recorded for this SLO".to_owned();
        }
        _ if significant => {
            evidence.verdict = Verdict::Warn;
            evidence.reason = format!(
                "within its criteria, but shifted the bad way (p = {:.2e})",
                p_value.unwrap_or(1.0)
            );
        }
        _ => {
            evidence.reason = "within its criteria".to_owned();
        }
    }
    evidence
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

    fn noisy(center: f64, n: usize) -> Vec<f64> {
        (0..n)
            .map(|i| center + ((i * 7919) % 13) as f64 * center * 0.004)
            .collect()
    }

    #[test]
    fn the_decision_table() {
        let lat = slo("baseline: \"<= +20%\"");
        let base = noisy(0.1, 30);
        let cases = [
            (Window::Samples(&noisy(0.1, 30)), Verdict::Pass),
            (Window::Samples(&noisy(0.4, 30)), Verdict::Fail),
            (Window::Samples(&[]), Verdict::Inconclusive),
            (Window::Samples(&[0.4, 0.4]), Verdict::Inconclusive),
            (Window::Error("connection refused"), Verdict::Inconclusive),
        ];
        for (w, want) in cases {
            let e = judge(&lat, w, Some(&base), DEFAULT_ALPHA);
            assert_eq!(e.verdict, want, "{e:?}");
        }
        // A real shift within the threshold: warn.
        let e = judge(
            &lat,
            Window::Samples(&noisy(0.108, 30)),
            Some(&base),
            DEFAULT_ALPHA,
        );
        assert_eq!(e.verdict, Verdict::Warn, "{e:?}");
        // Over the threshold but not significant (few, overlapping samples): warn, not fail.
        let e = judge(
            &lat,
            Window::Samples(&[0.09, 0.3, 0.1, 0.25, 0.11]),
            Some(&[0.1, 0.12, 0.09, 0.2, 0.1]),
            DEFAULT_ALPHA,
        );
        assert_eq!(e.verdict, Verdict::Warn, "{e:?}");
        // Improvement is never bad.
        let e = judge(
            &lat,
            Window::Samples(&noisy(0.02, 30)),
            Some(&base),
            DEFAULT_ALPHA,
        );
        assert_eq!(e.verdict, Verdict::Pass, "{e:?}");
        // No baseline and no objective: inconclusive, never pass.
        let e = judge(&lat, Window::Samples(&noisy(0.1, 30)), None, DEFAULT_ALPHA);
        assert_eq!(e.verdict, Verdict::Inconclusive, "{e:?}");
    }

    #[test]
    fn objectives_and_configured_no_data_verdicts() {
        let ok = slo("objective: \">= 0.99\", on_no_data: fail");
        assert_eq!(
            judge(&ok, Window::Samples(&[1.0; 10]), None, DEFAULT_ALPHA).verdict,
            Verdict::Pass
        );
        let e = judge(&ok, Window::Samples(&[0.5; 10]), None, DEFAULT_ALPHA);
        assert_eq!(e.verdict, Verdict::Fail);
        assert!(
            e.reason.contains("breaks the objective >= 0.99"),
            "{}",
            e.reason
        );
        assert_eq!(
            judge(&ok, Window::Samples(&[]), None, DEFAULT_ALPHA).verdict,
            Verdict::Fail
        );
        // A flat gauge that moved past its threshold fails without a p-value to lean on.
        let flat = slo("baseline: \">= -5%\"");
        let e = judge(
            &flat,
            Window::Samples(&[0.5; 10]),
            Some(&[1.0; 10]),
            DEFAULT_ALPHA,
        );
        assert_eq!(e.verdict, Verdict::Fail, "{e:?}");
    }
}
