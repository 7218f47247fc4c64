//! `upsoak-chaos`: parses arguments, starts telemetry, runs one subcommand.

use std::process::ExitCode;

use clap::Parser;
use upsoak_chaos::cli;

#[tokio::main]
async fn main() -> ExitCode {
    let args = cli::Args::parse();
    upsoak_common::telemetry::init("info");
    match args.run(&mut std::io::stdout()).await {
        Ok(()) => ExitCode::from(cli::EXIT_OK),
        Err(e) => {
            eprintln!("{}", e.report());
            ExitCode::from(e.exit_code())
        }
    }
}
