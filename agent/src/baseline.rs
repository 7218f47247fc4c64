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

/// Range-queries every SLO over [from, to] and summarizes it.
pub async fn record<Q: Querier>(
    q: &Q,
    specs: &Specs,
    from: i64,
    to: i64,
    step: f64,
) -> Result<Baseline> {
    // A change of the Wanderer's generation inside the window means it is not steady.
    let generation = q.range(wanderer::GENERATION, from, to, step).await?;
    let mut values: Vec<f64> = generation.iter().map(|(_, v)| *v).collect();
    values.dedup();
    if values.len() > 1 {
        return Err(Error::TransitionInWindow { from, to, values });
    }
    let mut slos = BTreeMap::new();
    let mut short = Vec::new();
    // Disruption SLOs are judged against earlier transitions, not a recorded window.
    for s in specs.slos.iter().filter(|s| s.spec.window.is_steady()) {
        let series = q.range(&s.spec.expr, from, to, step).await?;
        let samples: Vec<f64> = series
            .iter()
            .map(|(_, v)| *v)
            .filter(|v| v.is_finite())
            .collect();
        if samples.len() < s.spec.min_samples {
            // Only the SLOs a baseline is required for block it, and only when the window is
            // too short for them (they need `min_samples` steps of data). An SLO with no data
            // at all (a metric this stack does not export) cannot be helped by a longer
            // window: it is left out, and judged inconclusive.
            if (s.relative.is_some() || s.spec.budget.is_some()) && !samples.is_empty() {
                short.push(format!(
                    "{} has {} of {} samples: it needs at least {}s of data at a {step}s step",
                    key(&s.group, &s.spec.name),
                    samples.len(),
                    s.spec.min_samples,
                    ((s.spec.min_samples.saturating_sub(1)) as f64 * step).ceil()
                ));
            }
            continue;
        }
        slos.insert(
            key(&s.group, &s.spec.name),
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
    // SLOs that only have an objective need no baseline; the others (a relative criterion, or
    // a budget whose significance test reads it) must have one.
    if !short.is_empty() {
        return Err(Error::TooFewSamples(short.join("; ")));
    }
    let configuration = wanderer::configuration(q, to).await?;
    Ok(Baseline {
        format_version: FORMAT_VERSION,
        spec_hash: specs.hash.clone(),
        from,
        to,
        step_seconds: step,
        configuration,
        slos,
        example: false,
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
