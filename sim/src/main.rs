//! `upsoak-sim`: parses arguments, loads the config, serves until SIGINT or SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use upsoak_common::cli::{CliError, print_error};
use upsoak_common::exit;
use upsoak_sim::config::SimConfig;
use upsoak_sim::server::Sim;

/// An embedded Agones control plane speaking the Kubernetes API, for upsoak and for tests.
///
/// Exit codes: 0 stopped cleanly (SIGINT or SIGTERM), 2 invalid configuration, 4 runtime
/// failure (cannot listen, serving failed, a task crashed).
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
    match run(args).await {
        Ok(()) => ExitCode::from(exit::OK),
        Err(e) => {
            print_error(&e);
            ExitCode::from(e.code)
        }
    }
}

async fn run(args: Args) -> Result<(), CliError> {
    let cfg = match &args.config {
        Some(p) => SimConfig::load(p)?,
        None => SimConfig::default_config()?,
    };
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .map_err(|e| {
            CliError::runtime(format!("cannot listen on `{}`", args.listen)).with_source(e)
        })?;
    let shutdown = upsoak_common::shutdown::on_signal();
    let (sim, handle) = Sim::start(cfg, listener, shutdown, args.seed)
        .map_err(|e| CliError::runtime("cannot start the simulator").with_source(e))?;
    println!("listening on http://{}", sim.addr);
    match handle.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(CliError::runtime("the simulator stopped").with_source(e)),
        Err(e) => Err(CliError::runtime("the simulator stopped").with_source(e)),
    }
}
