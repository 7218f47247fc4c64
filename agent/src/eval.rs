//! Judging transitions: the Wanderer's generation changes, the agent waits for the system to
//! settle, then judges each SLO over the judge window against the baseline. The verdicts are
//! kept in the [`History`]; the loop that calls these at each slot is `monitor`'s.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::baseline::{self, Baseline};
use crate::history::{History, Judged, SloVerdict, Transition};
use crate::judge::{self, Evidence, Window};
use crate::prom::Querier;
use crate::spec::{CheckedSlo, Specs, Verdict};
use crate::wanderer;

/// How transitions are judged: the windows' timing and the test's significance level.
#[derive(Clone, Copy, Debug)]
pub struct JudgeSettings {
    /// Wait after a transition before judging starts (the upgrade settles).
    pub settle: Duration,
    /// Length of the judged window.
    pub judge: Duration,
    /// Query resolution of every group; `None`: each group's own interval.
    pub step: Option<Duration>,
    /// Significance level of the Mann–Whitney test.
    pub alpha: f64,
}

/// The worst verdict of a set: fail > warn > inconclusive > pass.
pub fn worst(vs: impl Iterator<Item = Verdict>) -> Verdict {
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
    let gen_now = q.range(wanderer::GENERATION, now - 1, now, 1.0).await?;
    let Some(&(_, g)) = gen_now.last() else {
        return Ok(0);
    };
    let g = g as u64;
    let config = wanderer::configuration(q, now).await?;
    let added = match h.last_generation {
        Some(last) if g > last => {
            // Anchored on when the sidecar says the new configuration went live, not on when
            // this slot noticed it (a scrape and a slot later); `now` when it does not say.
            let floor = h.transitions.last().map_or(i64::MIN, |t| t.at);
            let at = q
                .range(&wanderer::transition_time_query(), now - 1, now, 1.0)
                .await
                .ok()
                .and_then(|s| s.last().map(|(_, v)| *v))
                .filter(|t| t.is_finite())
                .map(|t| t.floor() as i64)
                .filter(|t| *t > floor && *t <= now)
                .unwrap_or(now);
            h.transitions.push(Transition::new(
                g,
                at,
                h.last_config.clone(),
                config.clone(),
            ));
            1
        }
        _ => 0,
    };
    h.last_generation = Some(g);
    h.last_config = config;
    Ok(added)
}

/// Whether a window starting `age_s` seconds after its transition went live judges `s` (its
/// `judged_after`).
pub fn judged_at_age(s: &CheckedSlo, age_s: i64) -> bool {
    s.spec
        .judged_after
        .is_none_or(|d| age_s >= d.as_secs() as i64)
}

/// The names of every group of `specs`, for judging them all at once.
pub fn all_groups(specs: &Specs) -> Vec<String> {
    specs.file.groups.iter().map(|g| g.name.clone()).collect()
}

/// A group's query resolution: the `--step` override, else its own interval.
pub(crate) fn group_step(specs: &Specs, w: &JudgeSettings, group: &str) -> f64 {
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
pub fn too_few_samples(specs: &Specs, w: &JudgeSettings) -> Vec<String> {
    specs
        .slos
        .iter()
        .filter(|s| s.spec.window.is_steady())
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
pub async fn current_values<Q: Querier>(
    q: &Q,
    specs: &Specs,
    group: &str,
    now: i64,
) -> Vec<(String, crate::Result<Option<f64>>)> {
    let mut out = Vec::new();
    // A disruption SLO has a value only over its transition's window, not at every slot.
    for s in specs
        .slos
        .iter()
        .filter(|s| s.group == group && s.spec.window.is_steady())
    {
        let v = q
            .range(&s.spec.expr, now, now, 1.0)
            .await
            .map(|series| series.last().map(|(_, v)| *v));
        out.push((s.spec.name.clone(), v));
    }
    out
}

/// What judging reads besides Prometheus.
#[derive(Clone, Copy)]
pub struct Judging<'a> {
    pub specs: &'a Specs,
    /// Without one, only objectives are judged.
    pub baseline: Option<&'a Baseline>,
    pub settings: &'a JudgeSettings,
    /// The user's alerts from Alertmanager's webhook, folded into verdicts.
    pub inbox: &'a crate::webhook::Inbox,
}

/// What a slot's judging did.
#[derive(Debug, Default)]
pub struct Judgement {
    /// The transitions it completed (indices into the history), in order.
    pub judged: Vec<usize>,
    /// The judged windows that could not be queried (their SLOs are inconclusive, or as
    /// `on_error` says).
    pub failed_queries: Vec<FailedQuery>,
}

/// A judged window whose query failed.
#[derive(Debug)]
pub struct FailedQuery {
    pub group: String,
    pub slo: String,
    pub error: crate::Error,
}

/// At the slot of each group in `groups`: judges that group's SLOs for every pending transition
/// whose window has passed by `now`, at the group's step. A transition is judged (and returned)
/// once every group of the specs has judged it.
pub async fn judge_due<Q: Querier>(
    q: &Q,
    j: &Judging<'_>,
    h: &mut History,
    now: i64,
    groups: &[String],
) -> Judgement {
    let (specs, w) = (j.specs, j.settings);
    let mut out = Judgement::default();
    let spread = earlier_values(h);
    for i in 0..h.transitions.len() {
        let t = &h.transitions[i];
        if t.judged.is_some() {
            continue;
        }
        let start = t.at + w.settle.as_secs() as i64;
        let end = start + w.judge.as_secs() as i64;
        if now < end {
            continue;
        }
        let at = t.at;
        for g in groups {
            if h.transitions[i].groups_done.contains(g) {
                continue;
            }
            let step = group_step(specs, w, g);
            // Disruption SLOs are judged once over their own window (module `disruption`).
            for s in specs
                .slos
                .iter()
                .filter(|s| &s.group == g && s.spec.window.is_steady())
                .filter(|s| judged_at_age(s, start - at))
            {
                let base = crate::baseline_by::choose(s, j.baseline, h, i);
                let (mut v, error) = judge_slo(q, s, j, &base, step, at, start, end).await;
                let earlier = crate::baseline_by::spread(s, h, i, &spread);
                usual_shift(&mut v.evidence, earlier.as_deref());
                if let Some(error) = error {
                    out.failed_queries.push(FailedQuery {
                        group: s.group.clone(),
                        slo: s.spec.name.clone(),
                        error,
                    });
                }
                let t = &mut h.transitions[i];
                t.partial.insert(baseline::key(&s.group, &s.spec.name), v);
            }
            h.transitions[i].groups_done.insert(g.clone());
        }
        let t = &mut h.transitions[i];
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
        slos.extend(crate::webhook::verdicts::inbox_verdicts(
            j.inbox, start, end,
        ));
        let verdict = worst(slos.values().map(|v| v.evidence.verdict));
        t.judged = Some(Judged {
            window_start: start,
            window_end: end,
            judged_at: now,
            verdict,
            slos,
        });
        out.judged.push(i);
    }
    out
}

/// One SLO judged over [start, end] against `base` (`baseline_by::choose`), with the error
/// of its window's query if it failed.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn judge_slo<Q: Querier>(
    q: &Q,
    s: &CheckedSlo,
    j: &Judging<'_>,
    base: &crate::baseline_by::Chosen,
    step: f64,
    at: i64,
    start: i64,
    end: i64,
) -> (SloVerdict, Option<crate::Error>) {
    let w = j.settings;
    let base_samples = base.samples.as_ref();
    let previous = q
        .range(&s.spec.expr, at - w.judge.as_secs() as i64, at, step)
        .await
        .ok()
        .map(|p| crate::stats::mean(&p.iter().map(|(_, v)| *v).collect::<Vec<_>>()))
        .filter(|m| m.is_finite());
    let (evidence, samples, error) = match q.range(&s.spec.expr, start, end, step).await {
        Err(e) => (
            judge::judge(
                s,
                Window::Error(&e.message()),
                base_samples.map(Vec::as_slice),
                w.alpha,
            ),
            Vec::new(),
            Some(e),
        ),
        Ok(series) => {
            let values: Vec<f64> = series.iter().map(|(_, v)| *v).collect();
            let mut ev = match &s.spec.budget {
                Some(b) => {
                    let long = counts(q, b, end, end - start).await;
                    let short = counts(q, b, end, ((end - start) / 4).max(2 * step as i64)).await;
                    judge::judge_budget(
                        s,
                        Window::Samples(&values),
                        long,
                        short,
                        base_samples.map(Vec::as_slice),
                        w.alpha,
                    )
                }
                None => {
                    let mut ev = judge::judge_clean(
                        s,
                        Window::Samples(&values),
                        base_samples.map(Vec::as_slice),
                        judge::Clean(&base.clean),
                        w.alpha,
                    );
                    apply_for(s, &mut ev, &values, step);
                    ev
                }
            };
            if ev.samples == 0 {
                let empty = empty_selectors(q, &s.spec.expr, start, end, step).await;
                if !empty.is_empty() {
                    ev.reason = format!("{}; nothing matched {}", ev.reason, empty.join(", "));
                }
            }
            (ev, series, None)
        }
    };
    let mut evidence = evidence;
    base.explain(&mut evidence);
    let verdict = SloVerdict {
        group: s.group.clone(),
        slo: s.spec.name.clone(),
        severity: s.spec.severity,
        query: s.spec.expr.clone(),
        evidence,
        previous,
        samples,
    };
    (verdict, error)
}

/// Earlier judged transitions a shift must be compared with before [`usual_shift`] speaks.
pub const MIN_SPREAD: usize = 3;

/// Each SLO's judged values in the transitions judged so far, by `group/slo`.
pub(crate) fn earlier_values(h: &History) -> BTreeMap<String, Vec<f64>> {
    let mut out: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for t in &h.transitions {
        for (k, v) in t.judged.iter().flat_map(|j| &j.slos) {
            if let Some(x) = v.evidence.value.filter(|x| x.is_finite()) {
                out.entry(k.clone()).or_default().push(x);
            }
        }
    }
    out
}

/// A significant shift the bad way that stays within the SLO's criteria warns (judge row 8)
/// — unless at least [`MIN_SPREAD`] earlier transitions spread as far: then it is what a
/// transition does to this SLO (a restarted controller's memory and CPU climbing back after
/// its warm-up), not a finding, and it passes with the spread in its reason. A warn that
/// nobody should read teaches people to ignore warns.
pub fn usual_shift(ev: &mut Evidence, earlier: Option<&[f64]>) {
    let (Some(earlier), Some(value)) = (earlier, ev.value) else {
        return;
    };
    if ev.verdict != Verdict::Warn
        || !ev.reason.contains("shifted the bad way")
        || earlier.len() < MIN_SPREAD
    {
        return;
    }
    let lo = earlier.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = earlier.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if (lo..=hi).contains(&value) {
        ev.verdict = Verdict::Pass;
        ev.reason = format!(
            "{}; but within the spread of the {} earlier transitions ({lo:.6} to {hi:.6}), so usual for a transition",
            ev.reason,
            earlier.len()
        );
    }
}

/// The good and total events of `b` over the `secs` before `at`; `None` when the total has no
/// data (a good series with none counts as 0 good events).
async fn counts<Q: Querier>(
    q: &Q,
    b: &crate::spec::Budget,
    at: i64,
    secs: i64,
) -> Option<judge::Counts> {
    let (good, total) = b.increases(&format!("{}s", secs.max(1)));
    let last = |r: crate::Result<crate::prom::Series>| r.ok().and_then(|s| s.last().map(|p| p.1));
    let total = last(q.range(&total, at, at, 1.0).await)?;
    let good = last(q.range(&good, at, at, 1.0).await).unwrap_or(0.0);
    Some(judge::Counts { good, total })
}

/// The selectors of `expr` that matched no series anywhere in [start, end]: what a no-data
/// verdict names, so "Agones is not scraped" reads as such.
async fn empty_selectors<Q: Querier>(
    q: &Q,
    expr: &str,
    start: i64,
    end: i64,
    step: f64,
) -> Vec<String> {
    let mut out = Vec::new();
    for sel in crate::vars::selectors(expr) {
        // A range selector asks for a sample within its range (a job whose scrape stopped
        // still answers a bare selector for the 5-minute lookback).
        let probe = if crate::vars::is_range(&sel) {
            format!("count(last_over_time({sel}))")
        } else {
            format!("count({sel})")
        };
        let found = q
            .range(&probe, start, end, step)
            .await
            .map(|s| s.iter().any(|(_, v)| v.is_finite()));
        if matches!(found, Ok(false)) {
            out.push(format!("`{sel}`"));
        }
    }
    out
}

/// `for` hysteresis: a fail stands only if a breach lasted `for` without a break. A shorter
/// breach seen to start and end inside the window is what `for` forgives (a Prometheus alert
/// with `for` stays pending): pass, with the breach in the reason. A shorter one that touches
/// the window's first or last sample may have lasted longer than the window shows (a window
/// shorter than `for` cannot show more): warn.
fn apply_for(s: &CheckedSlo, ev: &mut Evidence, values: &[f64], step: f64) {
    let Some(for_) = s.spec.for_ else { return };
    if ev.verdict != Verdict::Fail {
        return;
    }
    // The threshold the verdict was decided on (widened to the clean spread, `judge::Clean`).
    let breaches = |v: f64| {
        s.objective.is_some_and(|o| !o.holds(v))
            || s.relative
                .zip(ev.threshold)
                .is_some_and(|(r, t)| !r.cmp.holds(v, t))
    };
    let mut run = 0usize;
    let mut longest = 0usize;
    let mut at_edge = false;
    for (i, v) in values.iter().enumerate() {
        if breaches(*v) {
            run += 1;
            longest = longest.max(run);
            at_edge |= run == i + 1 || i + 1 == values.len();
        } else {
            run = 0;
        }
    }
    let lasted = longest.saturating_sub(1) as f64 * step;
    if lasted >= for_.as_secs_f64() {
        return;
    }
    let for_s = for_.as_secs();
    (ev.verdict, ev.reason) = if at_edge {
        (
            Verdict::Warn,
            format!(
                "{}; but the breach lasted {lasted:.0}s in the window, less than `for: {for_s}s`, and reaches its edge (it may have lasted longer)",
                ev.reason
            ),
        )
    } else {
        (
            Verdict::Pass,
            format!(
                "{}; but every breach started and ended inside the window, the longest {lasted:.0}s, less than `for: {for_s}s`",
                ev.reason
            ),
        )
    };
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let w = JudgeSettings {
            settle: Duration::from_secs(10),
            judge: Duration::from_secs(60),
            step: None,
            alpha: 0.05,
        };
        assert!(too_few_samples(&specs, &w).is_empty());
        let short = JudgeSettings {
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
        h.transitions
            .push(Transition::new(2, 1000, BTreeMap::new(), BTreeMap::new()));
        let inbox = crate::webhook::Inbox::default();
        let j = Judging {
            specs: &specs,
            baseline: None,
            settings: &w,
            inbox: &inbox,
        };
        let fast = vec!["fast".to_owned()];
        let slow = vec!["slow".to_owned()];
        // Before the window has passed, no group judges.
        assert!(
            judge_due(&q, &j, &mut h, 1069, &fast)
                .await
                .judged
                .is_empty()
        );
        assert!(h.transitions[0].partial.is_empty());
        // The fast group's slot: its SLO is judged at a 2 s step; the transition still waits.
        assert!(
            judge_due(&q, &j, &mut h, 1070, &fast)
                .await
                .judged
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
        assert_eq!(judge_due(&q, &j, &mut h, 1080, &slow).await.judged, vec![0]);
        assert_eq!(
            h.progress(),
            (None, 1, 1, 0),
            "completing it is progress too, though the group marks are cleared"
        );
        let done = h.transitions[0].judged.as_ref().unwrap();
        assert_eq!(done.verdict, Verdict::Pass);
        assert_eq!(done.slos["fast/a"].samples.len(), 31);
        assert_eq!(done.slos["slow/b"].samples.len(), 7);
        assert!(h.transitions[0].partial.is_empty() && h.transitions[0].groups_done.is_empty());
        let steps = q.0.lock().unwrap().clone();
        assert!(
            steps.iter().all(
                |(e, st)| (e == "vector(1)" && *st == 2.0) || (e == "vector(2)" && *st == 10.0)
            ),
            "{steps:?}"
        );
        // A `--step` override applies to every group.
        let fixed = JudgeSettings {
            step: Some(Duration::from_secs(5)),
            ..w
        };
        assert_eq!(group_step(&specs, &fixed, "slow"), 5.0);
    }

    /// One value per expression, for the bookkeeping of `detect`.
    struct Values(BTreeMap<String, f64>);

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
            let mut m = BTreeMap::from([(wanderer::GENERATION.to_owned(), g)]);
            if let Some(t) = live {
                m.insert(wanderer::transition_time_query(), t);
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

    #[test]
    fn a_shift_within_the_spread_of_earlier_transitions_passes() {
        let warn = |value: f64| Evidence {
            verdict: Verdict::Warn,
            value: Some(value),
            baseline: Some(1.0),
            threshold: Some(2.0),
            p_value: Some(1e-6),
            samples: 20,
            baseline_samples: 20,
            reason: "within the threshold, but shifted the bad way: …".into(),
            spread: None,
        };
        let earlier = [1.2, 1.5, 1.3];
        let mut e = warn(1.4);
        usual_shift(&mut e, Some(&earlier));
        assert_eq!(e.verdict, Verdict::Pass, "{}", e.reason);
        assert!(
            e.reason.contains("within the spread of the 3 earlier"),
            "{}",
            e.reason
        );
        // Beyond the spread, or with too few transitions to know it, the warn stands.
        for (v, earlier) in [(1.6, &earlier[..]), (1.4, &earlier[..2])] {
            let mut e = warn(v);
            usual_shift(&mut e, Some(earlier));
            assert_eq!(e.verdict, Verdict::Warn, "{v}: {}", e.reason);
        }
        // A breach is never softened.
        let mut e = warn(1.4);
        e.reason = "breaks, but the shift is not significant".into();
        usual_shift(&mut e, Some(&earlier));
        assert_eq!(e.verdict, Verdict::Warn);
    }

    /// `for` forgives a breach shorter than itself that started and ended inside the window;
    /// one that reaches the window's edge (maybe longer than the window shows) warns, one that
    /// lasted `for` fails.
    #[test]
    fn for_forgives_short_breaches_inside_the_window_only() {
        let text = "groups: [ { name: g, interval: 2s, slos: [ { name: s, expr: up, objective: \">= 1\", for: 10s } ] } ]";
        let slo = Specs::parse(text, "t").unwrap().slos.remove(0);
        let judged = |values: &[f64]| {
            let mut ev = judge::judge(&slo, Window::Samples(values), None, judge::DEFAULT_ALPHA);
            apply_for(&slo, &mut ev, values, 2.0);
            ev
        };
        let cases: [(&[f64], Verdict); 4] = [
            (&[1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0], Verdict::Pass),
            (&[0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0], Verdict::Warn),
            (&[1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0], Verdict::Warn),
            (&[1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0], Verdict::Fail),
        ];
        for (values, want) in cases {
            let e = judged(values);
            assert_eq!(e.verdict, want, "{values:?}: {}", e.reason);
        }
    }
}
