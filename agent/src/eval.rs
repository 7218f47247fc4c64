//! Judging transitions: the Wanderer's generation changes, the agent waits for the system to
//! settle, then judges each SLO over the judge window against the baseline, and keeps every
//! verdict with its evidence in a history that survives restarts.

use std::collections::BTreeMap;
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
    /// Set once judged.
    #[serde(default)]
    pub judged: Option<Judged>,
}

/// The verdicts of a judged transition.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Judged {
    pub window_start: i64,
    pub window_end: i64,
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
    /// The judged samples, for reports and charts.
    pub samples: Vec<(f64, f64)>,
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
    /// Query resolution.
    pub step: Duration,
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
            h.transitions.push(Transition {
                generation: g,
                at: now,
                from: h.last_config.clone(),
                to: config.clone(),
                judged: None,
            });
            1
        }
        _ => 0,
    };
    h.last_generation = Some(g);
    h.last_config = config;
    Ok(added)
}

/// Judges every pending transition whose window has passed by `now`.
pub async fn judge_due<Q: Querier>(
    q: &Q,
    inbox: &crate::webhook::Inbox,
    specs: &Specs,
    base: Option<&Baseline>,
    w: &Windows,
    h: &mut History,
    now: i64,
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
        let mut slos = BTreeMap::new();
        for s in &specs.slos {
            let v = judge_slo(q, s, base, w, t.at, start, end).await;
            slos.insert(baseline::key(&s.group, &s.spec.name), v);
        }
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
            verdict,
            slos,
        });
        done.push(i);
    }
    done
}

async fn judge_slo<Q: Querier>(
    q: &Q,
    s: &CheckedSlo,
    base: Option<&Baseline>,
    w: &Windows,
    at: i64,
    start: i64,
    end: i64,
) -> SloVerdict {
    let step = w.step.as_secs_f64().max(1.0);
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
                verdict: Verdict::Pass,
                slos: BTreeMap::new(),
            }),
        });
        h.save(&dir).unwrap();
        let again = History::load(&dir).unwrap();
        assert_eq!(again, h);
        assert_eq!(crate::report::text(&again), crate::report::text(&h));
        assert_eq!(again.overall(), Verdict::Pass);
        // A torn file is an error, never an empty history.
        std::fs::write(History::path(&dir), b"{\"transitions\": [").unwrap();
        assert!(History::load(&dir).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
