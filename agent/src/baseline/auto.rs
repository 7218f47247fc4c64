//! `run --baseline auto`: the agent records its own baseline from the steady period before the
//! first transition it sees start, and judges that transition and every later one against it,
//! without a restart.
//!
//! The window is the last `--judge-window` before the transition's apply started
//! (`upsoak_wanderer_apply_started_timestamp_seconds`, the disruption window's start), but
//! starts no earlier than `--settle` after the later of:
//! - the previous apply finished, or the previous transition went live
//!   (`upsoak_wanderer_apply_finished_timestamp_seconds` and
//!   `upsoak_wanderer_last_transition_timestamp_seconds` keep the previous transition's values
//!   until this apply returns, so both are read at the apply's start);
//! - the sidecar started (its `process_start_time_seconds`, the series scraped with its
//!   `upsoak_wanderer_generation`): the Producer's warm-up is not a steady state.
//!
//! It is recorded by [`super::record_by`], each group at the step its windows are judged at:
//! an SLO with too few samples is left out (logged with why) and judged on its objective only.
//! Without a known apply start, or with no steady time left, nothing is recorded and the next
//! transition is tried.

use std::collections::BTreeSet;
use std::path::PathBuf;

use upsoak_common::names::wanderer::{
    APPLY_FINISHED_TIMESTAMP_SECONDS, APPLY_GENERATION, APPLY_STARTED_TIMESTAMP_SECONDS,
    GENERATION, LAST_TRANSITION_TIMESTAMP_SECONDS,
};

use super::Recorded;
use crate::disruption;
use crate::eval::{self, JudgeSettings};
use crate::history::History;
use crate::prom::Querier;
use crate::spec::Specs;

/// The file name of the automatic baseline in the state directory.
pub const FILE: &str = "baseline.json";

/// The state of `--baseline auto` in the loop: where the baseline goes, and the transitions
/// already tried for good (a query that failed is tried again at the next slot).
#[derive(Clone, Debug)]
pub struct AutoBaseline {
    /// `<state-dir>/baseline.json`.
    pub path: PathBuf,
    /// Generations whose window was refused (no steady time, no apply start): not retried.
    pub refused: BTreeSet<u64>,
}

impl AutoBaseline {
    pub fn new(path: PathBuf) -> AutoBaseline {
        AutoBaseline {
            path,
            refused: BTreeSet::new(),
        }
    }
}

/// The steady window before a transition's apply, and how its bounds were found.
#[derive(Clone, Debug, PartialEq)]
pub struct Window {
    pub from: i64,
    pub to: i64,
    /// The bounds in a sentence, for the log.
    pub bounds: String,
}

/// Why no baseline was recorded before a transition.
#[derive(Debug)]
pub enum NotRecorded {
    /// Prometheus could not be read: try again at the next slot.
    Unreadable(crate::Error),
    /// This transition cannot give one (said why): wait for the next.
    Refused(String),
}

/// The largest finite value `expr` has at `at`, if any above zero (a gauge the sidecar has not
/// set yet reads 0).
async fn latest<Q: Querier>(q: &Q, expr: &str, at: i64) -> crate::Result<Option<f64>> {
    let values = q.instant(expr, at).await?;
    Ok(values
        .into_iter()
        .filter(|v| v.is_finite() && *v > 0.0)
        .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v)))))
}

/// When the apply of transition `i` of `h` started. Read first at `now` (the sidecar keeps the
/// latest apply's generation and start until the next apply starts, and an instant query sees
/// the latest scrape); else looked up over the transition's past as its disruption window does
/// ([`disruption::phases_of`], whose step grows with the span it reads).
async fn apply_started<Q: Querier>(
    q: &Q,
    h: &History,
    i: usize,
    now: i64,
) -> Result<f64, NotRecorded> {
    let t = &h.transitions[i];
    let generation = latest(q, &format!("max({APPLY_GENERATION})"), now)
        .await
        .map_err(NotRecorded::Unreadable)?;
    let started = latest(q, &format!("max({APPLY_STARTED_TIMESTAMP_SECONDS})"), now)
        .await
        .map_err(NotRecorded::Unreadable)?;
    if generation == Some(t.generation as f64)
        && let Some(s) = started.filter(|s| *s <= (t.at + 1) as f64)
    {
        return Ok(s);
    }
    let phases = disruption::phases_of(q, h, i, now).await;
    phases.started.ok_or_else(|| {
        NotRecorded::Refused(format!(
            "the apply's start is unknown, so the steady period before it is too ({})",
            phases.source
        ))
    })
}

/// The steady window before the apply of transition `i` of `h` (see the module's rules).
pub async fn window<Q: Querier>(
    q: &Q,
    h: &History,
    i: usize,
    w: &JudgeSettings,
    now: i64,
) -> Result<Window, NotRecorded> {
    let started = apply_started(q, h, i, now).await?;
    let to = started.floor() as i64;
    let read = |expr: String| async move { latest(q, &expr, to).await };
    let previous = read(format!("max({APPLY_FINISHED_TIMESTAMP_SECONDS})"))
        .await
        .map_err(NotRecorded::Unreadable)?;
    let live = read(format!("max({LAST_TRANSITION_TIMESTAMP_SECONDS})"))
        .await
        .map_err(NotRecorded::Unreadable)?;
    // The previous transition is over when its apply returned and it went live: the later.
    let previous = match (previous, live) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
    .filter(|p| *p <= started);
    let sidecar = read(format!(
        "max(process_start_time_seconds and on(job, instance) {GENERATION})"
    ))
    .await
    .map_err(NotRecorded::Unreadable)?
    .filter(|s| *s <= started);
    let settle = w.settle.as_secs() as i64;
    let judge = w.judge.as_secs() as i64;
    let mut from = to - judge;
    let mut bounds = format!("{from}..{to}, the {judge}s before the apply started");
    for (what, at) in [
        ("the previous transition ended", previous),
        ("the sidecar started", sidecar),
    ] {
        let Some(at) = at else { continue };
        let after = at.ceil() as i64 + settle;
        if after > from {
            from = after;
            bounds = format!(
                "{from}..{to}, up to the apply's start and from {settle}s (--settle) after {what} at {at:.0}"
            );
        }
    }
    if from >= to {
        return Err(NotRecorded::Refused(format!(
            "no steady time before the apply started at {to}: the window would be {bounds}"
        )));
    }
    Ok(Window { from, to, bounds })
}

/// Records the baseline of the steady window before transition `i`'s apply.
pub async fn record<Q: Querier>(
    q: &Q,
    specs: &Specs,
    h: &History,
    i: usize,
    w: &JudgeSettings,
    now: i64,
) -> Result<(Recorded, Window), NotRecorded> {
    let win = window(q, h, i, w, now).await?;
    match super::record_by(q, specs, win.from, win.to, |g| {
        eval::group_step(specs, w, g)
    })
    .await
    {
        Ok(r) => Ok((r, win)),
        Err(e @ crate::Error::Query { .. }) => Err(NotRecorded::Unreadable(e)),
        Err(e) => Err(NotRecorded::Refused(format!(
            "{}: {}",
            win.bounds,
            crate::error::chain(&e)
        ))),
    }
}
