//! The clean spread a relative threshold widens to (issue 24 item 5).

use crate::criteria::{Cmp, Relative};
use crate::stats;

/// A relative threshold takes the clean spread into account only once there are at least
/// this many earlier passing windows to measure it on.
pub const MIN_CLEAN: usize = 5;

/// A relative threshold is never closer to the baseline than this many clean spreads.
pub const CLEAN_K: f64 = 3.0;

/// The clean spread of an SLO: its values in the earlier passing windows of transitions that
/// passed as a whole (`baseline_by::clean_values`, at the same `baseline_by` values).
///
/// Some SLOs' clean value moves between transitions by more than their criterion allows (a
/// latency with Agones' batch loop in it, a restarted controller's memory): against a
/// baseline at one end of that range, a clean transition at the other fails by a hair
/// (issue 24). So a relative criterion's threshold is the looser of the criterion's and
/// `baseline ± CLEAN_K × spread` (`+` for `<=`/`<`, `-` for `>=`/`>`; `==` is left alone),
/// with `spread` the robust standard deviation (`stats::robust_sd`) of those values, once
/// there are [`MIN_CLEAN`] of them. The evidence shows the spread and the reason says when it
/// set the threshold. Only passing windows count, so a regression never widens its own
/// threshold; one larger than `CLEAN_K` clean spreads (and than the criterion) still fails.
#[derive(Clone, Copy, Debug, Default)]
pub struct Clean<'a>(pub &'a [f64]);

impl Clean<'_> {
    /// The robust standard deviation of the clean values, when there are enough of them.
    pub fn spread(&self) -> Option<f64> {
        (self.0.len() >= MIN_CLEAN)
            .then(|| stats::robust_sd(self.0))
            .filter(|sd| sd.is_finite())
    }
}

/// The threshold of `r` against `b`, widened to `CLEAN_K` spreads when that is looser, and
/// whether it was widened.
pub(super) fn threshold(r: &Relative, b: f64, spread: Option<f64>) -> (f64, bool) {
    let own = r.threshold(b);
    let Some(sd) = spread else {
        return (own, false);
    };
    match r.cmp {
        Cmp::Le | Cmp::Lt if b + CLEAN_K * sd > own => (b + CLEAN_K * sd, true),
        Cmp::Ge | Cmp::Gt if b - CLEAN_K * sd < own => (b - CLEAN_K * sd, true),
        _ => (own, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judge::{DEFAULT_ALPHA, Window, judge_clean};
    use crate::spec::{CheckedSlo, Specs, Verdict};

    fn slo(baseline: &str) -> CheckedSlo {
        let text = format!(
            "groups: [ {{ name: g, interval: 15s, slos: [ {{ name: s, expr: up, baseline: \"{baseline}\", min_samples: 3 }} ] }} ]"
        );
        Specs::parse(&text, "t").unwrap().slos.remove(0)
    }

    /// Deterministic noise of ±1.2 % around `center`.
    fn noisy(center: f64, n: usize) -> Vec<f64> {
        (0..n)
            .map(|i| center * (1.0 + (((i * 7919) % 13) as f64 - 6.0) * 0.002))
            .collect()
    }

    #[test]
    fn the_threshold_widens_to_the_clean_spread_only_with_enough_windows_and_only_looser() {
        let r = Relative::parse("<= +0.025").unwrap();
        // Clean p99s of earlier transitions: median 0.2, deviations 0, 0.01 ×2, 0.02 ×2
        // -> MAD 0.01, robust sd 0.014826.
        let clean = [0.2, 0.21, 0.19, 0.22, 0.18];
        let sd = Clean(&clean).spread().unwrap();
        assert!((sd - 0.014_826_022_185_056).abs() < 1e-9, "{sd}");
        let (t, widened) = threshold(&r, 0.2, Some(sd));
        assert!(widened && (t - (0.2 + 3.0 * sd)).abs() < 1e-12, "{t}");
        // One window short of MIN_CLEAN: no spread, the criterion alone.
        assert_eq!(Clean(&clean[..MIN_CLEAN - 1]).spread(), None);
        assert_eq!(threshold(&r, 0.2, None), (0.225, false));
        // A spread tighter than the criterion never narrows it.
        let (t, widened) = threshold(&r, 0.2, Some(0.001));
        assert!(!widened && (t - 0.225).abs() < 1e-12);
        // `>=` widens downwards.
        let ge = Relative::parse(">= -1%").unwrap();
        let (t, widened) = threshold(&ge, 1.0, Some(0.01));
        assert!(widened && (t - 0.97).abs() < 1e-12, "{t}");
        // `==` is left alone.
        let eq = Relative::parse("== +0").unwrap();
        assert_eq!(threshold(&eq, 1.0, Some(0.5)), (1.0, false));
    }

    #[test]
    fn a_clean_value_at_the_far_end_of_the_spread_passes_and_a_regression_still_fails() {
        let s = slo("<= +0.025");
        let base = noisy(0.2, 20);
        let clean = [0.2, 0.21, 0.19, 0.22, 0.18, 0.2];
        // A clean window at 0.235: past `+0.025` (0.225), within 3 clean spreads (0.2445).
        let window = noisy(0.235, 20);
        let alone = judge_clean(
            &s,
            Window::Samples(&window),
            Some(&base),
            Clean(&[]),
            DEFAULT_ALPHA,
        );
        assert_eq!(alone.verdict, Verdict::Fail, "{}", alone.reason);
        assert_eq!(alone.spread, None);
        let ev = judge_clean(
            &s,
            Window::Samples(&window),
            Some(&base),
            Clean(&clean),
            DEFAULT_ALPHA,
        );
        assert_ne!(ev.verdict, Verdict::Fail, "{}", ev.reason);
        assert!(
            ev.spread
                .is_some_and(|sd| (sd - 0.014_826_022_185_056).abs() < 1e-9)
        );
        assert!(
            ev.reason.contains(
                "widened to 3 × the clean spread 0.014826 of 6 passing windows, threshold 0.244478"
            ),
            "{}",
            ev.reason
        );
        // The demo's regression (+70 ms) is far past both.
        let slow = noisy(0.27, 20);
        let ev = judge_clean(
            &s,
            Window::Samples(&slow),
            Some(&base),
            Clean(&clean),
            DEFAULT_ALPHA,
        );
        assert_eq!(ev.verdict, Verdict::Fail, "{}", ev.reason);
    }
}
