//! Which baseline a steady window is judged against: one function for the first window
//! (`eval`) and the chunks (`chunks`).
//!
//! An SLO without `baseline_by` is judged against the recorded baseline file, whatever
//! configuration it was taken at. An SLO with `baseline_by: [keys]` (a tunable that moves it by
//! design, such as Agones' allocation batch wait) is compared only with a baseline taken at the
//! same values of those keys as the judged transition's configuration, in this order:
//! 1. the recorded baseline, if its `configuration` has the same values;
//! 2. else a learned one: the samples of the latest steady window (first window or chunk) of
//!    an EARLIER transition at the same values whose verdict on this SLO was pass — never a
//!    failed, warned or inconclusive window, so a regression never becomes the baseline, and
//!    never the transition's own earlier windows, so a slow drift is not compared with itself
//!    an hour earlier. The transition must also have passed as a whole ([`lends`]): none of
//!    its windows (first, chunks, disruption) failed or was inconclusive on ANY SLO. A
//!    transition that failed `allocation-success` does not lend its latency window, however
//!    that window judged alone (issue 24: a clean transition then failed by a hair against a
//!    broken one's latency). A warn elsewhere does not disqualify it: a warn is a note for a
//!    reader that the exit code counts as a pass (`report::exit_code`), and the lending window
//!    itself must still pass. Only the latest windows keep samples (`history::SAMPLE_WINDOWS`);
//! 3. else none: the judge table's "baseline missing" row (objective decides, else
//!    inconclusive), with a reason naming the values looked for.
//!
//! The evidence's reason ends with where the baseline came from.

use std::collections::BTreeMap;

use crate::baseline::{self, Baseline};
use crate::history::{History, Transition};
use crate::judge::{self, Evidence};
use crate::spec::{CheckedSlo, Verdict};
use crate::wanderer;

/// Where a window's baseline came from.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    /// The recorded baseline file (for an SLO without `baseline_by`: always).
    Recorded,
    /// A passing steady window of the transition of this generation.
    Learned { generation: u64 },
    /// None at the window's configuration: why, in a phrase with the values.
    Missing(String),
}

/// The baseline chosen for one SLO's window.
#[derive(Clone, Debug, PartialEq)]
pub struct Chosen {
    /// The baseline's samples; `None` when there is none.
    pub samples: Option<Vec<f64>>,
    pub source: Source,
    /// `key=value, …` of the window's configuration; `None` for an SLO without `baseline_by`.
    pub at: Option<String>,
    /// The clean spread's values: [`clean_values`].
    pub clean: Vec<f64>,
}

/// The baseline of SLO `s` for a steady window of transition `i` of `h`.
pub fn choose(s: &CheckedSlo, recorded: Option<&Baseline>, h: &History, i: usize) -> Chosen {
    let key = baseline::key(&s.group, &s.spec.name);
    let from_file = |b: &Baseline| b.slos.get(&key).map(|b| b.samples.clone());
    let keys = &s.baseline_by;
    let clean = clean_values(s, h, i);
    let Some(t) = h.transitions.get(i).filter(|_| !keys.is_empty()) else {
        return Chosen {
            samples: recorded.and_then(from_file),
            source: Source::Recorded,
            at: None,
            clean,
        };
    };
    let at = wanderer::describe_values(&t.to, keys);
    let matching = |c: &BTreeMap<String, String>| wanderer::same_values(c, &t.to, keys);
    if let Some(samples) = recorded
        .filter(|b| matching(&b.configuration))
        .and_then(from_file)
    {
        return Chosen {
            samples: Some(samples),
            source: Source::Recorded,
            at: Some(at),
            clean,
        };
    }
    if let Some((generation, samples)) = learned(&key, h, i, &matching) {
        return Chosen {
            samples: Some(samples),
            source: Source::Learned { generation },
            at: Some(at),
            clean,
        };
    }
    let recorded_at = match recorded {
        None => "no baseline recorded".to_owned(),
        Some(b) if matching(&b.configuration) => "the recorded one has no samples of it".to_owned(),
        Some(b) => format!(
            "the recorded one is at {}",
            wanderer::describe_values(&b.configuration, keys)
        ),
    };
    Chosen {
        samples: None,
        source: Source::Missing(format!(
            "no baseline at {at} ({recorded_at}, and no earlier passing window at it)"
        )),
        at: Some(at),
        clean,
    }
}

/// The latest passing steady window of SLO `key` with samples, of a transition before `i`
/// whose configuration `matching` accepts: its generation and values.
fn learned(
    key: &str,
    h: &History,
    i: usize,
    matching: &dyn Fn(&BTreeMap<String, String>) -> bool,
) -> Option<(u64, Vec<f64>)> {
    h.transitions[..i.min(h.transitions.len())]
        .iter()
        .rev()
        .filter(|t| matching(&t.to) && lends(t))
        .find_map(|t| {
            // Latest first: the chunks from the last, then the first window.
            t.chunks
                .iter()
                .rev()
                .chain(t.judged.iter())
                .filter_map(|w| w.slos.get(key))
                .find(|v| v.evidence.verdict == Verdict::Pass && !v.samples.is_empty())
                .map(|v| (t.generation, v.samples.iter().map(|(_, x)| *x).collect()))
        })
}

/// Whether transition `t` passed as a whole, so its windows may serve as a baseline: it has
/// a judged first window, and none of its windows (first window, chunks, disruption window)
/// has an SLO that failed or was inconclusive. A still-partial group verdict counts as not
/// judged yet.
pub fn lends(t: &Transition) -> bool {
    let bad = |v: Verdict| matches!(v, Verdict::Fail | Verdict::Inconclusive);
    let Some(first) = &t.judged else {
        return false;
    };
    let windows = std::iter::once(first).chain(&t.chunks).flat_map(|w| {
        w.slos
            .values()
            .map(|v| v.evidence.verdict)
            .chain([w.verdict])
    });
    let disruption = t.disruption.iter().flat_map(|d| {
        d.slos
            .values()
            .map(|v| v.evidence.verdict)
            .chain([d.verdict])
    });
    !windows.chain(disruption).any(bad)
}

/// At most this many clean values, the latest: the spread follows what transitions do now,
/// and a weeks-long history costs the same to judge as a day's.
pub const CLEAN_WINDOWS: usize = 48;

/// The values of SLO `key` in the passing steady windows (first window and chunks) of the
/// transitions before `i` that passed as a whole ([`lends`]), at the same `baseline_by`
/// values as transition `i` when `s` has any: the clean spread a relative threshold widens
/// to (`judge::Clean`). The latest [`CLEAN_WINDOWS`], oldest first.
pub fn clean_values(s: &CheckedSlo, h: &History, i: usize) -> Vec<f64> {
    let key = baseline::key(&s.group, &s.spec.name);
    let Some(t) = h.transitions.get(i) else {
        return Vec::new();
    };
    let mut out: Vec<f64> = h.transitions[..i]
        .iter()
        .rev()
        .filter(|o| wanderer::same_values(&o.to, &t.to, &s.baseline_by) && lends(o))
        .flat_map(|o| o.chunks.iter().rev().chain(o.judged.iter()))
        .filter_map(|w| w.slos.get(&key))
        .filter(|v| v.evidence.verdict == Verdict::Pass)
        .filter_map(|v| v.evidence.value)
        .filter(|x| x.is_finite())
        .take(CLEAN_WINDOWS)
        .collect();
    out.reverse();
    out
}

/// The judged values of SLO `s` in earlier transitions that `eval::usual_shift` compares a
/// shift with: `all` (every transition, `eval::earlier_values`) for an SLO without
/// `baseline_by`; for one with it, only the transitions at the same values as transition `i`
/// (a spread over other batch waits is no measure of this one's).
pub fn spread(
    s: &CheckedSlo,
    h: &History,
    i: usize,
    all: &BTreeMap<String, Vec<f64>>,
) -> Option<Vec<f64>> {
    let key = baseline::key(&s.group, &s.spec.name);
    let Some(t) = h.transitions.get(i).filter(|_| !s.baseline_by.is_empty()) else {
        return all.get(&key).cloned();
    };
    Some(
        h.transitions
            .iter()
            .filter(|o| wanderer::same_values(&o.to, &t.to, &s.baseline_by))
            .filter_map(|o| o.judged.as_ref()?.slos.get(&key)?.evidence.value)
            .filter(|x| x.is_finite())
            .collect(),
    )
}

impl Chosen {
    /// Says in `ev`'s reason where the baseline came from; a missing one replaces the judge's
    /// "no baseline recorded" with the values it was looked for at. Nothing for an SLO
    /// without `baseline_by`.
    pub fn explain(&self, ev: &mut Evidence) {
        let Some(at) = &self.at else { return };
        let note = match &self.source {
            Source::Recorded => format!("baseline recorded at {at}"),
            Source::Learned { generation } => {
                format!("baseline learned from generation {generation} at {at}")
            }
            Source::Missing(why) if ev.reason.contains(judge::NO_BASELINE) => {
                ev.reason = ev.reason.replace(judge::NO_BASELINE, why);
                return;
            }
            Source::Missing(why) => why.clone(),
        };
        ev.reason = if ev.reason.is_empty() {
            note
        } else {
            format!("{}; {note}", ev.reason)
        };
    }
}

#[cfg(test)]
mod tests;
