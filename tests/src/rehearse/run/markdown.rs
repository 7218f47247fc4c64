//! The rehearsal's outcome as the markdown table of BENCHMARKS.md.

use super::Outcome;

impl Outcome {
    /// A markdown table of the transitions, then the SLOs that did not pass, the criteria.
    pub fn markdown(&self) -> String {
        let mut s = format!(
            "overlay `{}` ({} stack), {} s{}\n\n| gen | change | disruption | steady |\n|---|---|---|---|\n",
            self.overlay,
            self.target,
            self.seconds,
            self.fault
                .as_ref()
                .map(|f| format!(", fault: {f}"))
                .unwrap_or_default()
        );
        for r in &self.rows {
            s.push_str(&format!(
                "| {} | {} | {} | {} |\n",
                r.generation, r.change, r.disruption, r.steady
            ));
        }
        let np: Vec<String> = self
            .rows
            .iter()
            .flat_map(|r| {
                r.not_passed
                    .iter()
                    .map(move |n| format!("- gen {}: {n}", r.generation))
            })
            .collect();
        if !np.is_empty() {
            s.push_str("\nSLOs that did not pass:\n");
            s.push_str(&np.join("\n"));
            s.push('\n');
        }
        if self.unmet.is_empty() {
            s.push_str("\nall criteria held\n");
        } else {
            s.push_str("\ncriteria not met:\n");
            for u in &self.unmet {
                s.push_str(&format!("- {u}\n"));
            }
        }
        s
    }
}
