//! Error budgets: an SLO stated as a target share of good events among all events (a ratio of
//! two counters), judged by how fast a window burns the budget `1 − target`, the way the SRE
//! workbook's multi-window, multi-burn-rate alerts (and Sloth and Pyrra, which generate them)
//! do. The judge's side is `judge::judge_budget`; the rules' side is `rules::burn_rules`.

use serde::{Deserialize, Serialize};

/// An error-budget objective on a ratio of counters: `target` of the `total` events must be
/// `good`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    /// Counter selector of the good events, e.g. `x_total{result="ok"}` (vars substituted).
    pub good: String,
    /// Counter selector of every event, e.g. `x_total` (vars substituted).
    pub total: String,
    /// Share of events that must be good, in (0, 1), e.g. `0.995`.
    pub target: f64,
}

impl Budget {
    /// The error budget: the share of events allowed to be bad.
    pub fn allowed(&self) -> f64 {
        1.0 - self.target
    }

    /// The good/total ratio over `range` (a PromQL duration such as `1m`). The numerator falls
    /// back to zero only where the denominator has data, so an unscraped target stays no data.
    pub fn ratio_expr(&self, range: &str) -> String {
        let (good, total) = self.rates(range);
        format!("({good} or {total} * 0) / {total}")
    }

    /// `sum(rate(good[range]))` and `sum(rate(total[range]))`.
    pub fn rates(&self, range: &str) -> (String, String) {
        (
            format!("sum(rate({}[{range}]))", self.good),
            format!("sum(rate({}[{range}]))", self.total),
        )
    }

    /// `sum(increase(…[range]))` of the good and the total events.
    pub fn increases(&self, range: &str) -> (String, String) {
        (
            format!("sum(increase({}[{range}]))", self.good),
            format!("sum(increase({}[{range}]))", self.total),
        )
    }
}
