//! Judging transitions: the Wanderer's generation changes, the agent waits for the system to
//! settle, then judges each SLO over the judge window against the baseline, and keeps every
//! verdict with its evidence in a history that survives restarts.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::baseline::{self, Baseline, GENERATION_METRIC};
use crate::judge::{self, Evidence, Window};
use crate::prom::Querier;
use crate::spec::{CheckedSlo, Specs, Verdict};

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

/// The agent's state: every transition seen, judged or pending.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct History {
    pub last_generation: Option<u64>,
    pub last_config: BTreeMap<String, String>,
    pub transitions: Vec<Transition>,
}

/// Why the history could not be read or written.
impl History {
    pub fn path(dir: &Path) -> PathBuf {
        dir.join("history.json")
    }

    /// Loads the history from `dir`; an absent file is an empty history.
    pub fn load(dir: &Path) -> crate::Result<History> {
        let p = History::path(dir);
        match std::fs::read_to_string(&p) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(History::default()),
            Err(e) => Err(crate::Error::Read(p.display().to_string(), e.to_string())),
            Ok(t) => serde_json::from_str(&t)
                .map_err(|e| crate::Error::Read(p.display().to_string(), e.to_string())),
        }
    }

    /// Writes atomically: temporary file, synced, renamed.
    pub fn save(&self, dir: &Path) -> crate::Result<()> {
        let p = History::path(dir);
        let tmp = p.with_extension("tmp");
        let w = |e| crate::Error::Write(p.display().to_string(), e);
        let text = serde_json::to_vec_pretty(self).map_err(|e| w(std::io::Error::other(e)))?;
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp).map_err(w)?;
            f.write_all(&text).map_err(w)?;
            f.sync_all().map_err(w)?;
        }
        std::fs::rename(&tmp, &p).map_err(w)
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
        let groups = self.transitions.iter().map(|t| t.groups_done.len()).sum();
        (self.last_generation, self.transitions.len(), judged, groups)
    }

    /// The overall verdict: fail if any transition failed, else inconclusive if any could not
    /// be judged (or none was), else pass (warnings included).
    pub fn overall(&self) -> Verdict {
        let judged: Vec<Verdict> = self
            .transitions
            .iter()
            .filter_map(|t| t.judged.as_ref().map(|j| j.verdict))
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

/// Timing of a judgement.
#[derive(Clone, Copy, Debug)]
pub struct Windows {
    /// Wait after a transition before judging starts (the upgrade settles).
    pub settle: Duration,
    /// Length of the judged window.
    pub judge: Duration,
    /// Query resolution of every group; `None`: each group's own interval.
    pub step: Option<Duration>,
    pub alpha: f64,
}

/// The worst verdict of a set: fail > warn > inconclusive > pass.
fn worst(vs: impl Iterator<Item = Verdict>) -> Verdict {
    let mut out = Verdict::Pass;
    for v in vs {
        out = match (out, v) {
            (Verdict::Fail, _) | (_, Verdict::Fail) => Verdict::Fail,
            (Verdict::Warn, _) | (_, Verdict::Warn) => Verdict::Warn,
            (Verdict::Inconclusive, _) | (_, Verdict::Inconclusive) => Verdict::Inconclusive,
            _ => Verdict::Pass,
        };
    }
    out
}

/// When the Wanderer's last transition went live (unix seconds), as the sidecar exports it.
pub const TRANSITION_TIME_METRIC: &str = "max(upsoak_wanderer_last_transition_timestamp_seconds)";

/// Looks for a new generation at `now`; records it as a pending transition. Returns the
/// transitions added (an error when Prometheus cannot be read: nothing is assumed).
pub async fn detect<Q: Querier>(q: &Q, h: &mut History, now: i64) -> crate::Result<usize> {
    let gen_now = q.range(GENERATION_METRIC, now - 1, now, 1.0).await?;
    let Some(&(_, g)) = gen_now.last() else {
        return Ok(0);
    };
    let g = g as u64;
    let config = q
        .labels_at("upsoak_wanderer_config_info", now)
        .await?
        .into_iter()
        .next()
        .map(|mut l| {
            l.remove("__name__");
            l.remove("instance");
            l.remove("job");
            l
        })
        .unwrap_or_default();
    let added = match h.last_generation {
        Some(last) if g > last => {
            // Anchored on when the sidecar says the new configuration went live, not on when
            // this slot noticed it (a scrape and a slot later); `now` when it does not say.
            let floor = h.transitions.last().map_or(i64::MIN, |t| t.at);
            let at = q
                .range(TRANSITION_TIME_METRIC, now - 1, now, 1.0)
                .await
                .ok()
                .and_then(|s| s.last().map(|(_, v)| *v))
                .filter(|t| t.is_finite())
                .map(|t| t.floor() as i64)
                .filter(|t| *t > floor && *t <= now)
                .unwrap_or(now);
            h.transitions.push(Transition {
                generation: g,
                at,
                from: h.last_config.clone(),
                to: config.clone(),
                judged: None,
                partial: BTreeMap::new(),
                groups_done: BTreeSet::new(),
            });
            1
        }
        _ => 0,
    };
    h.last_generation = Some(g);
    h.last_config = config;
    Ok(added)
}

/// The names of every group of `specs`, for judging them all at once.
pub fn all_groups(specs: &Specs) -> Vec<String> {
    specs.file.groups.iter().map(|g| g.name.clone()).collect()
}

/// A group's query resolution: the `--step` override, else its own interval.
fn group_step(specs: &Specs, w: &Windows, group: &str) -> f64 {
    w.step
        .or_else(|| {
            specs
                .file
                .groups
                .iter()
                .find(|g| g.name == group)
                .map(|g| g.interval)
        })
        .map(|d| d.as_secs_f64())
        .unwrap_or(15.0)
        .max(1.0)
}

/// The SLOs whose judged window cannot hold `min_samples` at their group's step: such a
/// configuration could only ever be inconclusive, so `run` refuses it up front.
pub fn too_few_samples(specs: &Specs, w: &Windows) -> Vec<String> {
    specs
        .slos
        .iter()
        .filter_map(|s| {
            let step = group_step(specs, w, &s.group);
            let fits = (w.judge.as_secs_f64() / step).floor() as usize + 1;
            (fits < s.spec.min_samples).then(|| {
                format!(
                    "{}: a {}s judge window at a {step}s step holds {fits} samples, fewer than min_samples {}",
                    baseline::key(&s.group, &s.spec.name),
                    w.judge.as_secs(),
                    s.spec.min_samples
                )
            })
        })
        .collect()
}

/// The current value of each SLO of `group` (instant queries at `now`); a failed query is
/// `Err` and never stops the others.
pub async fn current<Q: Querier>(
    q: &Q,
    specs: &Specs,
    group: &str,
    now: i64,
) -> Vec<(String, crate::Result<Option<f64>>)> {
    let mut out = Vec::new();
    for s in specs.slos.iter().filter(|s| s.group == group) {
        let v = q
            .range(&s.spec.expr, now, now, 1.0)
            .await
            .map(|series| series.last().map(|(_, v)| *v));
        out.push((s.spec.name.clone(), v));
    }
    out
}

/// At the slot of each group in `groups`: judges that group's SLOs for every pending transition
/// whose window has passed by `now`, at the group's step. A transition is judged (and returned)
/// once every group of the specs has judged it.
#[allow(clippy::too_many_arguments)]
pub async fn judge_due<Q: Querier>(
    q: &Q,
    inbox: &crate::webhook::Inbox,
    specs: &Specs,
    base: Option<&Baseline>,
    w: &Windows,
    h: &mut History,
    now: i64,
    groups: &[String],
) -> Vec<usize> {
    let mut done = Vec::new();
    for (i, t) in h.transitions.iter_mut().enumerate() {
        if t.judged.is_some() {
            continue;
        }
        let start = t.at + w.settle.as_secs() as i64;
        let end = start + w.judge.as_secs() as i64;
        if now < end {
            continue;
        }
        for g in groups {
            if t.groups_done.contains(g) {
                continue;
            }
            let step = group_step(specs, w, g);
            for s in specs.slos.iter().filter(|s| &s.group == g) {
                let v = judge_slo(q, s, base, w, step, t.at, start, end).await;
                t.partial.insert(baseline::key(&s.group, &s.spec.name), v);
            }
            t.groups_done.insert(g.clone());
        }
        if !specs
            .file
            .groups
            .iter()
            .all(|g| t.groups_done.contains(&g.name))
        {
            continue;
        }
        let mut slos = std::mem::take(&mut t.partial);
        t.groups_done.clear();
        // The user's own alerts that fired in the window fail the transition on their name.
        for a in inbox.firing_between(start, end) {
            let name = a
                .labels
                .get("alertname")
                .cloned()
                .unwrap_or_else(|| "unnamed".into());
            let severity = match a.labels.get("severity").map(String::as_str) {
                Some("critical") => crate::spec::Severity::Critical,
                Some("info") => crate::spec::Severity::Info,
                _ => crate::spec::Severity::Warning,
            };
            slos.insert(
                baseline::key("alertmanager", &name),
                SloVerdict {
                    group: "alertmanager".into(),
                    slo: name.clone(),
                    severity,
                    query: format!("alert {name} (Alertmanager webhook)"),
                    evidence: Evidence {
                        verdict: Verdict::Fail,
                        value: None,
                        baseline: None,
                        threshold: None,
                        p_value: None,
                        samples: 0,
                        baseline_samples: 0,
                        reason: format!(
                            "alert {name} fired during the window (since {}): {}",
                            a.starts_at,
                            a.annotations.get("summary").cloned().unwrap_or_default()
                        ),
                    },
                    previous: None,
                    samples: Vec::new(),
                },
            );
        }
        let verdict = worst(slos.values().map(|v| v.evidence.verdict));
        t.judged = Some(Judged {
            window_start: start,
            window_end: end,
            judged_at: now,
            verdict,
            slos,
        });
        done.push(i);
    }
    done
}

#[allow(clippy::too_many_arguments)]
async fn judge_slo<Q: Querier>(
    q: &Q,
    s: &CheckedSlo,
    base: Option<&Baseline>,
    w: &Windows,
    step: f64,
    at: i64,
    start: i64,
    end: i64,
) -> SloVerdict {
    let key = baseline::key(&s.group, &s.spec.name);
    let base_samples = base
        .and_then(|b| b.slos.get(&key))
        .map(|b| b.samples.clone());
    let previous = q
        .range(&s.spec.expr, at - w.judge.as_secs() as i64, at, step)
        .await
        .ok()
        .map(|p| crate::stats::mean(&p.iter().map(|(_, v)| *v).collect::<Vec<_>>()))
        .filter(|m| m.is_finite());
    let (evidence, samples) = match q.range(&s.spec.expr, start, end, step).await {
        Err(e) => (
            judge::judge(
                s,
                Window::Error(&e.message()),
                base_samples.as_deref(),
                w.alpha,
            ),
            Vec::new(),
        ),
        Ok(series) => {
            let values: Vec<f64> = series.iter().map(|(_, v)| *v).collect();
            let mut ev = judge::judge(
                s,
                Window::Samples(&values),
                base_samples.as_deref(),
                w.alpha,
            );
            apply_for(s, &mut ev, &values, step);
            (ev, series)
        }
    };
    SloVerdict {
        group: s.group.clone(),
        slo: s.spec.name.clone(),
        severity: s.spec.severity,
        query: s.spec.expr.clone(),
        evidence,
        previous,
        samples,
    }
}

/// `for` hysteresis: a fail stands only if the breach lasted `for` without a break; a shorter
/// one is a warning.
fn apply_for(s: &CheckedSlo, ev: &mut Evidence, values: &[f64], step: f64) {
    let Some(for_) = s.spec.for_ else { return };
    if ev.verdict != Verdict::Fail {
        return;
    }
    let breaches = |v: f64| {
        s.objective.is_some_and(|o| !o.holds(v))
            || s.relative
                .zip(ev.baseline)
                .is_some_and(|(r, b)| !r.holds(v, b))
    };
    let mut run = 0usize;
    let mut longest = 0usize;
    for v in values {
        if breaches(*v) {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    let lasted = longest.saturating_sub(1) as f64 * step;
    if lasted < for_.as_secs_f64() {
        ev.verdict = Verdict::Warn;
        ev.reason = format!(
            "{}; but the breach lasted {lasted:.0}s, less than `for: {}s`",
            ev.reason,
            for_.as_secs()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        h.transitions.push(Transition {
            generation: 2,
            at: 100,
            from: BTreeMap::from([("version".into(), "1.58.0".into())]),
            to: BTreeMap::from([("version".into(), "1.59.0".into())]),
            judged: Some(Judged {
                window_start: 130,
                window_end: 430,
                judged_at: 431,
                verdict: Verdict::Pass,
                slos: BTreeMap::new(),
            }),
            partial: BTreeMap::new(),
            groups_done: BTreeSet::new(),
        });
        h.save(&dir).unwrap();
        let again = History::load(&dir).unwrap();
        assert_eq!(again, h);
        assert_eq!(crate::report::text(&again), crate::report::text(&h));
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
                    verdict: Verdict::Pass,
                    value: Some(1.0),
                    baseline: None,
                    threshold: None,
                    p_value: None,
                    samples: 2,
                    baseline_samples: 0,
                    reason: String::new(),
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
        // A torn file is an error, never an empty history.
        std::fs::write(History::path(&dir), b"{\"transitions\": [").unwrap();
        assert!(History::load(&dir).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Series from memory (a constant value per expression), recording the steps asked for:
    /// the unit under test is the group bookkeeping, not the Prometheus client.
    struct Constant(std::sync::Mutex<Vec<(String, f64)>>);

    impl Querier for Constant {
        async fn range(
            &self,
            expr: &str,
            start: i64,
            end: i64,
            step: f64,
        ) -> crate::Result<crate::prom::Series> {
            self.0.lock().unwrap().push((expr.to_owned(), step));
            let n = ((end - start) as f64 / step) as usize + 1;
            Ok((0..n)
                .map(|i| (start as f64 + i as f64 * step, 1.0))
                .collect())
        }
        async fn labels_at(&self, _: &str, _: i64) -> crate::Result<Vec<BTreeMap<String, String>>> {
            Ok(Vec::new())
        }
    }

    #[tokio::test]
    async fn each_group_judges_at_its_own_slot_and_step_and_the_transition_waits_for_all() {
        let specs = Specs::parse(
            "groups:\n  - { name: fast, interval: 2s, slos: [ { name: a, expr: vector(1), objective: \">= 1\" } ] }\n  - { name: slow, interval: 10s, slos: [ { name: b, expr: vector(2), objective: \">= 1\" } ] }\n",
            "test",
        )
        .unwrap();
        let w = Windows {
            settle: Duration::from_secs(10),
            judge: Duration::from_secs(60),
            step: None,
            alpha: 0.05,
        };
        assert!(too_few_samples(&specs, &w).is_empty());
        let short = Windows {
            judge: Duration::from_secs(30),
            ..w
        };
        assert_eq!(
            too_few_samples(&specs, &short),
            vec![
                "slow/b: a 30s judge window at a 10s step holds 4 samples, fewer than min_samples 5"
            ]
        );
        let q = Constant(Default::default());
        let mut h = History::default();
        h.transitions.push(Transition {
            generation: 2,
            at: 1000,
            from: BTreeMap::new(),
            to: BTreeMap::new(),
            judged: None,
            partial: BTreeMap::new(),
            groups_done: BTreeSet::new(),
        });
        let inbox = crate::webhook::Inbox::default();
        let fast = vec!["fast".to_owned()];
        let slow = vec!["slow".to_owned()];
        // Before the window has passed, no group judges.
        assert!(
            judge_due(&q, &inbox, &specs, None, &w, &mut h, 1069, &fast)
                .await
                .is_empty()
        );
        assert!(h.transitions[0].partial.is_empty());
        // The fast group's slot: its SLO is judged at a 2 s step; the transition still waits.
        assert!(
            judge_due(&q, &inbox, &specs, None, &w, &mut h, 1070, &fast)
                .await
                .is_empty()
        );
        assert_eq!(
            h.transitions[0].partial.keys().collect::<Vec<_>>(),
            vec!["fast/a"]
        );
        assert_eq!(
            h.progress(),
            (None, 1, 0, 1),
            "a group's judging is progress to save"
        );
        // Saved and loaded between slots (a restart), the partial judgement is kept.
        let again: History = serde_json::from_str(&serde_json::to_string(&h).unwrap()).unwrap();
        assert_eq!(again, h);
        // The slow group's slot completes it, at a 10 s step.
        assert_eq!(
            judge_due(&q, &inbox, &specs, None, &w, &mut h, 1080, &slow).await,
            vec![0]
        );
        assert_eq!(
            h.progress(),
            (None, 1, 1, 0),
            "completing it is progress too, though the group marks are cleared"
        );
        let j = h.transitions[0].judged.as_ref().unwrap();
        assert_eq!(j.verdict, Verdict::Pass);
        assert_eq!(j.slos["fast/a"].samples.len(), 31);
        assert_eq!(j.slos["slow/b"].samples.len(), 7);
        assert!(h.transitions[0].partial.is_empty() && h.transitions[0].groups_done.is_empty());
        let steps = q.0.lock().unwrap().clone();
        assert!(
            steps.iter().all(
                |(e, st)| (e == "vector(1)" && *st == 2.0) || (e == "vector(2)" && *st == 10.0)
            ),
            "{steps:?}"
        );
        // A `--step` override applies to every group.
        let fixed = Windows {
            step: Some(Duration::from_secs(5)),
            ..w
        };
        assert_eq!(group_step(&specs, &fixed, "slow"), 5.0);
    }

    /// One value per expression, for the bookkeeping of `detect`.
    struct Values(BTreeMap<&'static str, f64>);

    impl Querier for Values {
        async fn range(
            &self,
            expr: &str,
            _: i64,
            end: i64,
            _: f64,
        ) -> crate::Result<crate::prom::Series> {
            Ok(self
                .0
                .get(expr)
                .map(|v| vec![(end as f64, *v)])
                .unwrap_or_default())
        }
        async fn labels_at(&self, _: &str, _: i64) -> crate::Result<Vec<BTreeMap<String, String>>> {
            Ok(vec![BTreeMap::from([(
                "version".to_owned(),
                "1.59.0".to_owned(),
            )])])
        }
    }

    #[tokio::test]
    async fn a_transition_is_anchored_on_when_the_sidecar_says_it_went_live() {
        let mut h = History::default();
        let q = |g: f64, live: Option<f64>| {
            let mut m = BTreeMap::from([(GENERATION_METRIC, g)]);
            if let Some(t) = live {
                m.insert(TRANSITION_TIME_METRIC, t);
            }
            Values(m)
        };
        assert_eq!(detect(&q(1.0, Some(900.5)), &mut h, 1000).await.unwrap(), 0);
        // Seen at 1010, live since 1003.7: the windows count from 1003.
        assert_eq!(
            detect(&q(2.0, Some(1003.7)), &mut h, 1010).await.unwrap(),
            1
        );
        assert_eq!(h.transitions[0].at, 1003);
        assert_eq!(h.transitions[0].to["version"], "1.59.0");
        // A timestamp from the future, or not after the previous transition, is not believed.
        assert_eq!(
            detect(&q(3.0, Some(5000.0)), &mut h, 1030).await.unwrap(),
            1
        );
        assert_eq!(h.transitions[1].at, 1030);
        assert_eq!(
            detect(&q(4.0, Some(1020.0)), &mut h, 1040).await.unwrap(),
            1
        );
        assert_eq!(h.transitions[2].at, 1040);
        // Without the metric (an older sidecar), when it was seen.
        assert_eq!(detect(&q(5.0, None), &mut h, 1050).await.unwrap(), 1);
        assert_eq!(h.transitions[3].at, 1050);
    }
}
