//! Evaluation cost at scale, for BENCHMARKS.md, against a real Prometheus scraping itself every
//! second (needs 70 s of data): N SLOs in one group, repeated ROUNDS times. Each round is the
//! usual slot (one instant query per SLO, the live values) and then the worst slot (the same
//! plus judging a transition: the 30 s window and the window before it at the group's 2 s
//! step). Prints latency, queries, CPU and RSS.
//! `cargo run --release -p upsoak-agent --example bench_judge -- http://127.0.0.1:9090 200 10`

use std::process::ExitCode;
use std::time::{Duration, Instant};

use upsoak_agent::baseline;
use upsoak_agent::eval::{self, JudgeSettings, Judging};
use upsoak_agent::history::{History, Transition};
use upsoak_agent::prom::PromQuerier;
use upsoak_agent::spec::Specs;
use upsoak_common::process::ProcessStats;

#[tokio::main]
async fn main() -> ExitCode {
    let a: Vec<String> = std::env::args().collect();
    let (Some(url), Some(n), Some(rounds)) = (
        a.get(1),
        a.get(2).and_then(|s| s.parse::<usize>().ok()),
        a.get(3).and_then(|s| s.parse::<usize>().ok()),
    ) else {
        eprintln!("usage: bench_judge PROMETHEUS_URL SLOS ROUNDS");
        return ExitCode::from(2);
    };
    let mut yaml = String::from("groups:\n  - name: bench\n    interval: 2s\n    slos:\n");
    for i in 0..n {
        yaml.push_str(&format!(
            "      - {{ name: s{i}, expr: \"sum(rate(prometheus_http_requests_total[1m])) * {}\", baseline: \"<= +50%\", min_samples: 3 }}\n",
            1 + i % 7
        ));
    }
    let specs = match Specs::parse(&yaml, "bench") {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let q = match PromQuerier::new(url, None) {
        Ok(q) => q,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    let base = match baseline::record(&q, &specs, now - 70, now - 40, 2.0).await {
        Ok(r) => r.baseline,
        Err(e) => {
            eprintln!("baseline: {e}");
            return ExitCode::from(1);
        }
    };
    let w = JudgeSettings {
        settle: Duration::from_secs(0),
        judge: Duration::from_secs(30),
        step: None,
        alpha: 0.05,
    };
    let mut slot = Vec::new();
    let cpu_slot0 = ProcessStats::read().map(|s| s.cpu_seconds).unwrap_or(0.0);
    for _ in 0..rounds {
        let start = Instant::now();
        let values = eval::current_values(&q, &specs, "bench", now).await;
        slot.push(start.elapsed().as_secs_f64());
        if values.iter().any(|(_, v)| v.is_err()) {
            eprintln!("a live query failed");
            return ExitCode::from(1);
        }
    }
    let cpu_slot = ProcessStats::read().map(|s| s.cpu_seconds).unwrap_or(0.0) - cpu_slot0;
    let cpu0 = ProcessStats::read().map(|s| s.cpu_seconds).unwrap_or(0.0);
    let inbox = Default::default();
    let judging = Judging {
        specs: &specs,
        baseline: Some(&base),
        settings: &w,
        inbox: &inbox,
    };
    let mut lat = Vec::new();
    for _ in 0..rounds {
        let mut h = History::default();
        h.transitions.push(Transition::new(
            2,
            now - 32,
            Default::default(),
            Default::default(),
        ));
        let start = Instant::now();
        eval::judge_due(&q, &judging, &mut h, now, &eval::all_groups(&specs)).await;
        lat.push(start.elapsed().as_secs_f64());
    }
    let cpu = ProcessStats::read().map(|s| s.cpu_seconds).unwrap_or(0.0) - cpu0;
    lat.sort_by(f64::total_cmp);
    let rss = ProcessStats::read()
        .map(|s| s.resident_bytes)
        .unwrap_or(0.0)
        / 1e6;
    slot.sort_by(f64::total_cmp);
    let per_slot = cpu_slot / rounds as f64;
    println!("{n} SLOs in one group; {rounds} rounds");
    println!(
        "usual slot ({n} instant queries): median {:.0} ms, max {:.0} ms; CPU {per_slot:.3} s, {:.2} % of a core at a 15 s interval",
        slot[slot.len() / 2] * 1e3,
        slot[slot.len() - 1] * 1e3,
        per_slot / 15.0 * 100.0
    );
    println!("judgement: {} range queries each", 2 * n);
    println!(
        "judgement latency: median {:.0} ms, max {:.0} ms",
        lat[lat.len() / 2] * 1e3,
        lat[lat.len() - 1] * 1e3
    );
    println!(
        "agent CPU per judgement: {:.3} s; as a share of a core at one judgement per 15 s tick: {:.1} %",
        cpu / rounds as f64,
        cpu / rounds as f64 / 15.0 * 100.0
    );
    println!("agent RSS: {rss:.1} MB");
    ExitCode::SUCCESS
}
