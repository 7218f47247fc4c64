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
    /// Address to serve the Kubernetes API, control endpoint and /metrics on; port 0 picks a free
    /// port. Only loopback unless --allow-remote: the API has no authentication.
    #[arg(long, default_value = "127.0.0.1:0", env = "UPSOAK_SIM_LISTEN")]
    listen: String,
    /// Listen on a non-loopback address although anyone who reaches it can install versions,
    /// scale and delete (the simulator has no authentication).
    #[arg(long, env = "UPSOAK_SIM_ALLOW_REMOTE")]
    allow_remote: bool,
    /// Time a client has to send a request's headers (and an idle connection its next request).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    header_read_timeout: std::time::Duration,
    /// Time a client has to send a request's body.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    body_read_timeout: std::time::Duration,
    /// Connections served at once (each watch holds one); more are answered 503 and closed.
    #[arg(long, default_value_t = 512)]
    max_connections: usize,
    /// YAML configuration (versions, gates, timings, faults); the built-in default covers Agones 1.55–1.60.
    #[arg(long, env = "UPSOAK_SIM_CONFIG")]
    config: Option<PathBuf>,
    /// Seed for the simulator's random choices (names, picks, fault timing).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[command(flatten)]
    log: upsoak_common::telemetry::LogArgs,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    upsoak_common::telemetry::init("info", args.log.log_format);
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
    let limits = upsoak_common::server::Limits {
        header_read_timeout: args.header_read_timeout,
        body_read_timeout: args.body_read_timeout,
        max_connections: args.max_connections,
        ..upsoak_sim::server::default_limits()
    };
    limits.check().map_err(|e| {
        CliError::bad_input(format!(
            "--header-read-timeout, --body-read-timeout, --max-connections: {e}"
        ))
    })?;
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .map_err(|e| {
            CliError::runtime(format!("cannot listen on `{}`", args.listen)).with_source(e)
        })?;
    let bound = listener.local_addr().map_err(|e| {
        CliError::runtime(format!("no local address for `{}`", args.listen)).with_source(e)
    })?;
    if !bound.ip().is_loopback() && !args.allow_remote {
        return Err(CliError::bad_input(format!(
            "refusing to listen on `{}` ({bound}), which is not loopback: the simulator's API has no authentication (anyone who reaches it can install, scale and delete); pass --allow-remote to do it anyway",
            args.listen
        )));
    }
    if !bound.ip().is_loopback() {
        tracing::warn!(addr = %bound, "listening beyond loopback (--allow-remote): the API has no authentication");
    }
    let shutdown = upsoak_common::shutdown::on_signal();
    let (sim, handle) = Sim::start_with(cfg, listener, shutdown, args.seed, limits)
        .map_err(|e| CliError::runtime("cannot start the simulator").with_source(e))?;
    println!("listening on http://{}", sim.addr);
    if let Some(a) = sim.allocator_service {
        if !a.ip().is_loopback() && !args.allow_remote {
            return Err(CliError::bad_input(format!(
                "refusing to serve the allocator service on {a}, which is not loopback; pass --allow-remote to do it anyway"
            )));
        }
        println!("allocator service on https://{a}");
    }
    match handle.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(CliError::runtime("the simulator stopped").with_source(e)),
        Err(e) => Err(CliError::runtime("the simulator stopped").with_source(e)),
    }
}
