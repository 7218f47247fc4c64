//! `upsoak-chaos`: parses arguments, starts telemetry, runs one subcommand.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use upsoak_chaos::cli;

/// The upsoak sidecar: the Wanderer (a seeded walk over valid Agones configurations) and the
/// Producer (open-model load: Fleet scaling, allocations, game sessions).
///
/// Exit codes: 0 success, 1 runtime failure, 2 bad input (file, flag or configuration).
#[derive(Parser)]
#[command(version)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Checks a configuration space file: every problem with its path (exit 2), or a summary.
    ///
    /// Constraints: `IF expr THEN expr` or `expr`, with NOT > AND > OR, `(…)`, `gate:NAME`,
    /// `version OP 1.59`, `tunable:NAME OP VALUE`; OP is ==, !=, <, <=, >, >=.
    Validate { file: PathBuf },
    /// Prints the walk a seed gives, without applying it.
    Plan {
        #[arg(long)]
        space: PathBuf,
        #[arg(long)]
        seed: u64,
        #[arg(long, default_value_t = 20)]
        steps: u64,
        /// `random` (uniform over valid neighbours) or `coverage` (most new pairs first).
        #[arg(long, default_value = "coverage")]
        strategy: String,
        /// `text` or `json`.
        #[arg(long, default_value = "text")]
        format: String,
    },
    /// Runs the sidecar: /metrics, /healthz, /readyz on `listen`, the Wanderer and the Producer.
    Run {
        /// YAML configuration; `UPSOAK_SECTION__KEY=value` overrides a key.
        #[arg(long, env = "UPSOAK_CONFIG")]
        config: PathBuf,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    upsoak_common::telemetry::init("info");
    let result = match args.command {
        Command::Validate { file } => cli::validate(&file).map(|s| print!("{s}")),
        Command::Plan {
            space,
            seed,
            steps,
            strategy,
            format,
        } => match format.as_str() {
            "text" | "json" => {
                cli::plan(&space, seed, steps, &strategy, format == "json").map(|s| print!("{s}"))
            }
            other => Err(cli::CliError {
                code: cli::EXIT_BAD_INPUT,
                message: format!("--format: `{other}` is not text or json"),
            }),
        },
        Command::Run { config } => cli::run(&config, upsoak_common::shutdown::on_signal()).await,
    };
    match result {
        Ok(()) => ExitCode::from(cli::EXIT_OK),
        Err(e) => {
            eprintln!("error: {}", e.message);
            ExitCode::from(e.code)
        }
    }
}
