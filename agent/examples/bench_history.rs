//! The history over a synthetic week, for BENCHMARKS.md (issue 16, "bounded for weeks"): every
//! steady SLO of a spec file (default `rules/slos.yaml`) judged at its group's interval, window
//! after window, as the agent's loop records them, with the history bounded
//! ([`History::drop_old_samples`]) and saved after each slot as the loop does. Two schedules:
//! `fast`: 336 transitions 30 min apart, each a 5 min first window and a chunk cut at the next
//! apply (23 min); `daily`: 7 transitions a day apart, each a first window and hourly chunks.
//! Prints the file size, the time per save (one per slot that judged a window) and the peak RSS.
//! No Prometheus: the values are synthetic; what is measured is the history's size and cost.
//! `cargo run --release -p upsoak-agent --example bench_history -- fast|daily [SPECS]`

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Instant;

use upsoak_agent::baseline;
use upsoak_agent::eval::worst;
use upsoak_agent::history::{History, Judged, SAMPLE_WINDOWS, SloVerdict, Transition};
use upsoak_agent::judge::Evidence;
use upsoak_agent::spec::{Specs, Verdict};
use upsoak_common::process::ProcessStats;

/// A window of every steady SLO of `specs` over [start, end] at its group's interval.
fn window(specs: &Specs, start: i64, end: i64, seed: u64) -> Judged {
    let mut slos = BTreeMap::new();
    for s in specs.slos.iter().filter(|s| s.spec.window.is_steady()) {
        let step = specs
            .file
            .groups
            .iter()
            .find(|g| g.name == s.group)
            .map_or(15, |g| g.interval.as_secs().max(1)) as i64;
        let samples: Vec<(f64, f64)> = (0..=(end - start) / step)
            .map(|i| {
                let t = start + i * step;
                // A deterministic wiggle: the values' digits cost what real ones do.
                let x = ((t as u64 ^ seed).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11) as f64
                    / (1u64 << 53) as f64;
                (t as f64, 0.9 + x / 10.0)
            })
            .collect();
        let value = samples.iter().map(|p| p.1).sum::<f64>() / samples.len() as f64;
        slos.insert(
            baseline::key(&s.group, &s.spec.name),
            SloVerdict {
                group: s.group.clone(),
                slo: s.spec.name.clone(),
                severity: s.spec.severity,
                query: s.spec.expr.clone(),
                evidence: Evidence {
                    verdict: Verdict::Pass,
                    value: Some(value),
                    baseline: Some(0.95),
                    threshold: Some(1.1),
                    p_value: Some(0.31),
                    samples: samples.len(),
                    baseline_samples: 41,
                    reason: format!(
                        "within: {value:.6} against the baseline 0.950000 (`<= +20%`, threshold 1.100000, p = 3.100e-1)"
                    ),
                    spread: None,
                },
                previous: Some(0.95),
                samples,
            },
        );
    }
    Judged {
        window_start: start,
        window_end: end,
        judged_at: end + 2,
        verdict: worst(slos.values().map(|v| v.evidence.verdict)),
        slos,
    }
}

fn config(version: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("version".to_owned(), version.to_owned()),
        (
            "feature_gates".to_owned(),
            "AutopilotPassthroughPort=true&CountsAndLists=true&GKEAutopilotExtendedDurationPods=false&PlayerAllocationFilter=false&PlayerTracking=false&PortPolicyNone=true&PortRanges=true&RollingUpdateFix=true&ScheduledAutoscaler=true&SidecarContainers=false".to_owned(),
        ),
        (
            "tunables".to_owned(),
            "allocationBatchWaitTime=500ms&controller.replicas=1".to_owned(),
        ),
    ])
}

#[tokio::main]
async fn main() -> ExitCode {
    let a: Vec<String> = std::env::args().collect();
    let (transitions, period, every) = match a.get(1).map(String::as_str) {
        Some("fast") => (336, 1800, 3600),
        Some("daily") => (7, 86_400, 3600),
        _ => {
            eprintln!("usage: bench_history fast|daily [SPECS]");
            return ExitCode::from(2);
        }
    };
    let path = a.get(2).map_or("rules/slos.yaml", String::as_str);
    let specs = match Specs::load(std::path::Path::new(path)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let dir = std::env::temp_dir().join(format!("upsoak-bench-history-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("cannot create {}: {e}", dir.display());
        return ExitCode::from(4);
    }
    let (settle, judge) = (120, 300);
    let t0: i64 = 1_800_000_000;
    let mut h = History::default();
    let mut saves = Vec::new();
    let mut windows = 0usize;
    let mut peak_rss = 0.0f64;
    for n in 0..transitions {
        let at = t0 + n * period;
        let next_apply = at + period - 60;
        let mut t = Transition::new(
            n as u64 + 2,
            at,
            config(if n % 2 == 0 { "1.58.0" } else { "1.59.0" }),
            config(if n % 2 == 0 { "1.59.0" } else { "1.58.0" }),
        );
        let first_end = at + settle + judge;
        t.judged = Some(window(&specs, at + settle, first_end, n as u64));
        h.transitions.push(t);
        let mut slot = |h: &mut History| -> Result<(), String> {
            let start = Instant::now();
            h.drop_old_samples(SAMPLE_WINDOWS);
            h.save(&dir).map_err(|e| e.to_string())?;
            saves.push(start.elapsed().as_secs_f64());
            windows += 1;
            peak_rss = peak_rss.max(ProcessStats::read().map_or(0.0, |s| s.resident_bytes));
            Ok(())
        };
        if let Err(e) = slot(&mut h) {
            eprintln!("{e}");
            return ExitCode::from(4);
        }
        let mut start = first_end;
        while start + judge <= next_apply {
            let end = (start + every).min(next_apply);
            let chunk = window(&specs, start, end, (n as u64) << 16 | start as u64);
            if let Some(t) = h.transitions.last_mut() {
                t.chunks.push(chunk);
                t.steady_closed = end == next_apply;
            }
            if let Err(e) = slot(&mut h) {
                eprintln!("{e}");
                return ExitCode::from(4);
            }
            start = end;
        }
    }
    let size = std::fs::metadata(History::path(&dir)).map_or(0, |m| m.len());
    let load = Instant::now();
    let loaded = History::load(&dir)
        .map(|l| l.transitions.len())
        .unwrap_or(0);
    let load_s = load.elapsed().as_secs_f64();
    saves.sort_by(f64::total_cmp);
    let mean = saves.iter().sum::<f64>() / saves.len().max(1) as f64;
    println!(
        "{} transitions, {windows} steady windows of {} SLOs: history.json {:.2} MB; save per slot mean {:.1} ms, p99 {:.1} ms, max {:.1} ms; load {:.1} ms ({loaded} transitions); peak RSS {:.1} MB",
        transitions,
        specs
            .slos
            .iter()
            .filter(|s| s.spec.window.is_steady())
            .count(),
        size as f64 / 1e6,
        mean * 1e3,
        saves[(saves.len() * 99 / 100).min(saves.len() - 1)] * 1e3,
        saves[saves.len() - 1] * 1e3,
        load_s * 1e3,
        peak_rss / 1e6
    );
    let _ = std::fs::remove_dir_all(&dir);
    ExitCode::SUCCESS
}
