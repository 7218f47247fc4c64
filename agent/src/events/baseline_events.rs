//! The baseline in use, as events (part of [`crate::events`]): loaded at start, recorded for
//! other specs, or recorded (or not) by `--baseline auto` before a transition's apply.

use super::*;

/// The baseline given was recorded for other SLO specs (its spec hash differs): the SLOs it
/// lacks are judged on their objectives only.
pub struct BaselineOfOtherSpecs<'a> {
    pub path: &'a std::path::Path,
}

impl BaselineOfOtherSpecs<'_> {
    pub fn emit(&self) {
        tracing::warn!(
            baseline = %self.path.display(),
            "the baseline was recorded for other SLO specs; SLOs it lacks are judged on objectives only"
        );
    }
}

/// The baseline the agent judges against, at start (`--baseline FILE`, or `auto` with its file
/// already there): its SLOs are exported as a count.
pub struct BaselineLoaded<'a> {
    pub path: &'a std::path::Path,
    pub baseline: &'a crate::baseline::Baseline,
}

impl BaselineLoaded<'_> {
    pub fn emit(&self, m: &AgentMetrics) {
        tracing::info!(
            baseline = %self.path.display(),
            slos = self.baseline.slos.len(),
            from = self.baseline.from,
            to = self.baseline.to,
            "baseline loaded"
        );
        m.baseline_slos.set(self.baseline.slos.len() as i64);
    }
}

/// `--baseline auto` recorded the baseline before a transition's apply: that transition and
/// every later one are judged against it. Each SLO left out is logged with why.
pub struct BaselineAutoRecorded<'a> {
    pub generation: u64,
    pub recorded: &'a crate::baseline::Recorded,
    pub window: &'a crate::baseline::auto::Window,
    pub path: &'a std::path::Path,
    /// Why the file could not be written, when it could not: the baseline is used anyway,
    /// but a restart will not find it.
    pub unsaved: Option<&'a crate::Error>,
}

impl BaselineAutoRecorded<'_> {
    pub fn emit(&self, m: &AgentMetrics) {
        let b = &self.recorded.baseline;
        tracing::info!(
            generation = self.generation,
            from = b.from,
            to = b.to,
            slos = b.slos.len(),
            left_out = self.recorded.left_out.len(),
            window = %self.window.bounds,
            baseline = %self.path.display(),
            "baseline recorded before the transition's apply; judging against it from this transition on"
        );
        for l in &self.recorded.left_out {
            tracing::warn!(
                slo = %l.key,
                needed = l.needed,
                why = %l.why,
                "left out of the automatic baseline"
            );
        }
        if let Some(e) = self.unsaved {
            tracing::error!(
                baseline = %self.path.display(),
                error = %crate::error::chain(e),
                "cannot write the automatic baseline: it is used, but a restart will record another"
            );
        }
        m.baseline_slos.set(b.slos.len() as i64);
    }
}

/// `--baseline auto` could not record a baseline before a transition: it is judged on
/// objectives only, and the next transition is tried (`retry`: this one, at the next slot).
pub struct BaselineAutoNotRecorded<'a> {
    pub generation: u64,
    pub why: &'a str,
    pub retry: bool,
}

impl BaselineAutoNotRecorded<'_> {
    pub fn emit(&self) {
        tracing::warn!(
            generation = self.generation,
            why = %self.why,
            retry = self.retry,
            "no automatic baseline before this transition (until one is recorded, SLOs are judged on objectives only)"
        );
    }
}
