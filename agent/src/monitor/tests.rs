//! The loop against a fake Prometheus on a manual clock: slots and missed slots, reloads valid
//! and invalid, detection and judging, failed queries, readiness, restarts. Every series is a
//! function of time, every wait a jump of the clock, so each test runs in milliseconds and
//! always the same way. What the loop exports is asserted through the encoded registry.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use super::*;
use crate::prom::Series;
use crate::wanderer;

/// Unix milliseconds of the first slot of every test: a multiple of every interval used.
const T0: i64 = 1_800_000_000_000;

/// A step of a clock's script, run when the clock reaches its time.
enum Step {
    /// Something the test does at that time (changes a file, asks for a reload, asserts).
    Do(Box<dyn FnOnce()>),
    /// The process is suspended until then (the clock jumps, slots pass).
    SuspendUntil(i64),
    /// The wall clock is set back to then (an NTP step, an operator).
    SetBackTo(i64),
}

/// A clock that jumps to the time the loop sleeps until, running the script's steps on its
/// way, and stops the loop (cancels `stop`) instead of sleeping to `end` or beyond.
struct ScriptClock {
    now: Arc<AtomicI64>,
    script: RefCell<VecDeque<(i64, Step)>>,
    end: i64,
    stop: CancellationToken,
    /// The longest single wait the loop asked for (milliseconds of the monotonic clock).
    longest_wait: std::cell::Cell<i64>,
}

impl ScriptClock {
    fn new(end_s: i64, stop: &CancellationToken) -> ScriptClock {
        ScriptClock {
            now: Arc::new(AtomicI64::new(T0)),
            script: RefCell::default(),
            end: T0 + end_s * 1000,
            stop: stop.clone(),
            longest_wait: std::cell::Cell::new(0),
        }
    }

    /// Adds a step at `at_ms` after the start (steps must be added in time order).
    fn at(self, at_ms: i64, step: Step) -> ScriptClock {
        self.script.borrow_mut().push_back((T0 + at_ms, step));
        self
    }
}

impl Clock for ScriptClock {
    fn now_ms(&self) -> i64 {
        self.now.load(Ordering::SeqCst)
    }

    async fn sleep_until(&self, at_ms: i64) {
        if at_ms >= self.end {
            self.stop.cancel();
            return;
        }
        let before = self.now.fetch_max(at_ms, Ordering::SeqCst);
        let longest = self.longest_wait.get().max(at_ms - before);
        self.longest_wait.replace(longest);
        loop {
            let mut script = self.script.borrow_mut();
            let Some((t, _)) = script.front() else { break };
            if *t > self.now_ms() {
                break;
            }
            let Some((_, step)) = script.pop_front() else {
                break;
            };
            drop(script);
            match step {
                Step::Do(f) => f(),
                Step::SuspendUntil(t) => {
                    self.now.fetch_max(t, Ordering::SeqCst);
                }
                Step::SetBackTo(t) => self.now.store(t, Ordering::SeqCst),
            }
        }
    }
}

/// A Prometheus whose every series is a step function of time (seconds after the start), and
/// that is down (every query fails) in the given spans of the clock's time.
#[derive(Default)]
struct FakePrometheus {
    series: BTreeMap<&'static str, Vec<(i64, f64)>>,
    versions: Vec<(i64, &'static str)>,
    down: Vec<(i64, i64)>,
    now: Arc<AtomicI64>,
}

impl FakePrometheus {
    fn on(clock: &ScriptClock) -> FakePrometheus {
        FakePrometheus {
            now: clock.now.clone(),
            ..FakePrometheus::default()
        }
    }

    /// `expr` takes `value` from `from_s` seconds after the start on.
    fn with(mut self, expr: &'static str, from_s: i64, value: f64) -> FakePrometheus {
        self.series.entry(expr).or_default().push((from_s, value));
        self
    }

    /// The Wanderer moves to `generation` and `version` at `from_s`.
    fn wanderer(self, from_s: i64, generation: u64, version: &'static str) -> FakePrometheus {
        let mut f = self.with(wanderer::GENERATION, from_s, generation as f64);
        f.versions.push((from_s, version));
        f
    }

    /// Every query asked in [from_s, to_s) fails.
    fn down(mut self, from_s: i64, to_s: i64) -> FakePrometheus {
        self.down.push((from_s, to_s));
        self
    }

    fn check_up(&self, expr: &str) -> crate::Result<()> {
        let s = (self.now.load(Ordering::SeqCst) - T0) / 1000;
        match self.down.iter().any(|(a, b)| (*a..*b).contains(&s)) {
            true => Err(crate::Error::Query {
                query: expr.to_owned(),
                source: "connection refused".into(),
            }),
            false => Ok(()),
        }
    }
}

fn value_at<T: Copy>(steps: &[(i64, T)], unix_s: i64) -> Option<T> {
    let s = unix_s - T0 / 1000;
    steps.iter().rev().find(|(from, _)| *from <= s).map(|x| x.1)
}

impl Querier for FakePrometheus {
    async fn range(&self, expr: &str, start: i64, end: i64, step: f64) -> crate::Result<Series> {
        self.check_up(expr)?;
        let Some(steps) = self.series.get(expr) else {
            return Ok(Series::new());
        };
        let n = ((end - start) as f64 / step) as i64 + 1;
        Ok((0..n)
            .map(|i| start + (i as f64 * step) as i64)
            .filter_map(|t| value_at(steps, t).map(|v| (t as f64, v)))
            .collect())
    }

    async fn labels_at(
        &self,
        expr: &str,
        time: i64,
    ) -> crate::Result<Vec<BTreeMap<String, String>>> {
        self.check_up(expr)?;
        Ok(value_at(&self.versions, time)
            .map(|v| {
                BTreeMap::from([
                    ("__name__".to_owned(), wanderer::CONFIG_INFO.to_owned()),
                    ("instance".to_owned(), "sidecar:9464".to_owned()),
                    ("job".to_owned(), "upsoak-chaos".to_owned()),
                    ("version".to_owned(), v.to_owned()),
                ])
            })
            .into_iter()
            .collect())
    }
}

/// A fresh state directory, removed on drop.
struct StateDir(PathBuf);

impl StateDir {
    fn new(tag: &str) -> StateDir {
        let p = std::env::temp_dir().join(format!("upsoak-monitor-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        StateDir(p)
    }
}

impl Drop for StateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn config(specs: &str, dir: &Path) -> MonitorConfig {
    MonitorConfig {
        specs: Specs::parse(specs, "test").unwrap(),
        baseline: None,
        state_dir: dir.to_owned(),
        alertmanager: None,
        judge: JudgeSettings {
            settle: Duration::from_secs(2),
            judge: Duration::from_secs(5),
            step: None,
            alpha: 0.05,
        },
        max_judged: None,
        grafana: None,
        inbox: Inbox::default(),
        reload: None,
        alert_timeouts: crate::http::Timeouts::SINK,
        unhealthy_after: DEFAULT_UNHEALTHY_AFTER,
        steady_every: None,
        auto_baseline: None,
        alert_labels: BTreeMap::new(),
    }
}

/// Runs the loop to its end; returns the history, the encoded metrics and the readiness.
async fn run_to_end(
    cfg: MonitorConfig,
    q: &FakePrometheus,
    clock: &ScriptClock,
) -> (History, String, Health) {
    let metrics = AgentMetrics::default();
    let ready = Health::new();
    let outputs = Outputs {
        metrics: &metrics,
        ready: &ready,
    };
    let h = run(cfg, q, clock, outputs, &clock.stop.clone())
        .await
        .unwrap();
    let shown = crate::events::encoded(|r| metrics.register(r));
    (h, shown, ready)
}

/// The value of the sample `series` (name and labels exactly as encoded), if exported.
fn sample(shown: &str, series: &str) -> Option<f64> {
    shown
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

const TWO_GROUPS: &str = "groups:\n  - { name: fast, interval: 1s, slos: [ { name: a, expr: up_a, objective: \">= 1\", min_samples: 3 } ] }\n  - { name: slow, interval: 5s, slos: [ { name: b, expr: up_b, objective: \">= 1\", min_samples: 3 } ] }\n";

#[tokio::test]
async fn groups_run_on_their_own_slots_and_a_suspension_counts_the_missed_ones() {
    let dir = StateDir::new("slots");
    let stop = CancellationToken::new();
    // Suspended from 10 s to 13.5 s: the fast group's slots at 10 to 13 s pass; one evaluation
    // runs at 13.5 s in their place, three are missed.
    let clock = ScriptClock::new(20, &stop).at(10_000, Step::SuspendUntil(T0 + 13_500));
    let q = FakePrometheus::on(&clock)
        .with("up_a", 0, 1.0)
        .with("up_b", 0, 0.5)
        .wanderer(0, 1, "1.58.0");
    let (h, shown, ready) = run_to_end(config(TWO_GROUPS, &dir.0), &q, &clock).await;
    // fast: 0..=9 s (10), 13.5 s, 14..=19 s (6); slow: 0, 5, 13.5 (late, none missed), 15 s.
    for (series, want) in [
        ("upsoak_agent_evaluations_total{group=\"fast\"}", Some(17.0)),
        ("upsoak_agent_evaluations_total{group=\"slow\"}", Some(4.0)),
        (
            "upsoak_agent_missed_evaluations_total{group=\"fast\"}",
            Some(3.0),
        ),
        (
            "upsoak_agent_missed_evaluations_total{group=\"slow\"}",
            None,
        ),
        (
            "upsoak_agent_slo_current{group=\"fast\",slo=\"a\"}",
            Some(1.0),
        ),
        (
            "upsoak_agent_slo_current{group=\"slow\",slo=\"b\"}",
            Some(0.5),
        ),
        (
            "upsoak_agent_slo_health{group=\"slow\",slo=\"b\"}",
            Some(1.0),
        ),
        ("upsoak_agent_transitions_detected_total", Some(0.0)),
    ] {
        assert_eq!(sample(&shown, series), want, "{series} in:\n{shown}");
    }
    assert!(ready.is_ready());
    assert_eq!(h.last_generation, Some(1));
    assert!(h.transitions.is_empty());
    // The configuration is the Wanderer's labels, not the scrape target's.
    assert_eq!(
        h.last_config,
        BTreeMap::from([("version".to_owned(), "1.58.0".to_owned())])
    );
}

const LATENCY: &str = "groups:\n  - { name: g, interval: 1s, slos: [ { name: latency, expr: lat, objective: \"<= 0.25\", min_samples: 3 } ] }\n";

#[tokio::test]
async fn transitions_are_judged_once_and_a_verdict_is_reported_only_when_it_changes() {
    let dir = StateDir::new("judge");
    let stop = CancellationToken::new();
    let clock = ScriptClock::new(60, &stop);
    // 2: a regression (0.5 > 0.25), judged on [5, 10]; 3 undoes it; 4 changes nothing.
    let q = FakePrometheus::on(&clock)
        .wanderer(0, 1, "1.58.0")
        .wanderer(3, 2, "1.59.0")
        .wanderer(15, 3, "1.60.0")
        .wanderer(27, 4, "1.61.0")
        .with("lat", 0, 0.125)
        .with("lat", 3, 0.5)
        .with("lat", 15, 0.125);
    let mut cfg = config(LATENCY, &dir.0);
    cfg.max_judged = Some(3);
    let (h, shown, _) = run_to_end(cfg, &q, &clock).await;
    let verdicts: Vec<(u64, i64, &str, Verdict)> = h
        .transitions
        .iter()
        .map(|t| {
            let j = t.judged.as_ref().unwrap();
            (t.generation, t.at, t.to["version"].as_str(), j.verdict)
        })
        .collect();
    assert_eq!(
        verdicts,
        vec![
            (2, T0 / 1000 + 3, "1.59.0", Verdict::Fail),
            (3, T0 / 1000 + 15, "1.60.0", Verdict::Pass),
            (4, T0 / 1000 + 27, "1.61.0", Verdict::Pass),
        ]
    );
    assert_eq!(
        h.transitions[0].judged.as_ref().unwrap().judged_at,
        T0 / 1000 + 10
    );
    assert_eq!(h.overall(), Verdict::Fail);
    // Stopped at the third judgement (34 s), long before the clock's end.
    assert!(clock.now_ms() < T0 + 35_000, "{}", clock.now_ms() - T0);
    let g = "group=\"g\",slo=\"latency\"";
    for (series, want) in [
        (
            "upsoak_agent_transitions_detected_total".to_owned(),
            Some(3.0),
        ),
        (
            "upsoak_agent_transitions_judged_total{verdict=\"fail\"}".to_owned(),
            Some(1.0),
        ),
        (
            "upsoak_agent_transitions_judged_total{verdict=\"pass\"}".to_owned(),
            Some(2.0),
        ),
        // fail, then pass: the third (pass again) is no change.
        (
            format!("upsoak_agent_slo_verdict_changes_total{{{g}}}"),
            Some(2.0),
        ),
        (
            format!("upsoak_agent_slo_verdict{{{g},verdict=\"pass\"}}"),
            Some(1.0),
        ),
        (
            format!("upsoak_agent_slo_verdict{{{g},verdict=\"fail\"}}"),
            Some(0.0),
        ),
        (format!("upsoak_agent_slo_value{{{g}}}"), Some(0.125)),
    ] {
        assert_eq!(sample(&shown, &series), want, "{series} in:\n{shown}");
    }
    // The persisted history is the one returned.
    assert_eq!(History::load(&dir.0).unwrap(), h);

    // Restarted on the same state: the verdicts are exported again, and nothing changed.
    let stop = CancellationToken::new();
    let clock = ScriptClock::new(2, &stop);
    let q = FakePrometheus::on(&clock).wanderer(0, 4, "1.61.0");
    let (again, shown, _) = run_to_end(config(LATENCY, &dir.0), &q, &clock).await;
    assert_eq!(again.transitions, h.transitions);
    assert_eq!(
        sample(
            &shown,
            &format!("upsoak_agent_slo_verdict{{{g},verdict=\"pass\"}}")
        ),
        Some(1.0),
        "{shown}"
    );
    assert!(
        !shown.contains("upsoak_agent_slo_verdict_changes_total{"),
        "{shown}"
    );
    assert_eq!(
        sample(&shown, "upsoak_agent_transitions_detected_total"),
        Some(0.0),
        "the generation it had seen is no transition"
    );
}

#[tokio::test]
async fn a_failed_query_is_counted_per_slo_and_readiness_waits_for_the_first_answer() {
    let dir = StateDir::new("down");
    let stop = CancellationToken::new();
    let ready = Health::new();
    let (early, late) = (ready.clone(), ready.clone());
    let clock = ScriptClock::new(60, &stop)
        .at(
            3_500,
            Step::Do(Box::new(move || {
                assert!(!early.is_ready(), "ready while down")
            })),
        )
        .at(
            4_500,
            Step::Do(Box::new(move || {
                assert!(late.is_ready(), "not ready once up")
            })),
        );
    // Down for the slots at 0..=3 s, and again at 12 s, when the window of generation 2
    // ([7, 12]) is judged: inconclusive, never pass.
    let q = FakePrometheus::on(&clock)
        .wanderer(0, 1, "1.58.0")
        .wanderer(5, 2, "1.59.0")
        .with("lat", 0, 0.125)
        .down(0, 4)
        .down(12, 13);
    let mut cfg = config(LATENCY, &dir.0);
    cfg.max_judged = Some(1);
    let metrics = AgentMetrics::default();
    let outputs = Outputs {
        metrics: &metrics,
        ready: &ready,
    };
    let h = run(cfg, &q, &clock, outputs, &stop).await.unwrap();
    let shown = crate::events::encoded(|r| metrics.register(r));
    let e = &h.transitions[0].judged.as_ref().unwrap().slos["g/latency"].evidence;
    assert_eq!(e.verdict, Verdict::Inconclusive);
    assert!(e.reason.starts_with("query failed"), "{}", e.reason);
    assert!(e.reason.contains("connection refused"), "{}", e.reason);
    let g = "group=\"g\",slo=\"latency\"";
    for (series, want) in [
        // Live queries at 0, 1, 2, 3 and 12 s, and the judged window at 12 s.
        (
            "upsoak_agent_rule_evaluation_failures_total{group=\"g\"}".to_owned(),
            Some(6.0),
        ),
        (
            "upsoak_agent_wanderer_read_failures_total".to_owned(),
            Some(5.0),
        ),
        (format!("upsoak_agent_slo_health{{{g}}}"), Some(0.0)),
        (
            format!("upsoak_agent_slo_last_error_timestamp_seconds{{{g}}}"),
            Some((T0 / 1000 + 12) as f64),
        ),
    ] {
        assert_eq!(sample(&shown, &series), want, "{series} in:\n{shown}");
    }
    assert!(
        !shown.contains("group=\"transitions\""),
        "no made-up group: {shown}"
    );
}

#[tokio::test]
async fn a_valid_reload_applies_and_an_invalid_one_keeps_the_old_specs() {
    let dir = StateDir::new("reload");
    let path = dir.0.join("slos.yaml");
    let one = "groups:\n  - { name: g, interval: 1s, slos: [ { name: a, expr: up_a, objective: \">= 1\" } ] }\n";
    std::fs::write(&path, one).unwrap();
    let reload = Reload::new(&path);
    let (bad, good) = (reload.clone(), reload.clone());
    let (bad_path, good_path) = (path.clone(), path.clone());
    let stop = CancellationToken::new();
    let clock = ScriptClock::new(10, &stop)
        .at(
            2_500,
            Step::Do(Box::new(move || {
                std::fs::write(&bad_path, one.replace("expr: up_a", "expr: \"up(\"")).unwrap();
                bad.request();
            })),
        )
        .at(
            5_500,
            Step::Do(Box::new(move || {
                let two = format!(
                    "{one}  - {{ name: extra, interval: 2s, slos: [ {{ name: b, expr: up_b, objective: \">= 1\" }} ] }}\n"
                );
                std::fs::write(&good_path, two).unwrap();
                good.request();
            })),
        );
    let q = FakePrometheus::on(&clock)
        .with("up_a", 0, 1.0)
        .with("up_b", 0, 2.0)
        .wanderer(0, 1, "1.58.0");
    let mut cfg = config(one, &dir.0);
    cfg.reload = Some(reload);
    let (_, shown, _) = run_to_end(cfg, &q, &clock).await;
    for (series, want) in [
        (
            "upsoak_agent_spec_reloads_total{result=\"failure\"}",
            Some(1.0),
        ),
        (
            "upsoak_agent_spec_reloads_total{result=\"success\"}",
            Some(1.0),
        ),
        // The old group ran on through the invalid file: every second of 0..=9 s.
        ("upsoak_agent_evaluations_total{group=\"g\"}", Some(10.0)),
        // The new group from its first slot after the reload at 6 s: 6 and 8 s.
        ("upsoak_agent_evaluations_total{group=\"extra\"}", Some(2.0)),
        (
            "upsoak_agent_slo_current{group=\"extra\",slo=\"b\"}",
            Some(2.0),
        ),
    ] {
        assert_eq!(sample(&shown, series), want, "{series} in:\n{shown}");
    }
}

#[tokio::test]
async fn a_reload_of_an_alias_bomb_is_refused_and_the_old_specs_run_on() {
    let dir = StateDir::new("reload-bomb");
    let path = dir.0.join("slos.yaml");
    let one = "groups:\n  - { name: g, interval: 1s, slos: [ { name: a, expr: up_a, objective: \">= 1\" } ] }\n";
    std::fs::write(&path, one).unwrap();
    let reload = Reload::new(&path);
    let bad = reload.clone();
    let stop = CancellationToken::new();
    // The review's 10 KB bomb (D2): 400 million nodes once its aliases are expanded.
    let list = |item: &str, n: usize| vec![item; n].join(",");
    let bomb = format!(
        "a: &a [{}]\nb: &b [{}]\nc: [{}]\n",
        list("x", 2000),
        list("*a", 2000),
        list("*b", 100)
    );
    let clock = ScriptClock::new(10, &stop).at(
        2_500,
        Step::Do(Box::new(move || {
            std::fs::write(&path, bomb).unwrap();
            bad.request();
        })),
    );
    let q = FakePrometheus::on(&clock).with("up_a", 0, 1.0);
    let mut cfg = config(one, &dir.0);
    cfg.reload = Some(reload);
    let (_, shown, _) = run_to_end(cfg, &q, &clock).await;
    for (series, want) in [
        (
            "upsoak_agent_spec_reloads_total{result=\"failure\"}",
            Some(1.0),
        ),
        ("upsoak_agent_evaluations_total{group=\"g\"}", Some(10.0)),
    ] {
        assert_eq!(sample(&shown, series), want, "{series} in:\n{shown}");
    }
}

const DISRUPTION: &str = "groups:\n  - { name: g, interval: 1s, slos: [ { name: latency, expr: lat, objective: \"<= 0.25\", min_samples: 3 } ] }\n  - { name: d, interval: 1s, slos: [ { name: lost, window: disruption, expr: lost, objective: \"<= 0\" } ] }\n";

#[tokio::test]
async fn the_disruption_window_is_judged_at_the_settle_end_and_annotated_from_the_apply_start() {
    let dir = StateDir::new("disruption");
    let stop = CancellationToken::new();
    let clock = ScriptClock::new(60, &stop);
    let t0 = T0 / 1000;
    // Generation 2's apply starts at 1 s and goes live at 3 s; a canary is lost at 2 s only
    // (the fake's `lost` is the window's one number); generation 3 has no apply phases.
    let q = FakePrometheus::on(&clock)
        .wanderer(0, 1, "1.58.0")
        .wanderer(3, 2, "1.59.0")
        .wanderer(15, 3, "1.60.0")
        .with("max(upsoak_wanderer_apply_generation)", 1, 2.0)
        .with(
            "max(upsoak_wanderer_apply_started_timestamp_seconds)",
            1,
            (t0 + 1) as f64,
        )
        .with(
            "max(upsoak_wanderer_apply_finished_timestamp_seconds)",
            1,
            (t0 + 2) as f64,
        )
        .with("lat", 0, 0.125)
        .with("lost", 0, 1.0)
        .with("lost", 8, 0.0);
    let mut cfg = config(DISRUPTION, &dir.0);
    cfg.max_judged = Some(2);
    let annotations = dir.0.join("annotations.jsonl");
    cfg.grafana = Some(Grafana::recording(&annotations));
    let (h, shown, _) = run_to_end(cfg, &q, &clock).await;
    let d = h.transitions[0].disruption.as_ref().unwrap();
    // Window 1..5 s (settle 2 s), judged at the first slot past the ingest lag (7 s).
    assert_eq!(
        (d.window_start, d.window_end, d.judged_at, d.verdict),
        (t0 + 1, t0 + 5, t0 + 7, Verdict::Fail)
    );
    assert_eq!(d.apply_started, Some((t0 + 1) as f64));
    let d3 = h.transitions[1].disruption.as_ref().unwrap();
    assert_eq!((d3.window_start, d3.verdict), (t0 + 15, Verdict::Pass));
    assert!(d3.phases.contains("for generation 3"), "{}", d3.phases);
    // Both windows are judged; the overall verdict sees the disruption failure.
    assert_eq!(
        h.transitions[0].judged.as_ref().unwrap().verdict,
        Verdict::Pass
    );
    assert_eq!(h.overall(), Verdict::Fail);
    for (series, want) in [
        (
            "upsoak_agent_disruption_windows_judged_total{verdict=\"fail\"}",
            Some(1.0),
        ),
        (
            "upsoak_agent_disruption_windows_judged_total{verdict=\"pass\"}",
            Some(1.0),
        ),
        (
            "upsoak_agent_slo_verdict{group=\"d\",slo=\"lost\",verdict=\"pass\"}",
            Some(1.0),
        ),
    ] {
        assert_eq!(sample(&shown, series), want, "{series} in:\n{shown}");
    }
    // The alert of the failed disruption SLO says which window it failed in.
    let alerts = sinks::current_alerts(&h.transitions, "now", &BTreeMap::new());
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["labels"]["window"], "disruption");
    assert!(alerts[0]["labels"].get("namespace").is_none());
    // The agent's namespace is added to every alert, and never replaces one of its labels.
    let extra = BTreeMap::from([
        ("namespace".to_owned(), "upsoak".to_owned()),
        ("slo".to_owned(), "not-this".to_owned()),
    ]);
    let alerts = sinks::current_alerts(&h.transitions, "now", &extra);
    assert_eq!(alerts[0]["labels"]["namespace"], "upsoak");
    assert_eq!(alerts[0]["labels"]["slo"], "lost");
    // The transition's region opens at the apply's start; the disruption window has its own.
    let posted: Vec<serde_json::Value> = std::fs::read_to_string(&annotations)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let region = |tag: &str| {
        posted
            .iter()
            .find(|a| a["tags"][1] == tag)
            .map(|a| (a["time"].as_i64().unwrap(), a["timeEnd"].as_i64().unwrap()))
    };
    assert_eq!(
        region("transition"),
        Some(((t0 + 1) * 1000, (t0 + 5) * 1000))
    );
    assert_eq!(
        region("disruption"),
        Some(((t0 + 1) * 1000, (t0 + 5) * 1000))
    );
}

#[tokio::test]
async fn the_steady_period_is_judged_in_chunks_until_the_next_transition() {
    let dir = StateDir::new("chunks");
    let stop = CancellationToken::new();
    let clock = ScriptClock::new(130, &stop);
    // 2 goes live at 10 s: first window [12, 17]; chunks of 20 s from 17 s; latency breaks the
    // objective from 60 s to 80 s only (the mean of [77, 97] is back within it); 3 goes live at
    // 100 s and cuts the steady period.
    let q = FakePrometheus::on(&clock)
        .wanderer(0, 1, "1.58.0")
        .wanderer(10, 2, "1.59.0")
        .wanderer(100, 3, "1.60.0")
        .with("lat", 0, 0.125)
        .with("lat", 60, 0.5)
        .with("lat", 80, 0.125);
    let mut cfg = config(LATENCY, &dir.0);
    cfg.steady_every = Some(Duration::from_secs(20));
    let (h, shown, _) = run_to_end(cfg, &q, &clock).await;
    let t = &h.transitions[0];
    let s0 = T0 / 1000;
    let windows: Vec<(i64, i64, Verdict)> = t
        .chunks
        .iter()
        .map(|c| (c.window_start - s0, c.window_end - s0, c.verdict))
        .collect();
    // [97, 100] is shorter than a judge window: left unjudged, and the period is closed.
    assert_eq!(
        windows,
        vec![
            (17, 37, Verdict::Pass),
            (37, 57, Verdict::Pass),
            (57, 77, Verdict::Fail),
            (77, 97, Verdict::Pass),
        ]
    );
    assert!(t.steady_closed);
    assert_eq!(t.judged.as_ref().map(|j| j.verdict), Some(Verdict::Pass));
    assert_eq!(t.steady_verdict(), Some(Verdict::Fail), "the worst chunk");
    assert_eq!(h.overall(), Verdict::Fail);
    // The next transition's chunks start after its own first window.
    assert!(
        h.transitions[1]
            .chunks
            .iter()
            .all(|c| c.window_start >= s0 + 107)
    );
    assert_eq!(
        sample(
            &shown,
            "upsoak_agent_steady_chunks_judged_total{verdict=\"fail\"}"
        ),
        Some(1.0),
        "{shown}"
    );
    // Restarted from its state, the agent judges no chunk twice.
    let saved = History::load(&dir.0).unwrap();
    assert_eq!(saved, h);
}

const AUTO: &str = "groups:\n  - { name: g, interval: 1s, slos: [ { name: lat, expr: lat, baseline: \"<= +20%\", min_samples: 3 }, { name: none, expr: nothing, baseline: \"<= +20%\", min_samples: 3 } ] }\n";

#[tokio::test]
async fn auto_baseline_skips_a_transition_without_steady_time_and_records_before_the_next() {
    let dir = StateDir::new("auto-baseline");
    let stop = CancellationToken::new();
    let clock = ScriptClock::new(60, &stop);
    let t0 = T0 / 1000;
    let (apply_gen, started, finished, live) = (
        "max(upsoak_wanderer_apply_generation)",
        "max(upsoak_wanderer_apply_started_timestamp_seconds)",
        "max(upsoak_wanderer_apply_finished_timestamp_seconds)",
        "max(upsoak_wanderer_last_transition_timestamp_seconds)",
    );
    // The sidecar starts at 0 s; generation 2's apply starts at 1 s (inside the sidecar's
    // settle: no steady time before it), ends at 2 s, goes live at 3 s. Generation 3's apply
    // starts at 20 s: its steady window is 15..20 s (the judge window; the previous
    // transition's end + settle, 5 s, is earlier). `lat` jumps during the apply only.
    let q = FakePrometheus::on(&clock)
        .wanderer(0, 1, "1.58.0")
        .wanderer(3, 2, "1.59.0")
        .wanderer(22, 3, "1.60.0")
        .with(
            "max(process_start_time_seconds and on(job, instance) upsoak_wanderer_generation)",
            0,
            t0 as f64,
        )
        .with(apply_gen, 1, 2.0)
        .with(started, 1, (t0 + 1) as f64)
        .with(finished, 2, (t0 + 2) as f64)
        .with(live, 3, (t0 + 3) as f64)
        .with(apply_gen, 20, 3.0)
        .with(started, 20, (t0 + 20) as f64)
        .with(finished, 21, (t0 + 21) as f64)
        .with(live, 22, (t0 + 22) as f64)
        .with("lat", 0, 0.125)
        .with("lat", 21, 9.0)
        .with("lat", 22, 0.125);
    let mut cfg = config(AUTO, &dir.0);
    cfg.max_judged = Some(2);
    let path = dir.0.join("baseline.json");
    cfg.auto_baseline = Some(AutoBaseline::new(path.clone()));
    let (h, shown, _) = run_to_end(cfg, &q, &clock).await;
    let verdict = |i: usize| {
        let j = h.transitions[i].judged.as_ref().unwrap();
        j.slos["g/lat"].evidence.clone()
    };
    // Generation 2: no baseline yet, so its baseline-only SLO is inconclusive.
    let first = verdict(0);
    assert_eq!(first.verdict, Verdict::Inconclusive, "{first:?}");
    // Generation 3: judged against the baseline recorded before its apply.
    let second = verdict(1);
    assert_eq!(second.verdict, Verdict::Pass, "{second:?}");
    assert_eq!(second.baseline, Some(0.125));
    let b = Baseline::load(&path).unwrap();
    assert_eq!((b.from, b.to), (t0 + 15, t0 + 20));
    assert_eq!(b.slos.keys().collect::<Vec<_>>(), vec!["g/lat"]);
    assert_eq!(b.slos["g/lat"].count, 6);
    assert_eq!(b.configuration["version"], "1.59.0");
    assert_eq!(
        sample(&shown, "upsoak_agent_baseline_slos"),
        Some(1.0),
        "{shown}"
    );
}

mod runtime;
