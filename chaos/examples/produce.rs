//! Runs the Producer alone for a fixed time and prints what it achieved, for
//! `bench/producer.sh`: `cargo run --release -p upsoak-chaos --example produce -- URL FLEET RATE SECONDS [play|exit|keep]`.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use upsoak_chaos::producer::events::ProducerMetrics;
use upsoak_chaos::producer::{self, FleetLoad, ProducerConfig, SessionConfig, SessionMode};
use upsoak_common::process::ProcessStats;

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let mode = match args.get(5).map(String::as_str) {
        None | Some("play") => SessionMode::Play,
        Some("exit") => SessionMode::Exit,
        Some("keep") => SessionMode::Keep,
        Some(other) => {
            eprintln!("unknown session mode `{other}`: play, exit or keep");
            return ExitCode::from(2);
        }
    };
    let (Some(url), Some(fleet), Some(rate), Some(secs)) = (
        args.get(1),
        args.get(2),
        args.get(3).and_then(|r| r.parse::<f64>().ok()),
        args.get(4).and_then(|s| s.parse::<u64>().ok()),
    ) else {
        eprintln!("usage: produce URL FLEET RATE SECONDS [play|exit|keep]");
        return ExitCode::from(2);
    };
    let client = match producer::client(Some(url)).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let cfg = ProducerConfig {
        fleets: vec![FleetLoad {
            name: fleet.clone(),
            scale_every_min: Duration::ZERO,
            scale_every_max: Duration::ZERO,
            ..FleetLoad::default()
        }],
        allocation_rate: rate,
        sessions: mode,
        max_in_flight: 512,
        session: SessionConfig {
            min_length: Duration::ZERO,
            max_length: Duration::ZERO,
            max_players: 1,
            ..SessionConfig::default()
        },
        window: Duration::from_secs(secs.max(1) * 10),
        ..ProducerConfig::default()
    };
    let metrics = ProducerMetrics::default();
    let stop = CancellationToken::new();
    let cpu0 = ProcessStats::read().map(|s| s.cpu_seconds).unwrap_or(0.0);
    let start = Instant::now();
    let task = tokio::spawn(producer::run(client, cfg, metrics.clone(), stop.clone()));
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.cancel();
    match task.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) | Err(e) => {
            eprintln!("error: the producer crashed: {e}");
            return ExitCode::from(1);
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = ProcessStats::read().map(|s| s.cpu_seconds).unwrap_or(0.0) - cpu0;
    let count = |r: &str| metrics.allocations(r);
    let allocated = count("Allocated");
    let w = metrics.rotate_window();
    println!("target rate: {rate}/s for {secs} s");
    println!(
        "Allocated {allocated} ({:.0}/s), UnAllocated {}, Contention {}, errors {}, dropped {}",
        allocated as f64 / elapsed,
        count("UnAllocated"),
        count("Contention"),
        [
            "error_unavailable",
            "error_server",
            "error_timeout",
            "error_connection",
            "error_rejected"
        ]
        .iter()
        .map(|r| count(r))
        .sum::<u64>(),
        metrics.dropped()
    );
    println!(
        "latency from schedule: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        w.p50 * 1e3,
        w.p99 * 1e3,
        w.max * 1e3
    );
    println!("producer CPU: {:.2} cores", cpu / elapsed);
    ExitCode::SUCCESS
}
