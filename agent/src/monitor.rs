//! The Monitor's loop, `upsoak-agent run`: at each group's fixed slot it exports the group's live
//! SLO values, looks for a new Wanderer generation, judges the group's part of every transition
//! whose window has passed, writes the history when it progressed and re-sends the alerts. It is
//! generic over the [`Querier`] and the [`Clock`], so its tests run it against a fake Prometheus
//! on a manual clock: slots, missed slots, reloads and judging without a Prometheus or a wait.
//!
//! Liveness: every query Prometheus answers beats a watchdog ([`Watched`]); `/healthz` fails
//! when none was answered for `unhealthy_after` of the shortest group interval, and recovers
//! with the next answer. Alerts and annotations are delivered by tasks beside the loop; a
//! history that cannot be written stays in memory and is retried with backoff ([`Saving`]); a
//! wall clock that steps back re-plans the slots from the new time.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::baseline::Baseline;
use crate::baseline::auto::{self, AutoBaseline, NotRecorded};
use crate::chunks;
use crate::disruption;
use crate::eval::{self, FailedQuery, JudgeSettings, Judging};
use crate::events::{
    AgentMetrics, AnnotationFailed, ChunkJudged, ClockSteppedBack, DisruptionJudged,
    GroupEvaluated, HistoryRestored, PrometheusAnswered, QueryPurpose, SloEvaluated, SloJudged,
    SloQueryFailed, SlotAnswered, SpecsReloaded, TransitionDetected, TransitionJudged,
    WandererUnreadable,
};
use crate::grafana::Grafana;
use crate::history::{History, SloVerdict, Transition};
use crate::http::Timeouts;
use crate::prom::Querier;
use crate::sinks::{self, AlertQueue, AlertSender};
use crate::slots::{Due, Slots};
use crate::spec::{Specs, Verdict};
use crate::time::{Clock, rfc3339};
use crate::webhook::Inbox;
use upsoak_common::ops::{Health, Heartbeat};

mod saving;
mod watched;

use saving::Saving;
pub use watched::Watched;

/// Default number of the shortest group interval without an answer from Prometheus after
/// which `/healthz` fails.
pub const DEFAULT_UNHEALTHY_AFTER: u32 = 3;
/// How long the loop waits for the alerts handed over to be tried when it stops.
const ALERTS_STOP: Duration = Duration::from_secs(5);

/// The spec file and a flag that asks the loop to reload it at its next wake (SIGHUP sets it).
#[derive(Clone, Debug)]
pub struct Reload {
    path: PathBuf,
    requested: Arc<AtomicBool>,
}

impl Reload {
    pub fn new(path: &Path) -> Reload {
        Reload {
            path: path.to_owned(),
            requested: Arc::default(),
        }
    }

    /// Asks for a reload; several requests before the loop wakes are one reload.
    pub fn request(&self) {
        self.requested.store(true, Ordering::Release);
    }

    fn take(&self) -> bool {
        self.requested.swap(false, Ordering::AcqRel)
    }
}

/// Everything the loop needs besides Prometheus, the clock and the metrics.
pub struct MonitorConfig {
    /// The SLO specs; a reload replaces them.
    pub specs: Specs,
    /// Without one, only objectives are judged.
    pub baseline: Option<Baseline>,
    /// Where the history is kept.
    pub state_dir: PathBuf,
    /// Alertmanager's base URL (API v2).
    pub alertmanager: Option<String>,
    /// Settle and judge windows, step, significance level.
    pub judge: JudgeSettings,
    /// Stop after this many transitions have been judged (for demos and tests).
    pub max_judged: Option<usize>,
    /// Annotations of transitions and verdict changes.
    pub grafana: Option<Grafana>,
    /// Alerts posted by Alertmanager's webhook, folded into verdicts.
    pub inbox: Inbox,
    /// Where the specs are reloaded from when asked (SIGHUP); `None`: never.
    pub reload: Option<Reload>,
    /// Timeouts of the requests to Alertmanager.
    pub alert_timeouts: Timeouts,
    /// `/healthz` fails after this many of the shortest group interval without an answer.
    pub unhealthy_after: u32,
    /// Length of the chunks the steady period is judged in after the first window (module
    /// `chunks`); `None`: only the first window is judged.
    pub steady_every: Option<std::time::Duration>,
    /// `--baseline auto` while no baseline exists: one is recorded before the next
    /// transition's apply and judged against from then on ([`crate::baseline::auto`]).
    pub auto_baseline: Option<AutoBaseline>,
    /// Labels added to every alert sent to Alertmanager (`namespace`).
    pub alert_labels: BTreeMap<String, String>,
}

/// The watchdog's limit: `n` times the shortest group interval (1 s without groups).
fn stall_limit(specs: &Specs, n: u32) -> Duration {
    let shortest = specs
        .file
        .groups
        .iter()
        .map(|g| g.interval)
        .min()
        .unwrap_or(Duration::from_secs(1));
    shortest.saturating_mul(n.max(1))
}

/// What the loop reports to: the metrics (through events) and the readiness it marks once
/// Prometheus has answered.
pub struct Outputs<'a> {
    pub metrics: &'a AgentMetrics,
    pub ready: &'a Health,
}

/// Runs until `shutdown` or `max_judged`; returns the history (its overall verdict is the run's).
pub async fn run<Q: Querier, C: Clock>(
    mut cfg: MonitorConfig,
    q: &Q,
    clock: &C,
    out: Outputs<'_>,
    shutdown: &CancellationToken,
) -> crate::Result<History> {
    let m = out.metrics;
    std::fs::create_dir_all(&cfg.state_dir)
        .map_err(|e| crate::Error::Write(cfg.state_dir.display().to_string(), e))?;
    let mut history = History::load(&cfg.state_dir)?;
    HistoryRestored { history: &history }.emit(m);
    let alerts = cfg.alertmanager.as_deref().map(|u| {
        AlertQueue::start(
            AlertSender::with_timeouts(u, 1000, cfg.alert_timeouts),
            m,
            out.ready.clone(),
        )
    });
    let beat: Heartbeat = out.ready.watchdog(
        "the evaluation loop (Prometheus answering)",
        stall_limit(&cfg.specs, cfg.unhealthy_after),
    );
    let q = &Watched::new(q, beat.clone());
    let mut saving = Saving::default();
    let mut slots = Slots::new(&cfg.specs, clock.now_ms());
    let mut last_now = clock.now_ms();
    loop {
        // Sleep until the next group's slot (fixed on the wall clock, as Prometheus' groups).
        let next = slots.next_ms().unwrap_or_else(|| clock.now_ms() + 1000);
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            _ = clock.sleep_until(next) => {}
        }
        let woke = clock.now_ms();
        if woke < last_now {
            // The wall clock stepped back: the slots ahead are that much further away; plan
            // them again from now rather than wait the step out.
            ClockSteppedBack {
                by_ms: last_now - woke,
            }
            .emit(m);
            slots = Slots::new(&cfg.specs, woke);
        }
        last_now = woke;
        if let Some(r) = &cfg.reload
            && r.take()
            && reload_specs(&mut cfg.specs, &r.path, m)
        {
            slots.reconcile(&cfg.specs, clock.now_ms());
            beat.set_max_age(stall_limit(&cfg.specs, cfg.unhealthy_after));
        }
        let due = slots.due(clock.now_ms());
        if due.is_empty() {
            continue;
        }
        let now = clock.now_ms().div_euclid(1000);
        let saved = history.progress();
        let mut answered = evaluate_live(q, &cfg.specs, &due, now, m).await;
        let before = history.transitions.len();
        match eval::detect(q, &mut history, now).await {
            Ok(_) => answered = true,
            // Prometheus cannot be read: nothing is assumed; pending windows wait.
            Err(e) => WandererUnreadable { error: &e }.emit(m),
        }
        if answered && !out.ready.was_marked_ready() {
            out.ready.mark_ready();
            PrometheusAnswered.emit();
        }
        for (i, t) in history.transitions.iter().enumerate().skip(before) {
            TransitionDetected { transition: t }.emit(m);
            let Some(g) = &cfg.grafana else { continue };
            // The region runs from the apply's start (the disruption window's), not the live moment.
            let start = disruption::phases_of(q, &history, i, now)
                .await
                .window_start(t.at);
            if let Err(e) = g
                .transition(t, start, t.at + cfg.judge.settle.as_secs() as i64)
                .await
            {
                AnnotationFailed {
                    kind: "transition",
                    generation: t.generation,
                    error: &e,
                }
                .emit(m);
            }
        }
        if cfg.baseline.is_none()
            && let Some(a) = &mut cfg.auto_baseline
        {
            cfg.baseline =
                record_auto_baseline(q, &cfg.specs, &cfg.judge, a, &history, now, m).await;
        }
        let groups: Vec<String> = due.iter().map(|d| d.group.clone()).collect();
        let judging = Judging {
            specs: &cfg.specs,
            baseline: cfg.baseline.as_ref(),
            settings: &cfg.judge,
            inbox: &cfg.inbox,
        };
        // The disruption window ends at the settle end, before the steady window opens.
        let disrupted = disruption::judge_due(q, &judging, &mut history, now).await;
        failed_queries(&disrupted.failed_queries, now, m);
        for i in disrupted.judged {
            report_disruption(&history, i, cfg.grafana.as_ref(), m).await;
        }
        let judgement = eval::judge_due(q, &judging, &mut history, now, &groups).await;
        failed_queries(&judgement.failed_queries, now, m);
        for i in judgement.judged {
            report_judged(&history, i, cfg.grafana.as_ref(), m).await;
        }
        if let Some(every) = cfg.steady_every {
            let chunked = chunks::judge_due(q, &judging, &mut history, now, every).await;
            failed_queries(&chunked.failed_queries, now, m);
            for (i, c) in chunked.judged {
                report_chunk(&history, i, c, cfg.grafana.as_ref(), m).await;
            }
        }
        if history.progress() != saved {
            history.drop_old_samples(crate::history::SAMPLE_WINDOWS);
            saving.changed();
        }
        saving.save_if_due(&history, &cfg.state_dir, clock.now_ms(), out.ready, m);
        if answered {
            SlotAnswered {
                at_ms: clock.now_ms(),
            }
            .emit(m);
        }
        if let Some(a) = &alerts {
            // Firing alerts are re-sent every slot, as Alertmanager expects; resolved ones carry endsAt.
            a.offer(
                sinks::current_alerts(&history.transitions, &rfc3339(now), &cfg.alert_labels),
                m,
            );
        }
        let judged = history
            .transitions
            .iter()
            .filter(|t| t.judged.is_some())
            .count();
        if cfg.max_judged.is_some_and(|max| judged >= max) {
            break;
        }
    }
    if let Some(a) = alerts {
        a.close(ALERTS_STOP).await;
    }
    // The last write must succeed: a history that cannot be kept is a runtime failure.
    history.save(&cfg.state_dir)?;
    Ok(history)
}

/// `--baseline auto`: records the baseline before the apply of the first transition not yet
/// judged (and not refused before) whose steady period gives one, and saves it; `None` while
/// there is none.
async fn record_auto_baseline<Q: Querier>(
    q: &Q,
    specs: &Specs,
    settings: &JudgeSettings,
    a: &mut AutoBaseline,
    history: &History,
    now: i64,
    m: &AgentMetrics,
) -> Option<Baseline> {
    for (i, t) in history.transitions.iter().enumerate() {
        if t.judged.is_some() || a.refused.contains(&t.generation) {
            continue;
        }
        match auto::record(q, specs, history, i, settings, now).await {
            Ok((recorded, window)) => {
                let unsaved = recorded.baseline.save(&a.path).err();
                crate::events::BaselineAutoRecorded {
                    generation: t.generation,
                    recorded: &recorded,
                    window: &window,
                    path: &a.path,
                    unsaved: unsaved.as_ref(),
                }
                .emit(m);
                return Some(recorded.baseline);
            }
            Err(NotRecorded::Unreadable(e)) => {
                crate::events::BaselineAutoNotRecorded {
                    generation: t.generation,
                    why: &crate::error::chain(&e),
                    retry: true,
                }
                .emit();
                return None;
            }
            Err(NotRecorded::Refused(why)) => {
                crate::events::BaselineAutoNotRecorded {
                    generation: t.generation,
                    why: &why,
                    retry: false,
                }
                .emit();
                a.refused.insert(t.generation);
            }
        }
    }
    None
}

/// Reloads the specs from `path`: a valid file replaces them, an invalid one keeps the old
/// specs (as Prometheus keeps its old rules). True when they were replaced.
fn reload_specs(specs: &mut Specs, path: &Path, m: &AgentMetrics) -> bool {
    match Specs::load(path) {
        Ok(new) => {
            SpecsReloaded::Applied(&new).emit(m);
            *specs = new;
            true
        }
        Err(e) => {
            SpecsReloaded::Refused(&e).emit(m);
            false
        }
    }
}

/// The slot of each group in `due`: counts it (and the slots it missed) and exports its SLOs'
/// live values; a failed query never stops the others. True when any query was answered.
async fn evaluate_live<Q: Querier>(
    q: &Q,
    specs: &Specs,
    due: &[Due],
    now: i64,
    m: &AgentMetrics,
) -> bool {
    let mut answered = false;
    for d in due {
        GroupEvaluated {
            group: &d.group,
            missed: d.missed,
        }
        .emit(m);
        for (slo, value) in eval::current_values(q, specs, &d.group, now).await {
            match value {
                Ok(value) => {
                    answered = true;
                    SloEvaluated {
                        group: &d.group,
                        slo: &slo,
                        value,
                    }
                    .emit(m);
                }
                Err(e) => SloQueryFailed {
                    group: &d.group,
                    slo: &slo,
                    purpose: QueryPurpose::Live,
                    at: now,
                    error: &e,
                }
                .emit(m),
            }
        }
    }
    answered
}

/// The judged windows whose query failed at `now`.
fn failed_queries(failed: &[FailedQuery], now: i64, m: &AgentMetrics) {
    for f in failed {
        SloQueryFailed {
            group: &f.group,
            slo: &f.slo,
            purpose: QueryPurpose::Judge,
            at: now,
            error: &f.error,
        }
        .emit(m);
    }
}

/// Each SLO's latest verdict in one kind of window (`window` picks it from a transition) over
/// the transitions before the one at `i`: what a new verdict is compared with to report changes.
fn previous_verdicts<'h>(
    history: &'h History,
    i: usize,
    window: impl Fn(&'h Transition) -> Option<&'h BTreeMap<String, SloVerdict>>,
) -> BTreeMap<&'h String, Verdict> {
    history.transitions[..i]
        .iter()
        .filter_map(window)
        .flat_map(|slos| slos.iter().map(|(k, v)| (k, v.evidence.verdict)))
        .collect()
}

/// The disruption window of the transition at `i` was judged: each of its SLOs whose verdict
/// changed since the transition before is reported and annotated, then the window (a region
/// from the apply's start to the settle end).
async fn report_disruption(
    history: &History,
    i: usize,
    grafana: Option<&Grafana>,
    m: &AgentMetrics,
) {
    let t = &history.transitions[i];
    let Some(d) = &t.disruption else { return };
    let previous = previous_verdicts(history, i, |p| p.disruption.as_ref().map(|d| &d.slos));
    for (k, v) in &d.slos {
        let before = previous.get(k).copied();
        if before == Some(v.evidence.verdict) {
            continue;
        }
        SloJudged {
            transition: t,
            verdict: v,
            previous: before,
        }
        .emit(m);
    }
    if let Some(g) = grafana
        && let Err(e) = g.disruption(t, d).await
    {
        AnnotationFailed {
            kind: "disruption",
            generation: t.generation,
            error: &e,
        }
        .emit(m);
    }
    DisruptionJudged {
        transition: t,
        disruption: d,
    }
    .emit(m);
}

/// The transition at `i` was judged: each SLO whose verdict changed since the transition
/// before (or that is judged for the first time) is reported and annotated, then the
/// transition.
async fn report_judged(history: &History, i: usize, grafana: Option<&Grafana>, m: &AgentMetrics) {
    let t = &history.transitions[i];
    let Some(j) = &t.judged else { return };
    let previous = previous_verdicts(history, i, |p| p.judged.as_ref().map(|j| &j.slos));
    for (k, v) in &j.slos {
        let before = previous.get(k).copied();
        if before == Some(v.evidence.verdict) {
            continue;
        }
        SloJudged {
            transition: t,
            verdict: v,
            previous: before,
        }
        .emit(m);
        if let Some(g) = grafana
            && let Err(e) = g
                .verdict(t, j.window_end, k, v.evidence.verdict, &v.evidence.reason)
                .await
        {
            AnnotationFailed {
                kind: "verdict",
                generation: t.generation,
                error: &e,
            }
            .emit(m);
        }
    }
    TransitionJudged {
        transition: t,
        judged: j,
    }
    .emit(m);
}

/// Chunk `c` of the transition at `i` was judged: each SLO whose verdict changed since the
/// window before it (the first window or the chunk before) is reported and annotated, as a
/// first window's are, then the chunk.
async fn report_chunk(
    history: &History,
    i: usize,
    c: usize,
    grafana: Option<&Grafana>,
    m: &AgentMetrics,
) {
    let t = &history.transitions[i];
    let chunk = &t.chunks[c];
    let before = match c.checked_sub(1) {
        Some(p) => t.chunks.get(p),
        None => t.judged.as_ref(),
    };
    for (k, v) in &chunk.slos {
        let previous = before
            .and_then(|b| b.slos.get(k))
            .map(|p| p.evidence.verdict);
        if previous == Some(v.evidence.verdict) {
            continue;
        }
        SloJudged {
            transition: t,
            verdict: v,
            previous,
        }
        .emit(m);
        if let Some(g) = grafana
            && let Err(e) = g
                .verdict(
                    t,
                    chunk.window_end,
                    k,
                    v.evidence.verdict,
                    &v.evidence.reason,
                )
                .await
        {
            AnnotationFailed {
                kind: "verdict",
                generation: t.generation,
                error: &e,
            }
            .emit(m);
        }
    }
    ChunkJudged {
        transition: t,
        index: c,
        chunk,
    }
    .emit(m);
}

#[cfg(test)]
mod tests;
