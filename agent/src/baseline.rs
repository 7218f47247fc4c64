//! Baselines: each SLO's samples over a steady window, with their statistics, the query, the
//! configuration they were taken under and a hash of the specs. Stored as a versioned JSON file
//! written atomically (a crash leaves the old file or the new one, never half of one).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::prom::Querier;
use crate::spec::Specs;
use crate::stats;
use crate::wanderer;
use crate::{Error, Result};

pub mod auto;

/// Version of the baseline file format.
pub const FORMAT_VERSION: u32 = 1;

/// A baseline file.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Baseline {
    pub format_version: u32,
    pub spec_hash: String,
    pub from: i64,
    pub to: i64,
    pub step_seconds: f64,
    /// The Wanderer's configuration at the end of the window (version, gates, tunables), as
    /// [`wanderer::configuration`] reads it.
    pub configuration: BTreeMap<String, String>,
    /// By `group/slo`.
    pub slos: BTreeMap<String, SloBaseline>,
    /// True in a hand-written example (`rules/baseline.example.json`): its numbers were never
    /// measured, so `rules export` refuses to turn them into thresholds.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub example: bool,
}

/// One SLO's baseline.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SloBaseline {
    pub query: String,
    pub samples: Vec<f64>,
    pub count: usize,
    pub mean: f64,
    pub stddev: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
}

/// Key of an SLO in a baseline: `group/slo`.
pub fn key(group: &str, slo: &str) -> String {
    format!("{group}/{slo}")
}

/// An SLO that a recorded baseline leaves out, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct LeftOut {
    /// `group/slo`.
    pub key: String,
    /// Why, in a sentence.
    pub why: String,
    /// True when the SLO needs a baseline (a relative criterion, or a budget whose
    /// significance test reads it); false for an objective-only SLO, judged without one.
    pub needed: bool,
}

/// A recorded baseline and the SLOs it leaves out.
#[derive(Clone, Debug, PartialEq)]
pub struct Recorded {
    pub baseline: Baseline,
    pub left_out: Vec<LeftOut>,
}

impl Recorded {
    /// One line per SLO left out: `  group/slo: why`, and what that means for judging it.
    pub fn describe_left_out(&self) -> String {
        let mut out = String::new();
        for l in &self.left_out {
            let then = match l.needed {
                true => "its baseline criterion is not judged (objective only, or inconclusive)",
                false => "objective only, it needs no baseline",
            };
            out.push_str(&format!("  {}: {} ({then})\n", l.key, l.why));
        }
        out
    }
}

/// Why an SLO's samples over [from, to] are too few for a baseline, or `None` when they
/// suffice: no series at all, or fewer than `min_samples` finite samples (with where they start,
/// so a warm-up or a metric that appeared late reads as such).
fn too_few(series: &[(f64, f64)], min_samples: usize, from: i64, step: f64) -> Option<String> {
    let finite: Vec<f64> = series
        .iter()
        .filter(|(_, v)| v.is_finite())
        .map(|(t, _)| *t)
        .collect();
    if finite.len() >= min_samples {
        return None;
    }
    let need = format!(
        "min_samples {min_samples} needs at least {}s of data at a {step}s step",
        ((min_samples.saturating_sub(1)) as f64 * step).ceil()
    );
    Some(match finite.first() {
        None if series.is_empty() => format!(
            "no series in the window (a metric this stack does not export, not scraped yet, or an expression filtering everything out, as a warm-up does); {need}"
        ),
        None => format!("no finite sample in the window (NaN or ±Inf only); {need}"),
        Some(first) => {
            let late = *first - from as f64;
            let start = if late > step {
                format!(
                    ", its series starting {late:.0}s into the window (a warm-up, or a metric that appeared late)"
                )
            } else {
                String::new()
            };
            format!("{} of {min_samples} samples{start}; {need}", finite.len())
        }
    })
}

/// Range-queries every steady SLO over [from, to] at `step` and summarizes each that has at
/// least `min_samples` finite samples; the others are left out, each with why. Refuses a
/// window with a Wanderer transition inside, and a window in which no SLO has enough samples
/// ([`Error::NothingRecorded`]).
pub async fn record<Q: Querier>(
    q: &Q,
    specs: &Specs,
    from: i64,
    to: i64,
    step: f64,
) -> Result<Recorded> {
    record_by(q, specs, from, to, |_| step).await
}

/// [`record`] with each group's SLOs at the step `step_of(group)` gives (`run --baseline auto`
/// records each group at the step its windows are judged at).
pub async fn record_by<Q: Querier>(
    q: &Q,
    specs: &Specs,
    from: i64,
    to: i64,
    step_of: impl Fn(&str) -> f64,
) -> Result<Recorded> {
    let step = specs
        .file
        .groups
        .iter()
        .map(|g| step_of(&g.name))
        .fold(f64::INFINITY, f64::min);
    let step = if step.is_finite() { step } else { 15.0 };
    // A change of the Wanderer's generation inside the window means it is not steady.
    let generation = q.range(wanderer::GENERATION, from, to, step).await?;
    let mut values: Vec<f64> = generation.iter().map(|(_, v)| *v).collect();
    values.dedup();
    if values.len() > 1 {
        return Err(Error::TransitionInWindow { from, to, values });
    }
    let mut slos = BTreeMap::new();
    let mut left_out = Vec::new();
    // Disruption SLOs are judged against earlier transitions, not a recorded window.
    for s in specs.slos.iter().filter(|s| s.spec.window.is_steady()) {
        let key = key(&s.group, &s.spec.name);
        let step = step_of(&s.group);
        let series = q.range(&s.spec.expr, from, to, step).await?;
        if let Some(why) = too_few(&series, s.spec.min_samples, from, step) {
            left_out.push(LeftOut {
                key,
                why,
                needed: s.relative.is_some() || s.spec.budget.is_some(),
            });
            continue;
        }
        let samples: Vec<f64> = series
            .iter()
            .map(|(_, v)| *v)
            .filter(|v| v.is_finite())
            .collect();
        slos.insert(
            key,
            SloBaseline {
                query: s.spec.expr.clone(),
                count: samples.len(),
                mean: stats::mean(&samples),
                stddev: stats::stddev(&samples),
                p50: stats::quantile(&samples, 0.5),
                p90: stats::quantile(&samples, 0.9),
                p99: stats::quantile(&samples, 0.99),
                samples,
            },
        );
    }
    if slos.is_empty() {
        let why: Vec<String> = left_out
            .iter()
            .map(|l| format!("{}: {}", l.key, l.why))
            .collect();
        return Err(Error::NothingRecorded {
            from,
            to,
            why: why.join("; "),
        });
    }
    let configuration = wanderer::configuration(q, to).await?;
    Ok(Recorded {
        baseline: Baseline {
            format_version: FORMAT_VERSION,
            spec_hash: specs.hash.clone(),
            from,
            to,
            step_seconds: step,
            configuration,
            slos,
            example: false,
        },
        left_out,
    })
}

impl Baseline {
    /// Writes the file atomically and durably: a temporary file, synced, renamed over the
    /// target, the directory synced ([`upsoak_common::state::write_atomic`]).
    pub fn save(&self, path: &Path) -> Result<()> {
        let w = |e| Error::Write(path.display().to_string(), e);
        let text = serde_json::to_vec_pretty(self).map_err(|e| w(std::io::Error::other(e)))?;
        upsoak_common::state::write_atomic(path, &text).map_err(w)
    }

    pub fn load(path: &Path) -> Result<Baseline> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| Error::Read(name.clone(), e))?;
        let b: Baseline =
            serde_json::from_str(&text).map_err(|e| Error::Decode(name.clone(), "baseline", e))?;
        if b.format_version != FORMAT_VERSION {
            return Err(Error::FormatVersion {
                path: name,
                found: b.format_version,
                want: FORMAT_VERSION,
            });
        }
        Ok(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_few_says_why_no_series_nan_only_or_a_late_start() {
        let at = |ts: &[i64], v: f64| ts.iter().map(|t| (*t as f64, v)).collect::<Vec<_>>();
        // Enough: nothing to say.
        assert_eq!(too_few(&at(&[100, 115, 130], 1.0), 3, 100, 15.0), None);
        let none = too_few(&[], 3, 100, 15.0).unwrap();
        assert!(none.starts_with("no series in the window"), "{none}");
        assert!(
            none.ends_with("min_samples 3 needs at least 30s of data at a 15s step"),
            "{none}"
        );
        let nan = too_few(&at(&[100, 115, 130], f64::NAN), 3, 100, 15.0).unwrap();
        assert!(nan.starts_with("no finite sample"), "{nan}");
        // A series that starts late in the window (a warm-up) says where it starts.
        let late = too_few(&at(&[160, 175], 1.0), 3, 100, 15.0).unwrap();
        assert!(
            late.starts_with("2 of 3 samples, its series starting 60s into the window (a warm-up"),
            "{late}"
        );
        // One that starts at the window's start does not.
        let short = too_few(&at(&[100, 115], 1.0), 3, 100, 15.0).unwrap();
        assert!(
            short.starts_with("2 of 3 samples; min_samples 3"),
            "{short}"
        );
    }
}
