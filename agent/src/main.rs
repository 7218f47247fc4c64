//! `upsoak-agent`: parses arguments, starts telemetry, runs one subcommand. The arguments and
//! their help live in [`upsoak_agent::cli`]; the exit codes in [`upsoak_agent::exit`].

use std::process::ExitCode;

use clap::Parser;
use upsoak_agent::cli;

#[tokio::main]
async fn main() -> ExitCode {
    let args = cli::Args::parse();
    upsoak_common::telemetry::init("info");
    match args.execute().await {
        Ok(out) => {
            print!("{}", out.text);
            ExitCode::from(out.code)
        }
        Err(e) => {
            eprintln!("error: {}", e.message);
            for cause in &e.causes {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::from(e.code)
        }
    }
}
