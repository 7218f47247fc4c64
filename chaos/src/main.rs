//! `upsoak-chaos`: parses arguments, starts telemetry, runs one subcommand.

use std::process::ExitCode;

use clap::Parser;
use upsoak_chaos::cli;
use upsoak_common::cli::{CliError, print_error};

#[tokio::main]
async fn main() -> ExitCode {
    let args = cli::Args::parse();
    upsoak_common::telemetry::init("info", args.log.log_format);
    match args.run(&mut std::io::stdout()).await {
        Ok(()) => ExitCode::from(cli::EXIT_OK),
        Err(e) => {
            let e = CliError::from(e);
            print_error(&e);
            ExitCode::from(e.code)
        }
    }
}
