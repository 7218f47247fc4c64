//! The steady period judged for its whole length: after a transition's first steady window
//! (`eval`), the time until the next transition is judged in consecutive chunks of
//! `steady_every` (default 1 h), each a verdict row of the transition, so a leak or a slow
//! failure that shows hours after an upgrade is still caught and pinned on its configuration.
//!
//! A chunk [start, end] starts where the window before it ended. It is judged at the first slot
//! at least [`INGEST_LAG_S`] after its end, every steady SLO of every group at its group's step,
//! as the first window is (its baseline chosen by `baseline_by::choose`, the same table in
//! `judge`). Once the next transition is seen, the steady period ends where that transition's
//! apply started (the disruption window's start, module `disruption`): the last chunk is cut
//! there, judged if it is at least a judge window long (else its time is left unjudged), and
//! the transition is closed. The transition's steady verdict is the worst of its first window
//! and its chunks ([`Transition::steady_verdict`]).
//!
//! Known limit: a chunk that ends while the next apply is running, before the sidecar's
//! generation moved, is judged whole; the apply's first seconds can fall into it.

use std::time::Duration;

use crate::baseline;
use crate::disruption::{self, INGEST_LAG_S};
use crate::eval::{self, FailedQuery, Judging};
use crate::history::{History, Judged, Transition};
use crate::prom::Querier;

/// Length of a steady chunk when `--steady-every` is not given.
pub const DEFAULT_STEADY_EVERY: Duration = Duration::from_secs(3600);

/// What a slot's chunk judging did.
#[derive(Debug, Default)]
pub struct Chunks {
    /// The chunks judged, as (transition index, chunk index), in order.
    pub judged: Vec<(usize, usize)>,
    /// The chunk SLOs whose query failed.
    pub failed_queries: Vec<FailedQuery>,
}

/// The next chunk of transition `i` and whether it closes the steady period: `None` when the
/// first window is not judged yet or the period is closed. `next_start` is where the next
/// transition's apply started, when there is one.
pub fn next_chunk(
    t: &Transition,
    every_s: i64,
    next_start: Option<i64>,
) -> Option<(i64, i64, bool)> {
    if t.steady_closed {
        return None;
    }
    let first = t.judged.as_ref()?;
    let start = t.chunks.last().map_or(first.window_end, |c| c.window_end);
    let end = start + every_s.max(1);
    Some(match next_start {
        Some(ns) if ns <= end => (start, ns, true),
        _ => (start, end, false),
    })
}

/// Judges every chunk whose end has passed by `now`, of every transition still open (several
/// per transition after an outage, oldest first).
pub async fn judge_due<Q: Querier>(
    q: &Q,
    j: &Judging<'_>,
    h: &mut History,
    now: i64,
    every: Duration,
) -> Chunks {
    let mut out = Chunks::default();
    let every_s = every.as_secs() as i64;
    let min_len = j.settings.judge.as_secs() as i64;
    let spread = eval::earlier_values(h);
    for i in 0..h.transitions.len() {
        loop {
            let t = &h.transitions[i];
            if t.steady_closed || t.judged.is_none() {
                break;
            }
            let next_start = match h.transitions.get(i + 1) {
                Some(n) => Some(
                    disruption::phases_of(q, h, i + 1, now)
                        .await
                        .window_start(n.at),
                ),
                None => None,
            };
            let Some((start, end, closes)) = next_chunk(t, every_s, next_start) else {
                break;
            };
            if closes && end - start < min_len {
                h.transitions[i].steady_closed = true;
                break;
            }
            if now < end + INGEST_LAG_S {
                break;
            }
            let span = Span { i, start, end, now };
            let chunk = judge_chunk(q, j, h, span, &spread, &mut out).await;
            let t = &mut h.transitions[i];
            t.chunks.push(chunk);
            t.steady_closed = closes;
            out.judged.push((i, t.chunks.len() - 1));
        }
    }
    out
}

/// A chunk [start, end] of transition `i`, judged at `now`.
#[derive(Clone, Copy)]
struct Span {
    i: usize,
    start: i64,
    end: i64,
    now: i64,
}

/// Every steady SLO judged over the chunk `span`.
async fn judge_chunk<Q: Querier>(
    q: &Q,
    j: &Judging<'_>,
    h: &History,
    span: Span,
    spread: &std::collections::BTreeMap<String, Vec<f64>>,
    out: &mut Chunks,
) -> Judged {
    let Span { i, start, end, now } = span;
    let at = h.transitions[i].at;
    let mut slos = std::collections::BTreeMap::new();
    let steady = j.specs.slos.iter().filter(|s| s.spec.window.is_steady());
    for s in steady.filter(|s| eval::judged_at_age(s, start - at)) {
        let step = eval::group_step(j.specs, j.settings, &s.group);
        let base = crate::baseline_by::choose(s, j.baseline, h, i);
        let (mut v, error) = eval::judge_slo(q, s, j, &base, step, at, start, end).await;
        let key = baseline::key(&s.group, &s.spec.name);
        let earlier = crate::baseline_by::spread(s, h, i, spread);
        eval::usual_shift(&mut v.evidence, earlier.as_deref());
        if let Some(error) = error {
            out.failed_queries.push(FailedQuery {
                group: s.group.clone(),
                slo: s.spec.name.clone(),
                error,
            });
        }
        slos.insert(key, v);
    }
    slos.extend(crate::webhook::verdicts::inbox_verdicts(
        j.inbox, start, end,
    ));
    Judged {
        window_start: start,
        window_end: end,
        judged_at: now,
        verdict: eval::worst(slos.values().map(|v| v.evidence.verdict)),
        slos,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Verdict;
    use std::collections::BTreeMap;

    fn judged(start: i64, end: i64, verdict: Verdict) -> Judged {
        Judged {
            window_start: start,
            window_end: end,
            judged_at: end,
            verdict,
            slos: BTreeMap::new(),
        }
    }

    #[test]
    fn chunks_follow_each_other_until_the_next_apply_cuts_the_last() {
        let mut t = Transition::new(2, 1000, BTreeMap::new(), BTreeMap::new());
        assert_eq!(
            next_chunk(&t, 600, None),
            None,
            "the first window comes first"
        );
        t.judged = Some(judged(1120, 1420, Verdict::Pass));
        assert_eq!(next_chunk(&t, 600, None), Some((1420, 2020, false)));
        t.chunks.push(judged(1420, 2020, Verdict::Warn));
        assert_eq!(next_chunk(&t, 600, Some(5000)), Some((2020, 2620, false)));
        assert_eq!(next_chunk(&t, 600, Some(2400)), Some((2020, 2400, true)));
        t.chunks.push(judged(2020, 2400, Verdict::Fail));
        assert_eq!(t.steady_verdict(), Some(Verdict::Fail), "the worst chunk");
        t.steady_closed = true;
        assert_eq!(next_chunk(&t, 600, None), None);
    }

    #[test]
    fn a_long_window_slo_is_judged_only_on_windows_past_its_judged_after() {
        let specs = crate::spec::Specs::parse(
            "groups: [ { name: g, interval: 1m, slos: [ { name: slope, expr: up, objective: \"<= 1\", judged_after: 6h } ] } ]",
            "test",
        )
        .unwrap();
        let s = &specs.slos[0];
        assert!(!eval::judged_at_age(s, 6 * 3600 - 1));
        assert!(eval::judged_at_age(s, 6 * 3600));
        let refused = crate::spec::Specs::parse(
            "groups: [ { name: g, interval: 1m, slos: [ { name: d, expr: up, objective: \"<= 1\", window: disruption, judged_after: 1h } ] } ]",
            "test",
        )
        .unwrap_err()
        .to_string();
        assert!(refused.contains("judged_after"), "{refused}");
    }
}
