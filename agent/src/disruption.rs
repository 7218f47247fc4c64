//! The disruption window: each transition judged on the upgrade itself, from the moment the
//! apply started to the end of the settle period, besides the steady window after it.
//!
//! The window's start comes from the sidecar: `upsoak_wanderer_apply_started_timestamp_seconds`
//! of the sample whose `upsoak_wanderer_apply_generation` is the transition's generation (one
//! series without labels, so a week of transitions stays one series). Without such a sample (an
//! older sidecar, or Prometheus could not say) the window opens when the transition went live,
//! and the window's `phases` sentence says so.
//!
//! Each `window: disruption` SLO is evaluated once, at the settle end, as an instant query with
//! `${window}` replaced by the window's length (`95s`); it reduces the whole window to one
//! number. Rows are tried in order; the first that matches decides:
//!
//! | # | answer | verdict |
//! |---|---|---|
//! | 1 | the query failed | `on_error` (default inconclusive) |
//! | 2 | more than one series | inconclusive: the expression must reduce to one |
//! | 3 | no series, or no finite value | `on_no_data` (default inconclusive; never pass) |
//! | 4 | the objective is broken | fail |
//! | 5 | `baseline` set, at least `min_transitions` earlier values | against their median: fail if broken, else pass |
//! | 6 | `baseline` set, fewer earlier values | objective set: pass on it (the reason says the baseline was not judged); none: inconclusive |
//! | 7 | objective only, met | pass |
//!
//! The earlier values are those of the same SLO on earlier transitions that passed (or warned)
//! on it: a failed transition does not move the distribution it is judged against. One number
//! per transition has no variance to test, so no significance test is made.

use std::collections::BTreeMap;

use upsoak_common::names::wanderer::{
    APPLY_FINISHED_TIMESTAMP_SECONDS, APPLY_GENERATION, APPLY_STARTED_TIMESTAMP_SECONDS,
};

use crate::baseline;
use crate::eval::{FailedQuery, Judgement, Judging};
use crate::history::{Disruption, History, SloVerdict};
use crate::judge::Evidence;
use crate::prom::Querier;
use crate::spec::{CheckedSlo, DEFAULT_MIN_TRANSITIONS, Specs, Verdict, WINDOW_PLACEHOLDER};
use crate::stats;

/// How long before the live moment an apply's start is looked for: no install of Agones takes
/// longer, and the range query stays a few hundred points.
pub const APPLY_LOOKBACK_S: i64 = 3600;

/// Seconds after the settle end before the window is judged, so Prometheus has ingested the
/// scrape taken at the end.
pub const INGEST_LAG_S: i64 = 2;

/// Points a phase lookup asks for at most (its step grows with the span).
const PHASE_POINTS: i64 = 600;

/// When a transition's apply ran, as the sidecar exported it.
#[derive(Clone, Debug, PartialEq)]
pub struct Phases {
    /// Unix seconds the apply started; `None`: unknown.
    pub started: Option<f64>,
    /// Unix seconds the apply finished; `None`: unknown or still in progress.
    pub finished: Option<f64>,
    /// Where the window's start came from, in a sentence.
    pub source: String,
}

impl Phases {
    /// The disruption window's start: the apply's start, else the live moment `live`.
    pub fn window_start(&self, live: i64) -> i64 {
        self.started.map_or(live, |s| (s.floor() as i64).min(live))
    }
}

/// `max(name)`: one number even if two sidecars were scraped.
fn max_of(name: &str) -> String {
    format!("max({name})")
}

/// The apply phases of the transition to `generation` that went live at `live`, read over
/// (`after`, `until`]: `after` is the previous transition's live moment (its apply cannot have
/// started before). Never fails: what cannot be read is the fallback, said in `source`.
pub async fn phases<Q: Querier>(
    q: &Q,
    generation: u64,
    live: i64,
    after: i64,
    until: i64,
) -> Phases {
    let from = after.max(live - APPLY_LOOKBACK_S);
    let until = until.max(from + 1);
    let step = ((until - from) / PHASE_POINTS).max(1) as f64;
    let read = |name: &'static str| async move {
        q.range(&max_of(name), from, until, step).await.map(|s| {
            s.into_iter()
                .map(|(t, v)| ((t * 1000.0).round() as i64, v))
                .collect::<BTreeMap<i64, f64>>()
        })
    };
    let fallback = |why: String| Phases {
        started: None,
        finished: None,
        source: format!("{why}: the window opens when the transition went live ({live})"),
    };
    let (gens, started, finished) = match (
        read(APPLY_GENERATION).await,
        read(APPLY_STARTED_TIMESTAMP_SECONDS).await,
        read(APPLY_FINISHED_TIMESTAMP_SECONDS).await,
    ) {
        (Ok(g), Ok(s), Ok(f)) => (g, s, f),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
            return fallback(format!(
                "the apply phases could not be read ({})",
                e.message()
            ));
        }
    };
    // The latest step that describes this generation: its finish is the most up to date.
    let found = gens
        .iter()
        .rev()
        .filter(|(_, g)| **g == generation as f64)
        .find_map(|(t, _)| {
            let s = started.get(t).copied().filter(|s| {
                s.is_finite() && *s <= (live + 1) as f64 && *s >= (live - APPLY_LOOKBACK_S) as f64
            })?;
            Some((s, finished.get(t).copied()))
        });
    match found {
        None => fallback(format!(
            "no {APPLY_STARTED_TIMESTAMP_SECONDS} for generation {generation} (an older sidecar?)"
        )),
        Some((s, f)) => {
            let f = f.filter(|f| f.is_finite() && *f >= s);
            Phases {
                started: Some(s),
                finished: f,
                source: format!(
                    "apply started at {s:.0} ({:.0}s before it went live), {}",
                    live as f64 - s,
                    f.map_or("its end not exported".to_owned(), |f| format!(
                        "finished at {f:.0} after {:.0}s",
                        f - s
                    ))
                ),
            }
        }
    }
}

/// The phases of transition `i` of `h`, read up to `until`.
pub async fn phases_of<Q: Querier>(q: &Q, h: &History, i: usize, until: i64) -> Phases {
    let t = &h.transitions[i];
    let after = i
        .checked_sub(1)
        .map_or(i64::MIN / 2, |p| h.transitions[p].at);
    phases(q, t.generation, t.at, after, until).await
}

/// The SLOs judged on the disruption window.
pub fn slos(specs: &Specs) -> impl Iterator<Item = &CheckedSlo> {
    specs.slos.iter().filter(|s| !s.spec.window.is_steady())
}

/// A window's length as a PromQL duration, at least one second.
pub fn promql_duration(seconds: i64) -> String {
    format!("{}s", seconds.max(1))
}

/// What the instant query at the window's end answered.
pub enum Answer<'a> {
    /// The query failed with this message.
    Error(&'a str),
    /// One value per series.
    Series(&'a [f64]),
}

/// Judges one disruption SLO's answer against its objective and the values `earlier`
/// transitions had; see the module's table.
pub fn decide(s: &CheckedSlo, answer: Answer<'_>, earlier: &[f64]) -> Evidence {
    let mut ev = Evidence {
        baseline_samples: earlier.len(),
        ..Evidence::new(Verdict::Inconclusive, "")
    };
    let series = match answer {
        Answer::Error(e) => {
            ev.verdict = s.spec.on_error;
            ev.reason = format!("query failed: {e}");
            return ev;
        }
        Answer::Series(v) => v,
    };
    if series.len() > 1 {
        ev.reason = format!(
            "the expression gave {} series at the window's end; a disruption SLO must reduce the window to one (wrap it in sum(), max(), …)",
            series.len()
        );
        return ev;
    }
    let Some(value) = series.first().copied().filter(|v| v.is_finite()) else {
        ev.verdict = s.spec.on_no_data;
        ev.reason = "no sample in the window".to_owned();
        return ev;
    };
    ev.value = Some(value);
    ev.samples = 1;
    if let Some(o) = s.objective
        && !o.holds(value)
    {
        ev.verdict = Verdict::Fail;
        ev.reason = format!("{value:.6} breaks the objective {o}");
        return ev;
    }
    let met = s
        .objective
        .map(|o| format!("{value:.6} meets the objective {o}"));
    let need = s.spec.min_transitions.unwrap_or(DEFAULT_MIN_TRANSITIONS);
    match s.relative {
        Some(r) if earlier.len() >= need => {
            let median = stats::quantile(earlier, 0.5);
            ev.baseline = Some(median);
            let Some(check) = r.check(value, median) else {
                ev.reason = format!("cannot compare {value} with the median {median}");
                return ev;
            };
            ev.threshold = Some(check.threshold);
            let against = format!(
                "{value:.6} against the median {median:.6} of {} earlier transitions (`{r}`, threshold {:.6})",
                earlier.len(),
                check.threshold
            );
            (ev.verdict, ev.reason) = if check.holds {
                let also = met.map(|m| format!("; {m}")).unwrap_or_default();
                (Verdict::Pass, format!("within: {against}{also}"))
            } else {
                (Verdict::Fail, format!("breaks: {against}"))
            };
        }
        Some(r) => {
            let why = format!(
                "{} earlier transitions judged, {need} needed (min_transitions), so the baseline `{r}` was not judged",
                earlier.len()
            );
            (ev.verdict, ev.reason) = match met {
                Some(m) => (Verdict::Pass, format!("{m} (objective only); {why}")),
                None => (Verdict::Inconclusive, why),
            };
        }
        None => {
            ev.verdict = Verdict::Pass;
            ev.reason = met.unwrap_or_else(|| format!("{value:.6}"));
        }
    }
    ev
}

/// The values SLO `key` had on the transitions before `i` that passed (or warned) on it.
fn earlier_values(h: &History, i: usize, key: &str) -> Vec<f64> {
    h.transitions[..i]
        .iter()
        .filter_map(|t| t.disruption.as_ref()?.slos.get(key))
        .filter(|v| matches!(v.evidence.verdict, Verdict::Pass | Verdict::Warn))
        .filter_map(|v| v.evidence.value)
        .collect()
}

/// Judges the disruption window of every transition whose settle period ended by `now` (and
/// whose window was not judged yet), when the specs have disruption SLOs.
pub async fn judge_due<Q: Querier>(q: &Q, j: &Judging<'_>, h: &mut History, now: i64) -> Judgement {
    let mut out = Judgement::default();
    if slos(j.specs).next().is_none() {
        return out;
    }
    let settle = j.settings.settle.as_secs() as i64;
    for i in 0..h.transitions.len() {
        let t = &h.transitions[i];
        let end = t.at + settle;
        if t.disruption.is_some() || now < end + INGEST_LAG_S {
            continue;
        }
        let phases = phases_of(q, h, i, end).await;
        let start = phases.window_start(t.at);
        let window = promql_duration(end - start);
        let mut verdicts = BTreeMap::new();
        for s in slos(j.specs) {
            let key = baseline::key(&s.group, &s.spec.name);
            let expr = s.spec.expr.replace(WINDOW_PLACEHOLDER, &window);
            let earlier = earlier_values(h, i, &key);
            let answer = q.instant(&expr, end).await;
            let (evidence, value) = match &answer {
                Ok(series) => (
                    decide(s, Answer::Series(series), &earlier),
                    series.first().copied(),
                ),
                Err(e) => (decide(s, Answer::Error(&e.message()), &earlier), None),
            };
            if let Err(error) = answer {
                out.failed_queries.push(FailedQuery {
                    group: s.group.clone(),
                    slo: s.spec.name.clone(),
                    error,
                });
            }
            let previous = h.transitions[..i]
                .iter()
                .rev()
                .find_map(|p| p.disruption.as_ref()?.slos.get(&key)?.evidence.value);
            verdicts.insert(
                key,
                SloVerdict {
                    group: s.group.clone(),
                    slo: s.spec.name.clone(),
                    severity: s.spec.severity,
                    query: expr,
                    samples: value
                        .filter(|_| evidence.samples == 1)
                        .map(|v| vec![(end as f64, v)])
                        .unwrap_or_default(),
                    evidence,
                    previous,
                },
            );
        }
        let verdict = verdicts
            .values()
            .map(|v| v.evidence.verdict)
            .max()
            .unwrap_or(Verdict::Inconclusive);
        h.transitions[i].disruption = Some(Disruption {
            apply_started: phases.started,
            apply_finished: phases.finished,
            window_start: start,
            window_end: end,
            judged_at: now,
            verdict,
            phases: phases.source,
            slos: verdicts,
        });
        out.judged.push(i);
    }
    out
}

#[cfg(test)]
mod tests;
