//! `upsoak-agent`: parses arguments and runs one subcommand.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use upsoak_agent::cli;

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
    /// Judges every Wanderer transition until stopped (or `--max-transitions`); exits with the
    /// overall verdict.
    Run {
        #[arg(long, env = "UPSOAK_PROMETHEUS")]
        prometheus: String,
        #[arg(long, default_value = "rules/slos.yaml")]
        specs: PathBuf,
        /// Baseline file from `baseline record`; without it only objectives are judged.
        #[arg(long)]
        baseline: Option<PathBuf>,
        /// Where the verdict history is kept (survives restarts).
        #[arg(long)]
        state_dir: PathBuf,
        /// Address of /metrics, /healthz, /readyz; port 0 picks one.
        #[arg(long, default_value = "127.0.0.1:9465")]
        listen: String,
        /// Alertmanager base URL (API v2).
        #[arg(long)]
        alertmanager: Option<String>,
        /// Wait after a transition before judging.
        #[arg(long, default_value = "2m")]
        settle: humantime::Duration,
        /// Length of the judged window.
        #[arg(long, default_value = "5m")]
        judge_window: humantime::Duration,
        /// Query resolution of the judged window.
        #[arg(long, default_value = "15s")]
        step: humantime::Duration,
        /// Evaluation period.
        #[arg(long, default_value = "15s")]
        interval: humantime::Duration,
        /// Significance level of the Mann–Whitney test.
        #[arg(long, default_value_t = 0.05)]
        alpha: f64,
        /// Stop once this many transitions are judged.
        #[arg(long)]
        max_transitions: Option<usize>,
        /// Kubernetes API for the control-plane probes (else kubeconfig or in-cluster).
        #[arg(long)]
        kube_server: Option<String>,
        /// Turns the active control-plane probes off (passive mode).
        #[arg(long)]
        no_probes: bool,
        /// Grafana base URL for annotations (a region per transition, a point per verdict).
        #[arg(long)]
        grafana: Option<String>,
        /// File holding the Grafana API token.
        #[arg(long)]
        grafana_token_file: Option<PathBuf>,
        /// Without a Grafana: record the annotations that would be posted here (JSON lines).
        #[arg(long)]
        annotations_file: Option<PathBuf>,
    },
    /// Prints the verdict history and exits with the overall verdict.
    Report {
        #[arg(long)]
        state_dir: PathBuf,
        /// `text`, `json` or `html`.
        #[arg(long, default_value = "text")]
        format: String,
    },
    /// Prometheus rules from the SLO specs.
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
    /// Baselines: steady-state statistics of each SLO.
    Baseline {
        #[command(subcommand)]
        command: BaselineCommand,
    },
}

#[derive(Subcommand)]
enum RulesCommand {
    /// Prints recording and alerting rules (`promtool check rules` accepts them).
    Export {
        #[arg(long, default_value = "rules/slos.yaml")]
        specs: PathBuf,
        /// Baseline for the relative criteria; without it only objectives become alerts.
        #[arg(long)]
        baseline: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum BaselineCommand {
    /// Range-queries each SLO over a steady window and stores its statistics. Refuses a window
    /// with a Wanderer transition in it, or too few samples.
    Record {
        /// Prometheus (or any Prometheus-compatible API) base URL.
        #[arg(long, env = "UPSOAK_PROMETHEUS")]
        prometheus: String,
        /// Window start: unix seconds, RFC 3339, `now` or `-10m` (before now).
        #[arg(long, allow_hyphen_values = true)]
        from: String,
        /// Window end, as `--from`.
        #[arg(long, allow_hyphen_values = true, default_value = "now")]
        to: String,
        /// Query resolution.
        #[arg(long, default_value = "15s")]
        step: humantime::Duration,
        /// SLO specs.
        #[arg(long, default_value = "rules/slos.yaml")]
        specs: PathBuf,
        /// Where to write the baseline (JSON).
        #[arg(long)]
        out: PathBuf,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    upsoak_common::telemetry::init("info");
    let result = match args.command {
        Command::CheckConfig { file } => cli::check_config(&file),
        Command::Baseline {
            command:
                BaselineCommand::Record {
                    prometheus,
                    from,
                    to,
                    step,
                    specs,
                    out,
                },
        } => cli::record_baseline(&prometheus, &from, &to, *step, &specs, &out).await,
        Command::Report { state_dir, format } => cli::report(&state_dir, &format),
        Command::Rules {
            command: RulesCommand::Export { specs, baseline },
        } => cli::export_rules(&specs, baseline.as_deref()),
        Command::Run {
            prometheus,
            specs,
            baseline,
            state_dir,
            listen,
            alertmanager,
            settle,
            judge_window,
            step,
            interval,
            alpha,
            max_transitions,
            kube_server,
            no_probes,
            grafana,
            grafana_token_file,
            annotations_file,
        } => {
            let opts = cli::RunOptions {
                prometheus,
                specs,
                baseline,
                state_dir,
                listen,
                alertmanager,
                settle: *settle,
                judge_window: *judge_window,
                step: *step,
                interval: *interval,
                alpha,
                max_transitions,
                kube_server,
                probes: !no_probes,
                grafana,
                grafana_token_file,
                annotations_file,
            };
            cli::run(opts, upsoak_common::shutdown::on_signal()).await
        }
    };
    match result {
        Ok(text) => {
            print!("{text}");
            ExitCode::from(upsoak_agent::exit::PASS)
        }
        Err(e) => {
            eprintln!("error: {}", e.message);
            ExitCode::from(e.code)
        }
    }
}
