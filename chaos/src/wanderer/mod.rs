//! The Wanderer: on its schedule, take the next step of the walk, journal the intent, apply
//! it, observe what is installed, journal and export the outcome. Restarted with the same
//! journal it resumes the same walk at the next step; an interrupted action is recorded as
//! indeterminate, then observed. The next transition's due time is journalled when it is
//! scheduled, so a restart waits only for what is left of it (see [`due_time`]).
//!
//! - this file: the loop ([`run`]), its [`Schedule`] and options.
//! - [`walk`]: the seeded walk and the [`walk::Planner`] trait the loop drives.
//! - [`space`], [`constraint`]: the configuration space file and its constraint language.
//! - [`journal`]: the crash-safe journal of transitions.
//! - [`apply`]: appliers (simulator, helm) that install and observe.
//! - [`cluster`]: the cluster's Kubernetes version, checked before each transition.
//! - [`rollout`]: the Agones Deployments, observed after each apply.
//! - [`events`]: every action as a typed event, and the metrics they feed.

pub mod apply;
pub mod cluster;
pub mod constraint;
pub mod events;
pub mod journal;
pub mod rollout;
pub mod space;
pub mod walk;

use std::time::{Duration, Instant};

use rand::RngExt;
use tokio_util::sync::CancellationToken;
use upsoak_common::ops::Heartbeat;

use apply::{Applier, ApplyError, Recovery};
use events::{
    ApplyFinished, ApplyKilled, ApplyStarted, CoverageChanged, JournalCompacted,
    JournalLineDropped, ReleaseRecovered, TransitionOutcome, TransitionScheduled, WandererMetrics,
    WandererStarted, WandererStopped,
};
use journal::{
    Entry, Journal, JournalError, Outcome, Phases, Recovered, Unresolved, now, now_unix_ms,
    parse_rfc3339, rfc3339,
};
use upsoak_agones::release::Install;
use walk::Planner;

/// The ChaCha stream the schedule's jitter draws from; the walk uses stream 0.
const JITTER_STREAM: u64 = 1;
/// An applier bounds its apply by `apply_timeout` itself (the helm applier stops helm's process
/// group, TERM then KILL); the loop's own bound, this much later, only catches one that does not.
const APPLY_BACKSTOP: Duration = Duration::from_secs(30);

/// When transitions happen.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Schedule {
    /// The time between two transitions, before jitter.
    pub period: Duration,
    /// Fraction of the period added or taken at random (0.1 = ±10 %).
    pub jitter: f64,
}

impl Schedule {
    /// The wait before step `step`: drawn from the walk's ChaCha seeding of (seed, step), on a
    /// stream of its own, so a replay waits exactly as the original and the walk's own draws
    /// are untouched.
    pub fn wait(&self, seed: u64, step: u64) -> Duration {
        let mut rng = walk::step_rng(seed, step);
        rng.set_stream(JITTER_STREAM);
        let j = self.jitter.clamp(0.0, 1.0);
        let f = if j > 0.0 {
            rng.random_range(-j..=j)
        } else {
            0.0
        };
        self.period.mul_f64(1.0 + f)
    }
}

/// Where a step's due time came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DueSource {
    /// Scheduled now: now + the step's jittered wait; journalled.
    New,
    /// Journalled by an earlier run of the sidecar, and kept.
    Journal,
    /// Journalled by an earlier run, but later than now + the step's wait under the current
    /// schedule (the period was shortened): scheduled anew and journalled.
    Rescheduled,
}

impl DueSource {
    pub fn as_str(self) -> &'static str {
        match self {
            DueSource::New => "new",
            DueSource::Journal => "journal",
            DueSource::Rescheduled => "rescheduled",
        }
    }
}

/// When a step is due (unix ms), given the due time an earlier run journalled for it, if any.
///
/// The journalled time is kept when it is no later than `now + wait` (the step's wait under the
/// current schedule): a restart with the same period keeps the original due time, and a longer
/// period does not postpone a transition already promised. A journalled time later than that
/// (the period was shortened) is replaced by `now + wait`. A due time already past is due at
/// once, and only once: the step after it is scheduled from when it is taken, so missed
/// periods are not made up in a burst.
pub fn due_time(journalled: Option<u64>, now_ms: u64, wait: Duration) -> (u64, DueSource) {
    let fresh = now_ms.saturating_add(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX));
    match journalled {
        Some(due) if due <= fresh => (due, DueSource::Journal),
        Some(_) => (fresh, DueSource::Rescheduled),
        None => (fresh, DueSource::New),
    }
}

/// Why the Wanderer stopped before its time.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The journal cannot be read or written.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The journal was started by another walk (seed, strategy or space).
    #[error(
        "the journal `{path}` belongs to another walk (seed {seed}, strategy {strategy}, space {space})"
    )]
    OtherWalk {
        path: String,
        seed: u64,
        strategy: String,
        space: String,
    },
    /// What is installed could not be observed before the first step.
    #[error("cannot observe what is installed at start")]
    Observe(#[source] ApplyError),
    /// After step `step` the release was left in a state the applier may not touch.
    #[error("the release is stuck after step {step}")]
    Halted {
        step: u64,
        #[source]
        source: ApplyError,
    },
}

/// Options of one run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// When transitions happen.
    pub schedule: Schedule,
    /// Stop after this many steps in total (journalled ones included); `None` runs until stopped.
    pub max_steps: Option<u64>,
    /// Longest an apply may take before it is recorded as failed; an observation of what is
    /// installed is bounded by it too.
    pub apply_timeout: Duration,
    /// Beaten whenever the loop makes progress, and every [`BEAT_EVERY`] while it waits for
    /// the next transition: the sidecar's `/healthz` fails once it stops (M3: a call no timeout
    /// bounds shows as a stall, not as a sidecar that is live and never walks again).
    pub progress: Option<Heartbeat>,
}

/// How often the loop beats [`RunOptions::progress`] while it waits for a due time.
pub const BEAT_EVERY: Duration = Duration::from_secs(10);

/// The longest a healthy loop goes without beating, for the watchdog's limit: a step (the
/// apply, the rollout guard, then the observation, each with its backstop) plus an install
/// left stuck waited for (`stuck_wait`, helm's `on_stuck: wait`), with a minute to spare.
pub fn longest_quiet(
    apply_timeout: Duration,
    rollout_wait: Duration,
    stuck_wait: Duration,
) -> Duration {
    let bounded = apply_timeout.saturating_add(APPLY_BACKSTOP);
    bounded
        .saturating_mul(2)
        .saturating_add(rollout_wait)
        .saturating_add(stuck_wait)
        .saturating_add(Duration::from_secs(60))
}

fn beat(opts: &RunOptions) {
    if let Some(h) = &opts.progress {
        h.beat();
    }
}

/// Sleeps `wait`, beating every [`BEAT_EVERY`] (or a third of the watchdog's limit); false when `shutdown` came first.
async fn wait_beating(wait: Duration, opts: &RunOptions, shutdown: &CancellationToken) -> bool {
    let until = tokio::time::Instant::now() + wait;
    loop {
        beat(opts);
        let now = tokio::time::Instant::now();
        if now >= until {
            return true;
        }
        // Well within the watchdog's limit, however short it was set.
        let every = opts
            .progress
            .as_ref()
            .and_then(Heartbeat::max_age)
            .map_or(BEAT_EVERY, |m| BEAT_EVERY.min(m / 3));
        let nap = (until - now).min(every);
        tokio::select! {
            _ = shutdown.cancelled() => return false,
            _ = tokio::time::sleep(nap) => {}
        }
    }
}

/// What is installed, within `apply_timeout` and the backstop (M3: `helm status` or the
/// simulator's `/installed` that hang would otherwise hold the loop for ever).
async fn observe<A: Applier>(applier: &A, apply_timeout: Duration) -> Result<Install, ApplyError> {
    tokio::time::timeout(
        apply_timeout.saturating_add(APPLY_BACKSTOP),
        applier.observe_installed(),
    )
    .await
    .unwrap_or(Err(ApplyError::Timeout(apply_timeout)))
}

/// Runs the Wanderer until `shutdown` or `max_steps`; returns the last step taken. `on_started`
/// is called once, after the first observation of what is installed (the sidecar's readiness).
/// A SIGTERM while applying lets the apply finish and journal its outcome (bounded by
/// `apply_timeout`).
pub async fn run<A: Applier, P: Planner>(
    journal_path: &std::path::Path,
    applier: &A,
    planner: &mut P,
    opts: &RunOptions,
    metrics: &WandererMetrics,
    shutdown: &CancellationToken,
    on_started: impl FnOnce(),
) -> Result<u64, RunError> {
    let (mut journal, recovered) = Journal::open(journal_path)?;
    if recovered.torn_bytes > 0 {
        JournalLineDropped {
            path: journal_path,
            bytes: recovered.torn_bytes,
        }
        .emit(metrics);
    }
    if let Some((before, after)) = recovered.compacted {
        JournalCompacted {
            path: journal_path,
            before,
            after,
        }
        .emit(metrics);
    }
    let (seed, strategy, space) = planner.identity();
    match recovered.entries.first() {
        None => journal.append(&Entry::Start {
            seed,
            strategy: strategy.clone(),
            space_hash: space.clone(),
            at: now(),
        })?,
        Some(Entry::Start {
            seed: s,
            strategy: st,
            space_hash: h,
            ..
        }) if (*s, st, h) == (seed, &strategy, &space) => {}
        Some(Entry::Start {
            seed: s,
            strategy: st,
            space_hash: h,
            ..
        }) => {
            return Err(RunError::OtherWalk {
                path: journal_path.display().to_string(),
                seed: *s,
                strategy: st.clone(),
                space: h.clone(),
            });
        }
        Some(_) => {
            return Err(RunError::Journal(JournalError::Corrupt {
                path: journal_path.to_owned(),
                line: 1,
                reason: "the first entry is not `start`".into(),
            }));
        }
    }
    replay(planner, &recovered);
    let (mut current, resumed) = resume(
        &mut journal,
        &recovered,
        applier,
        opts.apply_timeout,
        metrics,
    )
    .await?;
    beat(opts);
    let mut step = recovered.last_step().unwrap_or(0) + 1;
    // Only the step about to be taken can have a journalled due time still to honour.
    let mut journalled_due = recovered.scheduled(step);
    WandererStarted {
        seed,
        strategy: &strategy,
        space: &space,
        journal: journal_path,
        period: opts.schedule.period,
        generation: step - 1,
        observed: &current,
        last: resumed.or_else(|| recovered.last_phases()),
    }
    .emit(metrics);
    CoverageChanged {
        ratios: &planner.coverage(),
    }
    .emit(metrics);
    on_started();
    let reason = loop {
        beat(opts);
        if opts.max_steps.is_some_and(|m| step > m) {
            break "max_steps";
        }
        if shutdown.is_cancelled() {
            // Stopping after an apply that the signal let finish: schedule nothing.
            break "shutdown";
        }
        let now_ms = now_unix_ms();
        let (due, source) = due_time(
            journalled_due.take(),
            now_ms,
            opts.schedule.wait(seed, step),
        );
        if source != DueSource::Journal {
            // Synced before waiting: a restart from here on waits for this same due time.
            journal.append(&Entry::Scheduled {
                step,
                due_unix_ms: due,
                at: rfc3339(now_ms),
            })?;
        }
        let wait = Duration::from_millis(due.saturating_sub(now_ms));
        TransitionScheduled {
            step,
            due_unix_ms: due,
            wait,
            source,
        }
        .emit(metrics);
        if !wait_beating(wait, opts, shutdown).await {
            break "shutdown";
        }
        let target = planner.next(step, &current);
        // The intent's `at` is the apply's start: journalled and synced, then exported, then
        // applied, so the gauge never shows a start the journal does not hold.
        let started_ms = now_unix_ms();
        journal.append(&Entry::Intent {
            step,
            from: current.clone(),
            to: target.clone(),
            at: rfc3339(started_ms),
        })?;
        ApplyStarted {
            step,
            from: &current,
            to: &target,
            started_unix_ms: started_ms,
        }
        .emit(metrics);
        let start = Instant::now();
        let applied =
            tokio::time::timeout(opts.apply_timeout + APPLY_BACKSTOP, applier.apply(&target))
                .await
                .unwrap_or(Err(ApplyError::Timeout(opts.apply_timeout)));
        let finished_ms = now_unix_ms();
        ApplyFinished {
            step,
            finished_unix_ms: finished_ms,
            took: start.elapsed(),
            result: match &applied {
                Ok(()) => "ok",
                Err(e) => e.kind(),
            },
        }
        .emit(metrics);
        let timed_out = applied.as_ref().is_err_and(ApplyError::is_timeout);
        if let Err(ApplyError::Killed {
            command,
            pgid,
            signal,
            after,
        }) = &applied
        {
            ApplyKilled {
                step,
                command,
                pgid: *pgid,
                signal,
                after: *after,
            }
            .emit(metrics);
        }
        if timed_out {
            // Cut off mid-operation: the release may be left pending. Settle it (per the
            // applier's policy) before observing; a release that stays stuck halts the walk.
            if let Err(e) = settle(&mut journal, step, applier, metrics).await? {
                record_outcome(
                    &mut journal,
                    &TransitionOutcome {
                        step,
                        from: &current,
                        to: &target,
                        observed: None,
                        result: Outcome::Indeterminate,
                        kind: e.kind(),
                        error: Some(&error_chain(&e)),
                        duration: start.elapsed(),
                        phases: Phases {
                            started: Some(started_ms),
                            finished: Some(finished_ms),
                            observed: None,
                        },
                    },
                    metrics,
                )?;
                return Err(RunError::Halted { step, source: e });
            }
        }
        beat(opts);
        let observed = observe(applier, opts.apply_timeout).await;
        let observed_ms = now_unix_ms();
        let duration = start.elapsed();
        let failure = match (&applied, &observed) {
            (Err(e), _) => Some((e.kind(), error_chain(e))),
            (Ok(()), Err(e)) => Some(("unobserved", format!("cannot observe: {}", error_chain(e)))),
            (Ok(()), Ok(o)) => apply::difference(&target, o)
                .map(|d| ("mismatch", format!("observed is not the target: {d}"))),
        };
        let observed = observed.ok();
        let from = current.clone();
        record_outcome(
            &mut journal,
            &TransitionOutcome {
                step,
                from: &from,
                to: &target,
                observed: observed.as_ref(),
                // An apply cut off by its timeout has no known result: what is observed after
                // it is recorded, not assumed.
                result: match (&failure, timed_out) {
                    (_, true) => Outcome::Indeterminate,
                    (None, false) => Outcome::Applied,
                    (Some(_), false) => Outcome::Failed,
                },
                kind: failure.as_ref().map_or("none", |(k, _)| k),
                error: failure.as_ref().map(|(_, e)| e.as_str()),
                duration,
                phases: Phases {
                    started: Some(started_ms),
                    finished: Some(finished_ms),
                    observed: observed.is_some().then_some(observed_ms),
                },
            },
            metrics,
        )?;
        if let Some(o) = observed {
            current = o;
        }
        if failure.is_none() {
            planner.record(&from, &target);
        }
        CoverageChanged {
            ratios: &planner.coverage(),
        }
        .emit(metrics);
        step += 1;
    };
    WandererStopped {
        steps: step - 1,
        reason,
    }
    .emit(metrics);
    Ok(step - 1)
}

/// Journals a transition's outcome, then emits it: one set of fields for both, so the journal
/// and the log and metrics always agree.
fn record_outcome(
    journal: &mut Journal,
    outcome: &TransitionOutcome<'_>,
    metrics: &WandererMetrics,
) -> Result<(), JournalError> {
    journal.append(&Entry::Outcome {
        step: outcome.step,
        result: outcome.result,
        observed: outcome.observed.cloned(),
        error: outcome.error.map(str::to_owned),
        duration_s: outcome.duration.as_secs_f64(),
        at: now(),
        started_unix_ms: outcome.phases.started,
        finished_unix_ms: outcome.phases.finished,
        observed_unix_ms: outcome.phases.observed,
    })?;
    outcome.emit(metrics);
    Ok(())
}

fn error_chain(e: &dyn std::error::Error) -> String {
    crate::sidecar::error_chain(e)
}

/// Feeds the journalled, applied transitions back to the walk so coverage resumes too (a
/// compacted journal's snapshot included).
fn replay<P: Planner>(planner: &mut P, recovered: &Recovered) {
    for (from, to) in recovered.applied() {
        planner.record(from, to);
    }
}

/// Finds what is installed: an interrupted action is recorded as indeterminate, then observed.
/// With an interrupted action, also returns its step and phases: started at its intent,
/// finished when the restarted sidecar found the install settled, observed right after.
async fn resume<A: Applier>(
    journal: &mut Journal,
    recovered: &Recovered,
    applier: &A,
    apply_timeout: Duration,
    metrics: &WandererMetrics,
) -> Result<(Install, Option<(u64, Phases)>), RunError> {
    if let Some((
        Entry::Intent {
            step, from, to, at, ..
        },
        state,
    )) = recovered.unresolved()
    {
        let started = parse_rfc3339(at);
        // Already journalled indeterminate by a sidecar killed before it observed: only the
        // observation is missing, so it is not counted a second time.
        if state == Unresolved::NoOutcome {
            record_outcome(
                journal,
                &TransitionOutcome {
                    step: *step,
                    from,
                    to,
                    observed: None,
                    result: Outcome::Indeterminate,
                    kind: "interrupted",
                    error: Some("the sidecar stopped while this transition was in flight"),
                    duration: Duration::ZERO,
                    phases: Phases {
                        started,
                        ..Phases::default()
                    },
                },
                metrics,
            )?;
        }
        // The interrupted install may still be going, or left pending: observe a settled system.
        if let Err(e) = settle(journal, *step, applier, metrics).await? {
            return Err(RunError::Observe(e));
        }
        let finished = now_unix_ms();
        let observed = observe(applier, apply_timeout)
            .await
            .map_err(RunError::Observe)?;
        let phases = Phases {
            started,
            finished: Some(finished),
            observed: Some(now_unix_ms()),
        };
        record_outcome(
            journal,
            &TransitionOutcome {
                step: *step,
                from,
                to,
                observed: Some(&observed),
                result: Outcome::Observed,
                kind: "none",
                error: None,
                duration: Duration::ZERO,
                phases,
            },
            metrics,
        )?;
        return Ok((observed, Some((*step, phases))));
    }
    if let Err(e) = settle(
        journal,
        recovered.last_step().unwrap_or(0),
        applier,
        metrics,
    )
    .await?
    {
        return Err(RunError::Observe(e));
    }
    let observed = observe(applier, apply_timeout)
        .await
        .map_err(RunError::Observe)?;
    Ok((observed, None))
}

/// Settles the applier after step `step`: a release found stuck is journalled and counted with
/// what its policy did. The outer error is the journal's; the inner one the applier's.
async fn settle<A: Applier>(
    journal: &mut Journal,
    step: u64,
    applier: &A,
    metrics: &WandererMetrics,
) -> Result<Result<(), ApplyError>, JournalError> {
    let (recovery, result) = match applier.settle().await {
        Ok(r) => (r, Ok(())),
        Err(e) => (e.as_failed_recovery(), Err(e)),
    };
    if let Some(r) = recovery {
        record_release(journal, step, &r, metrics)?;
    }
    Ok(result)
}

/// Journals what was done about a stuck release, then emits it.
fn record_release(
    journal: &mut Journal,
    step: u64,
    r: &Recovery,
    metrics: &WandererMetrics,
) -> Result<(), JournalError> {
    journal.append(&Entry::Release {
        step,
        status: r.status.clone(),
        revision: r.revision,
        policy: r.policy.to_owned(),
        result: r.result.to_owned(),
        detail: r.detail.clone(),
        waited_s: r.waited.as_secs_f64(),
        at: now(),
    })?;
    ReleaseRecovered { step, recovery: r }.emit(metrics);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_waits_the_same_and_the_waits_are_pinned() {
        let schedule = Schedule {
            period: Duration::from_secs(100),
            jitter: 0.1,
        };
        let waits = |seed| {
            (1..=200)
                .map(|s| schedule.wait(seed, s))
                .collect::<Vec<_>>()
        };
        let (a, b) = (waits(42), waits(42));
        assert_eq!(a, b);
        assert_ne!(a, waits(43));
        assert!(a.iter().all(|w| (90.0..=110.0).contains(&w.as_secs_f64())));
        // Pinned: a `rand` or `chacha20` upgrade that changed them would change every replay.
        assert_eq!(a[..3], PINNED);
        let none = Schedule {
            jitter: 0.0,
            ..schedule
        };
        assert_eq!(none.wait(42, 1), Duration::from_secs(100));
    }

    #[test]
    fn a_journalled_due_time_is_kept_unless_the_current_schedule_is_sooner() {
        let wait = Duration::from_secs(10);
        let now = 1_000_000;
        assert_eq!(due_time(None, now, wait), (1_010_000, DueSource::New));
        // Restarted halfway: the original due time, not now + period.
        assert_eq!(
            due_time(Some(1_005_000), now, wait),
            (1_005_000, DueSource::Journal)
        );
        // Already past: due at once (the loop waits zero), once.
        assert_eq!(
            due_time(Some(3_000), now, wait),
            (3_000, DueSource::Journal)
        );
        // The period was shortened below what is left: the new schedule wins.
        assert_eq!(
            due_time(Some(2_000_000), now, wait),
            (1_010_000, DueSource::Rescheduled)
        );
    }

    const PINNED: [Duration; 3] = [
        Duration::from_nanos(97_323_106_200),
        Duration::from_nanos(109_808_065_898),
        Duration::from_nanos(103_102_627_256),
    ];
}
