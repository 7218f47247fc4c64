//! `upsoak-agent`: parses arguments, starts telemetry, runs one subcommand. The arguments and
//! their help live in [`upsoak_agent::cli`]; the exit codes in [`upsoak_agent::exit`].

use std::process::ExitCode;

use clap::Parser;
use upsoak_agent::cli;

#[tokio::main]
async fn main() -> ExitCode {
    let args = cli::Args::parse();
    upsoak_common::telemetry::init("info", args.log.log_format);
    match args.execute().await {
        Ok(out) => {
            print!("{}", out.text);
            ExitCode::from(out.code)
        }
        Err(e) => {
            upsoak_common::cli::print_error(&e);
            ExitCode::from(e.code)
        }
    }
}
