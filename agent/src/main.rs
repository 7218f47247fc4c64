//! `upsoak-agent`: parses arguments and runs one subcommand.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use upsoak_agent::exit;
use upsoak_agent::spec::Specs;

/// The upsoak Monitor: judges every Agones upgrade from Prometheus against recorded SLO baselines.
///
/// Exit codes: 0 pass, 1 fail, 2 bad input, 3 inconclusive.
#[derive(Parser)]
#[command(version)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Checks an SLO spec file: every problem with its path (exit 2), or a summary (exit 0).
    CheckConfig { file: PathBuf },
}

fn main() -> ExitCode {
    let args = Args::parse();
    upsoak_common::telemetry::init("info");
    match args.command {
        Command::CheckConfig { file } => match Specs::load(&file) {
            Ok(specs) => {
                println!(
                    "{}: {} SLOs in {} groups (spec hash {})",
                    file.display(),
                    specs.slos.len(),
                    specs.file.groups.len(),
                    specs.hash
                );
                for g in &specs.file.groups {
                    let names: Vec<&str> = g.slos.iter().map(|s| s.name.as_str()).collect();
                    println!(
                        "  {} every {}: {}",
                        g.name,
                        humantime_fmt(g.interval),
                        names.join(", ")
                    );
                }
                ExitCode::from(exit::PASS)
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(exit::BAD_INPUT)
            }
        },
    }
}

fn humantime_fmt(d: std::time::Duration) -> String {
    format!("{}s", d.as_secs_f64())
}
