//! `upsoak-sim`: parses arguments, loads the config, serves until SIGINT or SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use upsoak_sim::config::SimConfig;
use upsoak_sim::server::Sim;

/// An embedded Agones control plane speaking the Kubernetes API, for upsoak and for tests.
///
/// Exit codes: 0 stopped cleanly, 1 runtime failure (e.g. cannot bind), 2 invalid configuration.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Address to serve the Kubernetes API, control endpoint and /metrics on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0", env = "UPSOAK_SIM_LISTEN")]
    listen: String,
    /// YAML configuration (versions, gates, timings, faults); the built-in default covers Agones 1.55–1.60.
    #[arg(long, env = "UPSOAK_SIM_CONFIG")]
    config: Option<PathBuf>,
    /// Seed for the simulator's random choices (names, picks, fault timing).
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    upsoak_common::telemetry::init("info");
    let cfg = match &args.config {
        Some(p) => SimConfig::load(p),
        None => SimConfig::default_config(),
    };
    let cfg = match cfg {
        Ok(c) => c,
        Err(e) => {
            eprint!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let listener = match tokio::net::TcpListener::bind(&args.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot listen on `{}`\ncaused by: {e}", args.listen);
            return ExitCode::from(1);
        }
    };
    let shutdown = upsoak_common::shutdown::on_signal();
    match Sim::start(cfg, listener, shutdown, args.seed) {
        Ok((sim, handle)) => {
            println!("listening on http://{}", sim.addr);
            let _ = handle.await;
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: cannot start the simulator\ncaused by: {e}");
            ExitCode::from(1)
        }
    }
}
