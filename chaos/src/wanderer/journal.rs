//! The Wanderer's journal: an append-only JSON-lines file in the state directory. Each
//! transition's intent is written and synced before it is acted on, its outcome after, so a
//! crash at any instant leaves a readable history:
//!
//! - a torn last line (the crash hit mid-write) is dropped on open and nothing before it is lost;
//! - an intent without an outcome is an action whose result is unknown: the caller records it
//!   as `indeterminate`, observes what is really installed, and records that (as Jepsen's `info`
//!   operations: re-observed, never assumed).
//! - a `scheduled` entry holds the next transition's due time (absolute), so a restarted
//!   sidecar waits only for what is left of it. Journals written before it existed still load.
//! - each outcome carries the transition's phases ([`Phases`]): when its apply started (the
//!   intent), when the apply returned, and when the result was observed live (unix ms). An
//!   apply interrupted by a restart has an `indeterminate` outcome with no `finished`, then an
//!   `observed` one whose `finished` is when the restarted sidecar found the install settled.
//! - past [`COMPACT_BYTES`] on open, the journal is compacted: its `start`, a `snapshot` of
//!   every applied transition before the last [`TAIL_INTENTS`] intents (what coverage replays),
//!   then those intents and everything after them verbatim. It is written to a temporary file,
//!   synced, renamed over the journal and the directory synced, so a crash leaves either the old
//!   journal or the new one, never a mix; a week of transitions stays well under a megabyte.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use upsoak_agones::release::Install;

/// One journal line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Entry {
    /// The walk this journal belongs to; the first line.
    Start {
        seed: u64,
        strategy: String,
        /// Hash of the configuration space, so a journal is not resumed against another space.
        space_hash: String,
        at: String,
    },
    /// Step `step` is due at `due_unix_ms` (wall clock, jitter included); journalled when it is
    /// scheduled, before the wait. The last one for a step wins (a reschedule appends another).
    Scheduled {
        step: u64,
        due_unix_ms: u64,
        at: String,
    },
    /// About to apply step `step`'s transition.
    Intent {
        step: u64,
        from: Install,
        to: Install,
        at: String,
    },
    /// A release found left pending by an earlier operation (helm killed mid-upgrade), and what
    /// the `on_stuck` policy did about it. `step` is the transition after which it was found
    /// (the interrupted one on a restart).
    Release {
        step: u64,
        /// The status found, e.g. `pending-upgrade`.
        status: String,
        revision: u64,
        /// `rollback` or `fail`.
        policy: String,
        /// `rolled_back`, `failed` or `cleared`.
        result: String,
        detail: String,
        waited_s: f64,
        at: String,
    },
    /// Every applied transition of the entries a compaction folded, for coverage to resume;
    /// the second line of a compacted journal.
    Snapshot {
        applied: Vec<AppliedPair>,
        /// Entries folded into it, over every compaction.
        entries: u64,
        at: String,
    },
    /// What happened to step `step`.
    Outcome {
        step: u64,
        result: Outcome,
        /// What was observed installed afterwards, when it could be observed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        observed: Option<Install>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        duration_s: f64,
        at: String,
        /// Unix ms the apply started (the intent was journalled); absent in older journals.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        started_unix_ms: Option<u64>,
        /// Unix ms the apply returned (helm exited, the simulator's install window closed);
        /// absent when it never returned (interrupted) and in older journals.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        finished_unix_ms: Option<u64>,
        /// Unix ms the result was observed live; absent when it was not observed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        observed_unix_ms: Option<u64>,
    },
}

/// A transition applied `times` times, as a snapshot keeps it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppliedPair {
    pub from: Install,
    pub to: Install,
    pub times: u64,
}

/// A journal larger than this is compacted when it is opened.
pub const COMPACT_BYTES: usize = 1 << 20;

/// Intents (and everything after the first of them) a compaction keeps verbatim: the pending
/// intent, the last outcome's phases and the schedule are all among them.
pub const TAIL_INTENTS: usize = 8;

/// When one transition's apply started, returned and was observed live (unix ms); each is
/// `None` when it did not happen (or the journal predates it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Phases {
    /// The intent was journalled and the apply begun.
    pub started: Option<u64>,
    /// The apply returned.
    pub finished: Option<u64>,
    /// The outcome was observed.
    pub observed: Option<u64>,
}

/// The result of one transition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The target is what is observed installed.
    Applied,
    /// The apply failed, or what is observed is not the target.
    Failed,
    /// The process died while acting: the result is unknown until observed.
    Indeterminate,
    /// After an indeterminate outcome: what was observed on restart.
    Observed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::Failed => "failed",
            Outcome::Indeterminate => "indeterminate",
            Outcome::Observed => "observed",
        }
    }
}

/// How far the recovery of an interrupted step got before this start ([`Recovered::unresolved`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unresolved {
    /// Its intent has no outcome: it is journalled `indeterminate`, then observed.
    NoOutcome,
    /// It is journalled `indeterminate` and was never observed: it is observed.
    Indeterminate,
}

/// The largest step number a journal may hold: 2^53, the largest integer every JSON reader
/// keeps exact (a hand-edited `u64::MAX` would overflow the next step's number).
pub const MAX_STEP: u64 = 1 << 53;

/// Why a journal cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("cannot open or write the journal `{0}`")]
    Io(PathBuf, #[source] std::io::Error),
    #[error("{path}:{line}: not a journal entry: {reason}")]
    Corrupt {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("cannot encode a journal entry")]
    Encode(#[source] serde_json::Error),
}

/// An open journal, positioned at its end.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: File,
}

/// What opening a journal found.
#[derive(Debug, Default, PartialEq)]
pub struct Recovered {
    /// Every complete entry, in order.
    pub entries: Vec<Entry>,
    /// Bytes of a torn last line that were dropped.
    pub torn_bytes: usize,
    /// The journal was compacted on open: its size before and after, in bytes.
    pub compacted: Option<(usize, usize)>,
}

impl Recovered {
    /// Every applied transition, in order (a snapshot's pairs first, each as often as it was
    /// applied): what the walk's coverage replays.
    pub fn applied(&self) -> Vec<(&Install, &Install)> {
        let mut intents = std::collections::BTreeMap::new();
        let mut out = Vec::new();
        for e in &self.entries {
            match e {
                Entry::Snapshot { applied, .. } => {
                    for p in applied {
                        out.extend((0..p.times).map(|_| (&p.from, &p.to)));
                    }
                }
                Entry::Intent { step, from, to, .. } => {
                    intents.insert(*step, (from, to));
                }
                Entry::Outcome {
                    step,
                    result: Outcome::Applied,
                    ..
                } => out.extend(intents.get(step).copied()),
                _ => {}
            }
        }
        out
    }

    /// The last intent with no outcome after it: an action interrupted by a crash.
    pub fn pending(&self) -> Option<&Entry> {
        self.unresolved()
            .filter(|(_, u)| *u == Unresolved::NoOutcome)
            .map(|(e, _)| e)
    }

    /// The last intent whose result is still unknown, and how far its recovery got: no outcome
    /// at all (the crash hit the apply), or `indeterminate` with no `observed` after it (a
    /// restarted sidecar was killed too before it observed). Only the last intent can be
    /// unresolved: the walk takes no step before the previous one is resolved.
    pub fn unresolved(&self) -> Option<(&Entry, Unresolved)> {
        let last_intent = self
            .entries
            .iter()
            .rposition(|e| matches!(e, Entry::Intent { .. }))?;
        let Entry::Intent { step, .. } = &self.entries[last_intent] else {
            return None;
        };
        let last_outcome = self.entries[last_intent..]
            .iter()
            .rev()
            .find_map(|e| match e {
                Entry::Outcome {
                    step: s, result, ..
                } if s == step => Some(*result),
                _ => None,
            });
        let state = match last_outcome {
            None => Unresolved::NoOutcome,
            // However many restarts were killed before observing, one observation resolves it.
            Some(Outcome::Indeterminate) => Unresolved::Indeterminate,
            Some(_) => return None,
        };
        Some((&self.entries[last_intent], state))
    }

    /// The due time journalled for `step` (the last one), if it was scheduled and not yet taken.
    pub fn scheduled(&self, step: u64) -> Option<u64> {
        self.entries.iter().rev().find_map(|e| match e {
            Entry::Scheduled {
                step: s,
                due_unix_ms,
                ..
            } if *s == step => Some(*due_unix_ms),
            _ => None,
        })
    }

    /// The step and phases of the last journalled outcome, if any: what the apply gauges showed
    /// when the sidecar stopped.
    pub fn last_phases(&self) -> Option<(u64, Phases)> {
        self.entries.iter().rev().find_map(|e| match e {
            Entry::Outcome {
                step,
                started_unix_ms,
                finished_unix_ms,
                observed_unix_ms,
                ..
            } => Some((
                *step,
                Phases {
                    started: *started_unix_ms,
                    finished: *finished_unix_ms,
                    observed: *observed_unix_ms,
                },
            )),
            _ => None,
        })
    }

    /// The highest step with an intent, if any.
    pub fn last_step(&self) -> Option<u64> {
        self.entries.iter().rev().find_map(|e| match e {
            Entry::Intent { step, .. } => Some(*step),
            _ => None,
        })
    }
}

impl Journal {
    /// Opens (creating) the journal at `path`, drops a torn last line, and returns every entry.
    pub fn open(path: &Path) -> Result<(Journal, Recovered), JournalError> {
        let io = |e| JournalError::Io(path.to_owned(), e);
        let existed = path.exists();
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(io)?;
        if !existed {
            // The new file's directory entry must survive a crash as its first lines do.
            let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
            upsoak_common::state::sync_dir(dir.unwrap_or(Path::new("."))).map_err(io)?;
        }
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io)?;
        let complete = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let torn_bytes = bytes.len() - complete;
        if torn_bytes > 0 {
            // The crash hit mid-append: the partial line was never acknowledged, so dropping it
            // loses nothing that was promised.
            file.set_len(complete as u64).map_err(io)?;
            file.sync_data().map_err(io)?;
        }
        file.seek(SeekFrom::End(0)).map_err(io)?;
        let mut entries = Vec::new();
        for (i, line) in bytes[..complete].split(|b| *b == b'\n').enumerate() {
            if line.is_empty() {
                continue;
            }
            let corrupt = |reason: String| JournalError::Corrupt {
                path: path.to_owned(),
                line: i + 1,
                reason,
            };
            let entry: Entry = serde_json::from_slice(line).map_err(|e| corrupt(e.to_string()))?;
            if let Entry::Intent { step, .. } = &entry
                && *step > MAX_STEP
            {
                // The Wanderer counts on from the last step (`last_step + 1`).
                return Err(corrupt(format!(
                    "step {step} is past the largest step {MAX_STEP}"
                )));
            }
            entries.push(entry);
        }
        let mut recovered = Recovered {
            entries,
            torn_bytes,
            compacted: None,
        };
        if complete > COMPACT_BYTES
            && let Some(entries) = compacted(&recovered)
        {
            let after = replace(path, &entries)?;
            recovered.entries = entries;
            recovered.compacted = Some((complete, after));
            file = OpenOptions::new().append(true).open(path).map_err(io)?;
        }
        Ok((
            Journal {
                path: path.to_owned(),
                file,
            },
            recovered,
        ))
    }

    /// Appends `entry` and syncs it to disk before returning. A failed append (a full disk) is
    /// cut back off, so the journal stays whole and the append can be retried.
    pub fn append(&mut self, entry: &Entry) -> Result<(), JournalError> {
        let mut line = serde_json::to_vec(entry).map_err(JournalError::Encode)?;
        line.push(b'\n');
        let io = |e| JournalError::Io(self.path.clone(), e);
        let before = self.file.metadata().map_err(io)?.len();
        let written = self
            .file
            .write_all(&line)
            .and_then(|()| self.file.sync_data());
        if let Err(e) = written {
            // Best effort: a torn tail left behind is dropped at the next open anyway.
            let _ = self.file.set_len(before);
            return Err(io(e));
        }
        Ok(())
    }
}

/// The entries of `r` compacted: its `start`, a snapshot of the applied transitions before the
/// last [`TAIL_INTENTS`] intents, then those verbatim; `None` when there is nothing to fold.
fn compacted(r: &Recovered) -> Option<Vec<Entry>> {
    let intents: Vec<usize> = r
        .entries
        .iter()
        .enumerate()
        .filter(|(_, e)| matches!(e, Entry::Intent { .. }))
        .map(|(i, _)| i)
        .collect();
    let cut = *intents.get(intents.len().checked_sub(TAIL_INTENTS)?)?;
    let (start, folded) = r.entries[..cut].split_first()?;
    if folded.is_empty() {
        return None;
    }
    let head = Recovered {
        entries: folded.to_vec(),
        ..Recovered::default()
    };
    let mut applied: Vec<AppliedPair> = Vec::new();
    for (from, to) in head.applied() {
        match applied.iter_mut().find(|p| &p.from == from && &p.to == to) {
            Some(p) => p.times += 1,
            None => applied.push(AppliedPair {
                from: from.clone(),
                to: to.clone(),
                times: 1,
            }),
        }
    }
    let before: u64 = folded
        .iter()
        .map(|e| match e {
            Entry::Snapshot { entries, .. } => *entries,
            _ => 1,
        })
        .sum();
    let mut out = vec![
        start.clone(),
        Entry::Snapshot {
            applied,
            entries: before,
            at: now(),
        },
    ];
    out.extend_from_slice(&r.entries[cut..]);
    Some(out)
}

/// Writes `entries` as the journal at `path`, crash-safe: a temporary file, synced, renamed
/// over it, the directory synced. Returns the new size in bytes.
fn replace(path: &Path, entries: &[Entry]) -> Result<usize, JournalError> {
    let io = |e| JournalError::Io(path.to_owned(), e);
    let mut text = Vec::new();
    for e in entries {
        text.extend(serde_json::to_vec(e).map_err(JournalError::Encode)?);
        text.push(b'\n');
    }
    // Temporary file, fsync, rename, directory fsync: a crash leaves the old or the new journal.
    upsoak_common::state::write_atomic(path, &text).map_err(io)?;
    Ok(text.len())
}

/// Now, as RFC 3339 UTC.
pub fn now() -> String {
    rfc3339(now_unix_ms())
}

/// Now, in milliseconds since the Unix epoch (wall clock).
pub fn now_unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or_default()
}

/// Milliseconds since the epoch as RFC 3339 UTC, as the journal writes its `at`.
pub fn rfc3339(unix_ms: u64) -> String {
    let secs = i64::try_from(unix_ms / 1000).unwrap_or(i64::MAX);
    format_rfc3339(secs, (unix_ms % 1000) as u32)
}

/// Reads a journal timestamp (`YYYY-MM-DDTHH:MM:SS.mmmZ`, as [`now`] writes it) back to
/// milliseconds since the epoch; `None` for any other shape.
pub fn parse_rfc3339(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() != 24 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[19] != b'.' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss, ms) = (num(11..13)?, num(14..16)?, num(17..19)?, num(20..23)?);
    if b[23] != b'Z' || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    // days-from-civil, the inverse of `format_rfc3339`'s civil-from-days.
    let y = y - i64::from(m <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss;
    u64::try_from(secs * 1000 + ms).ok()
}

/// Formats seconds since the epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ` (civil-from-days, proleptic
/// Gregorian), without a date crate.
fn format_rfc3339(secs: i64, millis: u32) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests;
