//! The agent's persisted state: every transition of the Wanderer it has seen, with the
//! verdicts of the judged ones and their evidence, kept in `history.json` in the state
//! directory so that a restart loses nothing. Only data and its file format live here; how
//! transitions are detected and judged is in `eval`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::judge::Evidence;
use crate::spec::Verdict;

/// One transition of the Wanderer, as seen in Prometheus.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Transition {
    pub generation: u64,
    /// Unix seconds the new generation was first seen.
    pub at: i64,
    pub from: BTreeMap<String, String>,
    pub to: BTreeMap<String, String>,
    /// Set once every group has judged it.
    #[serde(default)]
    pub judged: Option<Judged>,
    /// Verdicts of the groups that have judged it so far (each group judges at its own slot).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub partial: BTreeMap<String, SloVerdict>,
    /// The groups that have judged it so far.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub groups_done: BTreeSet<String>,
    /// The disruption window's verdicts (apply start → settle end), judged once at the settle
    /// end; `None` until then, or when the specs have no `window: disruption` SLO.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disruption: Option<Disruption>,
    /// The steady period after the first window, judged in consecutive chunks (module `chunks`),
    /// oldest first; each is a verdict row of this transition.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chunks: Vec<Judged>,
    /// Set once the next transition's apply started: no chunk of this one is judged any more.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub steady_closed: bool,
}

impl Transition {
    /// A transition seen at `at`, nothing judged yet.
    pub fn new(
        generation: u64,
        at: i64,
        from: BTreeMap<String, String>,
        to: BTreeMap<String, String>,
    ) -> Transition {
        Transition {
            generation,
            at,
            from,
            to,
            judged: None,
            partial: BTreeMap::new(),
            groups_done: BTreeSet::new(),
            disruption: None,
            chunks: Vec::new(),
            steady_closed: false,
        }
    }

    /// The steady verdict: the worst of the first window and every chunk judged so far;
    /// `None` until the first window is judged.
    pub fn steady_verdict(&self) -> Option<Verdict> {
        let first = self.judged.as_ref()?;
        Some(crate::eval::worst(
            std::iter::once(first.verdict).chain(self.chunks.iter().map(|c| c.verdict)),
        ))
    }

    /// The latest judged steady window: the last chunk, else the first window.
    pub fn latest_steady(&self) -> Option<&Judged> {
        self.chunks.last().or(self.judged.as_ref())
    }
}

/// The verdicts of a transition's disruption window (module `disruption`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Disruption {
    /// Unix seconds the apply started, as the sidecar exported it; `None` when it did not
    /// (an older sidecar): the window then opens when the transition went live.
    pub apply_started: Option<f64>,
    /// Unix seconds the apply finished; `None` when unknown or still in progress.
    pub apply_finished: Option<f64>,
    /// The window: apply start (or the live moment) → settle end, unix seconds.
    pub window_start: i64,
    pub window_end: i64,
    /// Unix seconds the verdict was reached.
    pub judged_at: i64,
    /// The worst verdict of the window's SLOs.
    pub verdict: Verdict,
    /// Where the window's start came from, in a sentence (the fallback says so).
    pub phases: String,
    /// By `group/slo`; each SLO's `samples` holds its one value at the window's end.
    pub slos: BTreeMap<String, SloVerdict>,
}

/// The verdicts of a judged transition.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Judged {
    pub window_start: i64,
    pub window_end: i64,
    /// Unix seconds the verdict was reached (its lag behind `window_end` is the detection delay).
    #[serde(default)]
    pub judged_at: i64,
    pub verdict: Verdict,
    /// By `group/slo`.
    pub slos: BTreeMap<String, SloVerdict>,
}

/// One SLO's verdict for a transition.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SloVerdict {
    pub group: String,
    pub slo: String,
    pub severity: crate::spec::Severity,
    pub query: String,
    pub evidence: Evidence,
    /// Mean of the window before the transition, for comparison.
    pub previous: Option<f64>,
    /// The judged samples, for reports and charts. A step without a value (NaN: an empty
    /// histogram, 0/0) is stored as `null`, as JSON has no NaN, and read back as NaN.
    #[serde(with = "nan_as_null")]
    pub samples: Vec<(f64, f64)>,
}

mod nan_as_null {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(v: &[(f64, f64)], s: S) -> Result<S::Ok, S::Error> {
        v.iter()
            .map(|(t, x)| (*t, x.is_finite().then_some(*x)))
            .collect::<Vec<_>>()
            .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(f64, f64)>, D::Error> {
        Ok(Vec::<(f64, Option<f64>)>::deserialize(d)?
            .into_iter()
            .map(|(t, x)| (t, x.unwrap_or(f64::NAN)))
            .collect())
    }
}

/// How many of the latest judged steady windows (first windows and chunks, across transitions)
/// keep their samples; older ones keep only their aggregates (the evidence: mean, sample count,
/// baseline, threshold, p-value, reason), so a week-long run's history stays a few MB: a day
/// of hourly chunks, or the last 24 transitions at the fast preset.
pub const SAMPLE_WINDOWS: usize = 24;

/// The agent's state: every transition seen, judged or pending.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct History {
    pub last_generation: Option<u64>,
    pub last_config: BTreeMap<String, String>,
    pub transitions: Vec<Transition>,
}

impl History {
    pub fn path(dir: &Path) -> PathBuf {
        dir.join("history.json")
    }

    /// Loads the history from `dir`; an absent file is an empty history. A history written
    /// before alert verdicts were bounded is bounded as it is read ([`History::clip_alert_text`]).
    pub fn load(dir: &Path) -> crate::Result<History> {
        History::load_bounded(dir).map(|(h, _)| h)
    }

    /// [`History::load`], with how many alert verdicts were clipped (above 0: the file on disk
    /// is still the unbounded one, and should be written again).
    pub fn load_bounded(dir: &Path) -> crate::Result<(History, usize)> {
        let p = History::path(dir);
        match std::fs::read_to_string(&p) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((History::default(), 0)),
            Err(e) => Err(crate::Error::Read(p.display().to_string(), e)),
            Ok(t) => {
                let mut h: History = serde_json::from_str(&t)
                    .map_err(|e| crate::Error::Decode(p.display().to_string(), "history", e))?;
                drop(t);
                let clipped = h.clip_alert_text();
                Ok((h, clipped))
            }
        }
    }

    /// Clips the text of every webhook alert verdict to the bounds new ones are made within
    /// ([`crate::webhook::verdicts`]): an older agent copied whole summaries into every
    /// transition. Returns the verdicts clipped.
    pub fn clip_alert_text(&mut self) -> usize {
        use crate::webhook::verdicts::{GROUP, MAX_NAME_BYTES, MAX_SUMMARY_BYTES, clip};
        let mut clipped = 0;
        for t in &mut self.transitions {
            for j in t.judged.iter_mut().chain(t.chunks.iter_mut()) {
                for v in j.slos.values_mut().filter(|v| v.group == GROUP) {
                    let before = (v.slo.len(), v.query.len(), v.evidence.reason.len());
                    v.slo = clip(&v.slo, MAX_NAME_BYTES);
                    v.query = clip(&v.query, 2 * MAX_NAME_BYTES);
                    v.evidence.reason =
                        clip(&v.evidence.reason, MAX_SUMMARY_BYTES + 2 * MAX_NAME_BYTES);
                    if before != (v.slo.len(), v.query.len(), v.evidence.reason.len()) {
                        clipped += 1;
                    }
                }
            }
        }
        clipped
    }

    /// Writes atomically and durably: a temporary file unique to the process, synced, renamed,
    /// the directory synced ([`upsoak_common::state::write_atomic`]).
    pub fn save(&self, dir: &Path) -> crate::Result<()> {
        let p = History::path(dir);
        let w = |e| crate::Error::Write(p.display().to_string(), e);
        // Compact: a week of verdicts with samples is several MB, and no one edits it by hand.
        let text = serde_json::to_vec(self).map_err(|e| w(std::io::Error::other(e)))?;
        upsoak_common::state::write_atomic(&p, &text).map_err(w)
    }

    /// Bounds the history for weeks: the samples of every steady window but the latest `keep`
    /// (by end) are dropped, their evidence kept. Returns the windows it cleared.
    pub fn drop_old_samples(&mut self, keep: usize) -> usize {
        let mut ends: Vec<i64> = self
            .transitions
            .iter()
            .flat_map(|t| t.judged.iter().chain(&t.chunks))
            .map(|w| w.window_end)
            .collect();
        if ends.len() <= keep {
            return 0;
        }
        ends.sort_unstable_by(|a, b| b.cmp(a));
        // Windows ending at or after the cut keep their samples (ties all kept).
        let cut = ends[keep.saturating_sub(1).min(ends.len() - 1)];
        let mut cleared = 0;
        for w in self
            .transitions
            .iter_mut()
            .flat_map(|t| t.judged.iter_mut().chain(t.chunks.iter_mut()))
        {
            if (keep == 0 || w.window_end < cut) && w.slos.values().any(|v| !v.samples.is_empty()) {
                for v in w.slos.values_mut() {
                    v.samples = Vec::new();
                }
                cleared += 1;
            }
        }
        cleared
    }

    /// What a restart must not lose, counted: the generation seen, the transitions recorded, and
    /// the judging done (groups and whole transitions). The history is written only when it
    /// changes, not at every slot.
    pub fn progress(&self) -> (Option<u64>, usize, usize, usize) {
        let judged = self
            .transitions
            .iter()
            .filter(|t| t.judged.is_some())
            .count();
        // Chunks and closed steady periods are progress too (they count as judged groups).
        let groups = self
            .transitions
            .iter()
            .map(|t| t.groups_done.len() + t.chunks.len() + usize::from(t.steady_closed))
            .sum();
        (self.last_generation, self.transitions.len(), judged, groups)
    }

    /// The overall verdict: fail if any transition failed (in either window), else
    /// inconclusive if any could not be judged (or none was), else pass (warnings included).
    pub fn overall(&self) -> Verdict {
        let judged: Vec<Verdict> = self
            .transitions
            .iter()
            .flat_map(|t| {
                let steady = t.steady_verdict();
                let disruption = t.disruption.as_ref().map(|d| d.verdict);
                steady.into_iter().chain(disruption)
            })
            .collect();
        if judged.contains(&Verdict::Fail) {
            Verdict::Fail
        } else if judged.is_empty() || judged.contains(&Verdict::Inconclusive) {
            Verdict::Inconclusive
        } else {
            Verdict::Pass
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_history_with_whole_alert_summaries_is_clipped_as_it_is_loaded() {
        let dir = std::env::temp_dir().join(format!("upsoak-history-clip-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let huge = "s".repeat(900 << 10);
        let verdict = |group: &str| SloVerdict {
            group: group.into(),
            slo: "Big".into(),
            severity: crate::spec::Severity::Warning,
            query: "alert Big (Alertmanager webhook)".into(),
            evidence: Evidence::new(Verdict::Fail, format!("alert Big fired: {huge}")),
            previous: None,
            samples: Vec::new(),
        };
        let mut h = History::default();
        let mut t = Transition::new(2, 100, BTreeMap::new(), BTreeMap::new());
        t.judged = Some(Judged {
            window_start: 130,
            window_end: 430,
            judged_at: 431,
            verdict: Verdict::Fail,
            slos: BTreeMap::from([
                ("alertmanager/Big".into(), verdict("alertmanager")),
                ("g/s".into(), verdict("g")),
            ]),
        });
        h.transitions.push(t);
        // Written the way an agent before the bound wrote it: the same format, summaries whole.
        h.save(&dir).unwrap();
        let loaded = History::load(&dir).unwrap();
        let slos = &loaded.transitions[0].judged.as_ref().unwrap().slos;
        let alert = &slos["alertmanager/Big"].evidence.reason;
        assert!(alert.len() < 2 << 10, "{} bytes", alert.len());
        assert!(alert.ends_with("bytes kept)"), "{alert}");
        // Only the webhook's verdicts are clipped; the verdict itself is unchanged.
        assert_eq!(slos["g/s"].evidence.reason.len(), huge.len() + 17);
        assert_eq!(loaded.overall(), Verdict::Fail);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_history_survives_a_restart_unchanged() {
        let dir = std::env::temp_dir().join(format!("upsoak-history-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut h = History::default();
        assert_eq!(
            h.overall(),
            Verdict::Inconclusive,
            "nothing judged is never pass"
        );
        h.last_generation = Some(2);
        let mut t = Transition::new(
            2,
            100,
            BTreeMap::from([("version".into(), "1.58.0".into())]),
            BTreeMap::from([("version".into(), "1.59.0".into())]),
        );
        t.judged = Some(Judged {
            window_start: 130,
            window_end: 430,
            judged_at: 431,
            verdict: Verdict::Pass,
            slos: BTreeMap::new(),
        });
        h.transitions.push(t);
        h.save(&dir).unwrap();
        let again = History::load(&dir).unwrap();
        assert_eq!(again, h);
        assert_eq!(again.overall(), Verdict::Pass);
        // A step without a value (an empty histogram's NaN) survives the round trip as NaN.
        h.transitions[0].judged.as_mut().unwrap().slos.insert(
            "g/s".into(),
            SloVerdict {
                group: "g".into(),
                slo: "s".into(),
                severity: crate::spec::Severity::Warning,
                query: "up".into(),
                evidence: Evidence {
                    value: Some(1.0),
                    samples: 2,
                    ..Evidence::new(Verdict::Pass, "")
                },
                previous: None,
                samples: vec![(1.0, 0.5), (2.0, f64::NAN)],
            },
        );
        h.save(&dir).unwrap();
        let again = History::load(&dir).unwrap();
        let samples = &again.transitions[0].judged.as_ref().unwrap().slos["g/s"].samples;
        assert_eq!(samples[0], (1.0, 0.5));
        assert!(samples[1].0 == 2.0 && samples[1].1.is_nan());
        // Bounded: only the latest windows keep their samples, the evidence stays.
        let mut newer = h.transitions[0].clone();
        newer.at = 500;
        if let Some(j) = newer.judged.as_mut() {
            j.window_end = 800;
        }
        h.transitions.push(newer);
        assert_eq!(h.drop_old_samples(1), 1);
        let old = &h.transitions[0].judged.as_ref().unwrap().slos["g/s"];
        assert!(old.samples.is_empty() && old.evidence.value == Some(1.0));
        assert_eq!(
            h.transitions[1].judged.as_ref().unwrap().slos["g/s"]
                .samples
                .len(),
            2
        );
        assert_eq!(h.drop_old_samples(1), 0, "nothing left to clear");
        // A torn file is an error, never an empty history.
        std::fs::write(History::path(&dir), b"{\"transitions\": [").unwrap();
        assert!(History::load(&dir).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
