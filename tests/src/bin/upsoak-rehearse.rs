//! `upsoak-rehearse`: runs a shipped overlay as it renders against the simulator at its
//! realistic speed (see `upsoak_tests::rehearse`). `make rehearse` runs both overlays.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use upsoak_tests::rehearse::{exit, run};

/// Rehearse a deploy overlay: render it with `kubectl kustomize`, run every upsoak container
/// as rendered against the simulator (realistic lifecycle and upgrade window), Prometheus and
/// Alertmanager configured as the target stack would configure itself, until N transitions
/// are judged in both windows.
///
/// Run it inside a network namespace of its own (`unshare -n`; `make rehearse` does): the
/// rendered ports (8080, 9090, 9093, 9464, 9465) are used as they are.
///
/// Exit codes: 0 every criterion held; 1 a finding (a criterion did not hold, or the deploy
/// cannot run as rendered); 2 bad input; 3 the rehearsal could not set up.
#[derive(Parser, Debug)]
#[command(name = "upsoak-rehearse")]
struct Args {
    /// The overlay directory, e.g. deploy/overlays/plain-prometheus.
    #[arg(long)]
    overlay: PathBuf,
    /// The repository root.
    #[arg(long, default_value = ".")]
    repo: PathBuf,
    /// An empty or absent directory for everything the rehearsal writes.
    #[arg(long)]
    work: PathBuf,
    /// Transitions to judge in both windows.
    #[arg(long, default_value_t = 6)]
    transitions: usize,
    /// A duration override, CONTAINER:UPSOAK_NAME=DURATION (repeatable); nothing else of the
    /// rendered configuration may change.
    #[arg(long = "set")]
    overrides: Vec<String>,
    /// Inject allocation failures while this Agones version is installed (with --fault-rate).
    #[arg(long)]
    fault_version: Option<String>,
    /// The fraction of allocations that fail under --fault-version.
    #[arg(long, default_value_t = 0.02)]
    fault_rate: f64,
    /// Give up after this long.
    #[arg(long, default_value = "3h", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Also write the outcome as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Also write the outcome as a markdown table here.
    #[arg(long)]
    markdown: Option<PathBuf>,
}

fn main() {
    let args = Args::parse();
    let overrides: Result<Vec<_>, _> = args
        .overrides
        .iter()
        .map(|s| run::parse_override(s))
        .collect();
    let overrides = match overrides {
        Ok(o) => o,
        Err(e) => {
            eprintln!("upsoak-rehearse: {e}");
            std::process::exit(exit::INPUT);
        }
    };
    let options = run::Options {
        overlay: args.overlay,
        repo: args.repo,
        work: args.work,
        transitions: args.transitions,
        overrides,
        fault: args.fault_version.map(|v| (v, args.fault_rate)),
        timeout: args.timeout,
    };
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("upsoak-rehearse: no runtime: {e}");
            std::process::exit(exit::SETUP);
        }
    };
    match rt.block_on(run::rehearse(&options)) {
        Ok(outcome) => {
            let md = outcome.markdown();
            println!("\n{md}");
            if let Some(p) = &args.markdown {
                let _ = std::fs::write(p, &md);
            }
            if let Some(p) = &args.json {
                let _ = std::fs::write(
                    p,
                    serde_json::to_string_pretty(&outcome).unwrap_or_default(),
                );
            }
            std::process::exit(if outcome.unmet.is_empty() {
                exit::OK
            } else {
                exit::FINDING
            });
        }
        Err(e) => {
            eprintln!("upsoak-rehearse: {e}");
            std::process::exit(e.code());
        }
    }
}
