//! The `upsoak-agent` command line: the arguments (their doc comments are the help), and every
//! subcommand but `run`, whose wiring is in [`monitor`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::Error;
use crate::baseline::{self, Baseline};
use crate::exit;
use crate::history::History;
use crate::prom::PromQuerier;
use crate::report;
use crate::spec::Specs;
use upsoak_common::cli::CliError;

pub mod monitor;

pub use monitor::RunArgs;

fn bad(message: impl Into<String>) -> CliError {
    CliError::bad_input(message)
}

/// An error with exit `code`: its message is the headline, its sources the `caused by:` lines.
fn failed(code: u8, e: impl std::error::Error + Send + Sync + 'static) -> CliError {
    CliError::new(code, e.to_string()).with_source(e)
}

fn bad_error(e: impl std::error::Error + Send + Sync + 'static) -> CliError {
    failed(exit::BAD_INPUT, e)
}

/// What a subcommand printed, and the exit code it means.
#[derive(Debug)]
pub struct Output {
    pub text: String,
    pub code: u8,
}

impl Output {
    fn pass(text: String) -> Output {
        Output {
            text,
            code: exit::PASS,
        }
    }
}

/// The upsoak Monitor: judges every Agones upgrade from Prometheus against recorded SLO baselines.
///
/// Exit codes: 0 pass, 1 fail, 2 bad input, 3 inconclusive, 4 runtime failure.
/// 0: every judged SLO passed (or the file is valid);
/// 1: at least one SLO failed (a regression);
/// 2: bad input (a file, flag or configuration);
/// 3: nothing failed, but something could not be judged;
/// 4: the agent itself failed (cannot listen, cannot write its state): no verdict.
#[derive(clap::Parser, Debug)]
#[command(name = "upsoak-agent", version)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub log: upsoak_common::telemetry::LogArgs,
}

/// The subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Checks an SLO spec file: a summary line per group (exit 0), or every problem with its
    /// path on stderr (exit 2).
    CheckConfig {
        /// The spec file, e.g. rules/slos.yaml.
        file: PathBuf,
    },
    /// Judges every Wanderer transition until stopped (or `--max-transitions`); exits with the
    /// overall verdict.
    Run(Box<RunArgs>),
    /// Prints the verdict history and exits with the overall verdict. Each transition reads as
    /// what it changed (`1.58.0 → 1.59.0  +GateA −GateB  tunable 500ms→100ms`).
    Report(ReportArgs),
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
    /// Writes a state directory's files (history, baseline, webhook inbox; the sidecar's
    /// journal) as a POSIX tar to stdout, for a distroless image without `tar`:
    /// `kubectl exec deploy/upsoak-agent -- upsoak-agent export --state-dir
    /// /var/lib/upsoak/agent > soak.tar`. Every regular file below the directory, but the lock
    /// file and `*.tmp` temporaries. Exit 2 when the directory does not exist, or stdout is a
    /// terminal.
    Export {
        /// The directory to archive: `run`'s `--state-dir`, or the sidecar's.
        #[arg(long)]
        state_dir: PathBuf,
    },
}

/// `report …`.
#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// The `run`'s state directory.
    #[arg(long)]
    pub state_dir: PathBuf,
    /// `text`, `json` or `html`.
    #[arg(long, default_value = "text")]
    pub format: String,
    /// Text: each transition's whole configuration before and after, not only what changed
    /// (the JSON always has it, the HTML one click away).
    #[arg(long)]
    pub full_config: bool,
    /// Keeps reading the history file and prints each transition as it is detected and each
    /// verdict as it is reached, one line each, until SIGINT or SIGTERM; then exits with the
    /// overall verdict. Text only.
    #[arg(long)]
    pub follow: bool,
    /// How often `--follow` reads the history file.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub interval: Duration,
}

/// `rules …`.
#[derive(clap::Subcommand, Debug)]
pub enum RulesCommand {
    /// Prints recording and alerting rules (`promtool check rules` accepts them).
    Export {
        /// SLO specs.
        #[arg(long, default_value = "rules/slos.yaml")]
        specs: PathBuf,
        /// Baseline for the relative criteria; without it only objectives become alerts.
        #[arg(long)]
        baseline: Option<PathBuf>,
        /// `rules`: a rule file (`rule_files:`); `prometheus-rule`: the same groups in a
        /// prometheus-operator `PrometheusRule` object.
        #[arg(long, value_enum, default_value_t = RulesFormat::Rules)]
        format: RulesFormat,
        /// Namespace of the `PrometheusRule` object.
        #[arg(long, default_value = "upsoak")]
        namespace: String,
    },
}

/// What `rules export` prints.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum RulesFormat {
    /// A Prometheus rule file.
    Rules,
    /// A `monitoring.coreos.com/v1` PrometheusRule.
    PrometheusRule,
}

/// `baseline …`.
#[derive(clap::Subcommand, Debug)]
pub enum BaselineCommand {
    /// Range-queries each SLO over a steady window and stores the statistics of every SLO with
    /// at least `min_samples` samples; the others are left out and listed with why (no series,
    /// too few samples, a series that starts late: a warm-up). Refuses a window with a Wanderer
    /// transition in it (exit 2). Exit 0 when at least one SLO was recorded; 3 (inconclusive)
    /// when none was, or Prometheus did not answer: nothing is written then.
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
        #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
        step: Duration,
        /// SLO specs.
        #[arg(long, default_value = "rules/slos.yaml")]
        specs: PathBuf,
        /// Where to write the baseline (JSON).
        #[arg(long)]
        out: PathBuf,
        /// File holding a bearer token sent to Prometheus (empty: none).
        #[arg(long, env = "UPSOAK_PROMETHEUS_TOKEN_FILE", value_parser = maybe_path())]
        prometheus_token_file: Option<PathBuf>,
    },
}

impl Args {
    /// Runs the subcommand: its output and exit code, or the error with the exit code it means.
    pub async fn execute(self) -> Result<Output, CliError> {
        match self.command {
            Command::CheckConfig { file } => check_config(&file).map(Output::pass),
            Command::Run(o) => monitor::monitor(*o, upsoak_common::shutdown::on_signal()).await,
            Command::Report(r) if r.follow => {
                follow(&r, &upsoak_common::shutdown::on_signal()).await
            }
            Command::Report(r) => report_with(&r),
            Command::Export { state_dir } => export_state(&state_dir),
            Command::Rules {
                command:
                    RulesCommand::Export {
                        specs,
                        baseline,
                        format,
                        namespace,
                    },
            } => export_rules(&specs, baseline.as_deref(), format, &namespace).map(Output::pass),
            Command::Baseline {
                command:
                    BaselineCommand::Record {
                        prometheus,
                        from,
                        to,
                        step,
                        specs,
                        out,
                        prometheus_token_file,
                    },
            } => {
                let token = prometheus_token(prometheus_token_file.as_deref())?;
                let q = PromQuerier::new(&prometheus, token.as_deref()).map_err(bad_error)?;
                record_baseline(&q, &from, &to, step, &specs, &out)
                    .await
                    .map(Output::pass)
            }
        }
    }
}

/// `check-config FILE`.
pub fn check_config(file: &Path) -> Result<String, CliError> {
    let specs = Specs::load(file).map_err(bad_error)?;
    let mut out = format!(
        "{}: {} SLOs in {} groups (spec hash {})\n",
        file.display(),
        specs.slos.len(),
        specs.file.groups.len(),
        specs.hash
    );
    if !specs.file.vars.is_empty() {
        let vars: Vec<String> = specs
            .file
            .vars
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        out.push_str(&format!("  vars: {}\n", vars.join(", ")));
    }
    for g in &specs.file.groups {
        let names: Vec<&str> = g.slos.iter().map(|s| s.name.as_str()).collect();
        out.push_str(&format!(
            "  {} every {}: {}\n",
            g.name,
            humantime::format_duration(g.interval),
            names.join(", ")
        ));
    }
    // The SLOs whose baseline is taken per configuration (`baseline_by`).
    for s in specs.slos.iter().filter(|s| !s.baseline_by.is_empty()) {
        let keys: Vec<String> = s.baseline_by.iter().map(ToString::to_string).collect();
        out.push_str(&format!(
            "  {}/{}: baseline by {}\n",
            s.group,
            s.spec.name,
            keys.join(", ")
        ));
    }
    Ok(out)
}

/// Parses a time: unix seconds, RFC 3339, `now`, or `-DURATION` before `now`.
pub fn parse_time(s: &str, now: i64) -> Result<i64, String> {
    let s = s.trim();
    if s == "now" {
        return Ok(now);
    }
    if let Some(ago) = s.strip_prefix('-') {
        let d = humantime::parse_duration(ago).map_err(|e| format!("`{s}`: {e}"))?;
        return Ok(now - d.as_secs() as i64);
    }
    if let Ok(secs) = s.parse::<i64>() {
        return Ok(secs);
    }
    s.parse::<jiff::Timestamp>()
        .map(|t| t.as_second())
        .map_err(|_| format!("`{s}` is not unix seconds, RFC 3339, `now` or `-10m`"))
}

/// A path that may be empty (clap refuses an empty `PathBuf`): a Kubernetes ConfigMap sets an
/// environment variable to the empty string to leave it unset.
fn maybe_path() -> impl clap::builder::TypedValueParser<Value = PathBuf> {
    use clap::builder::TypedValueParser;
    clap::builder::OsStringValueParser::new().map(PathBuf::from)
}

/// A value that is set: present and not empty (a Kubernetes ConfigMap sets an environment
/// variable to the empty string to leave it unset).
fn non_empty<T: AsRef<std::ffi::OsStr>>(v: Option<T>) -> Option<T> {
    v.filter(|v| !v.as_ref().is_empty())
}

/// The token of `--prometheus-token-file`, when set.
fn prometheus_token(file: Option<&Path>) -> Result<Option<String>, CliError> {
    let Some(file) = non_empty(file) else {
        return Ok(None);
    };
    std::fs::read_to_string(file).map(Some).map_err(|e| {
        CliError::bad_input(format!(
            "cannot read --prometheus-token-file `{}`",
            file.display()
        ))
        .with_source(e)
    })
}

/// `baseline record`.
pub async fn record_baseline(
    q: &PromQuerier,
    from: &str,
    to: &str,
    step: Duration,
    specs: &Path,
    out: &Path,
) -> Result<String, CliError> {
    let now = crate::time::unix_now();
    let from = parse_time(from, now).map_err(|e| bad(format!("--from: {e}")))?;
    let to = parse_time(to, now).map_err(|e| bad(format!("--to: {e}")))?;
    if from >= to {
        return Err(bad(format!("--from ({from}) must be before --to ({to})")));
    }
    if step.is_zero() {
        return Err(bad("--step must be above zero"));
    }
    let specs = Specs::load(specs).map_err(bad_error)?;
    let recorded = baseline::record(q, &specs, from, to, step.as_secs_f64())
        .await
        .map_err(|e| {
            // Prometheus not answering, or no SLO with data, leaves the baseline undecided,
            // not the input wrong.
            let code = match e {
                Error::Query { .. } | Error::NothingRecorded { .. } => exit::INCONCLUSIVE,
                _ => exit::BAD_INPUT,
            };
            failed(code, e)
        })?;
    let b = &recorded.baseline;
    // The agent could not write its own output: a runtime failure, not a regression.
    b.save(out).map_err(|e| failed(exit::RUNTIME_FAILURE, e))?;
    let mut text = format!(
        "baseline of {} SLOs over {}..{} ({} s step) written to {}\n",
        b.slos.len(),
        from,
        to,
        step.as_secs_f64(),
        out.display()
    );
    for (k, s) in &b.slos {
        text.push_str(&format!(
            "  {k}: mean {:.6} stddev {:.6} p99 {:.6} ({} samples)\n",
            s.mean, s.stddev, s.p99, s.count
        ));
    }
    if !recorded.left_out.is_empty() {
        text.push_str(&format!(
            "left out ({}), too few samples in the window:\n",
            recorded.left_out.len()
        ));
        text.push_str(&recorded.describe_left_out());
    }
    Ok(text)
}

/// `report --state-dir D --format F`: the text, and the exit code of the overall verdict.
pub fn report(state_dir: &Path, format: &str) -> Result<Output, CliError> {
    report_with(&ReportArgs {
        state_dir: state_dir.to_owned(),
        format: format.to_owned(),
        full_config: false,
        follow: false,
        interval: Duration::from_secs(2),
    })
}

/// `report --follow`: prints lines as the history grows until `stop`; the exit code of the
/// overall verdict then.
pub async fn follow(
    r: &ReportArgs,
    stop: &tokio_util::sync::CancellationToken,
) -> Result<Output, CliError> {
    if r.format != "text" {
        return Err(bad(format!(
            "--follow prints text; `--format {}` is for a finished report",
            r.format
        )));
    }
    if r.interval.is_zero() {
        return Err(bad("--interval must be above zero"));
    }
    existing_dir(&r.state_dir, AGENT_DIR)?;
    let print = |l: &str| {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{l}");
        let _ = out.flush();
    };
    let overall = report::follow::follow(&r.state_dir, r.interval, stop, print)
        .await
        .map_err(bad_error)?;
    Ok(Output {
        text: format!("overall: {}\n", overall.as_str().to_uppercase()),
        code: report::exit_code(overall),
    })
}

/// `--state-dir` must name a directory: a missing one is a wrong path (exit 2), not an empty
/// history that reads as inconclusive.
fn existing_dir(dir: &Path, hint: &str) -> Result<(), CliError> {
    if dir.is_dir() {
        return Ok(());
    }
    Err(bad_error(Error::NoDirectory(dir.display().to_string())).with_hint(hint))
}

/// What `report` reads.
const AGENT_DIR: &str = "--state-dir names the directory `run` was given as its --state-dir (the deploy's is /var/lib/upsoak/agent)";

/// `report` with its flags.
pub fn report_with(r: &ReportArgs) -> Result<Output, CliError> {
    existing_dir(&r.state_dir, AGENT_DIR)?;
    let h = History::load(&r.state_dir).map_err(bad_error)?;
    let text = match r.format.as_str() {
        "text" => report::text_with(
            &h,
            report::TextOptions {
                full_config: r.full_config,
            },
        ),
        "json" => report::json(&h),
        "html" => report::html(&h),
        other => {
            return Err(bad(format!(
                "--format: `{other}` is not text, json or html"
            )));
        }
    };
    Ok(Output {
        text,
        code: report::exit_code(h.overall()),
    })
}

/// `export --state-dir DIR`: the tar on stdout, a summary on stderr.
pub fn export_state(dir: &Path) -> Result<Output, CliError> {
    use std::io::IsTerminal;
    existing_dir(
        dir,
        "--state-dir names a state directory: the agent's (the deploy's /var/lib/upsoak/agent) or the sidecar's (/var/lib/upsoak/chaos)",
    )?;
    let stdout = std::io::stdout();
    if stdout.is_terminal() {
        return Err(bad("refusing to write a tar archive to a terminal")
            .with_hint(
            "redirect it: `upsoak-agent export --state-dir DIR > soak.tar` (through kubectl: `kubectl exec` without `-t`, whose terminal would mangle the bytes)",
        ));
    }
    let files = crate::export::write_tar(dir, stdout.lock(), "stdout").map_err(|e| match e {
        Error::NoDirectory(_) => bad_error(e),
        // A file that cannot be read, or a closed pipe: the agent failed, not the input.
        _ => failed(exit::RUNTIME_FAILURE, e),
    })?;
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    eprintln!(
        "exported {} files from {}: {}",
        files.len(),
        dir.display(),
        names.join(", ")
    );
    Ok(Output::pass(String::new()))
}

/// `rules export`.
pub fn export_rules(
    specs: &Path,
    baseline: Option<&Path>,
    format: RulesFormat,
    namespace: &str,
) -> Result<String, CliError> {
    let specs = Specs::load(specs).map_err(bad_error)?;
    let base = baseline
        .map(Baseline::load)
        .transpose()
        .map_err(bad_error)?;
    if let (Some(b), Some(path)) = (&base, baseline)
        && b.example
    {
        return Err(bad(format!(
            "--baseline `{}` is an example (\"example\": true), not a recorded baseline: its numbers would become thresholds nobody measured. Record one on your stack with `upsoak-agent baseline record --from -30m --out baseline.json`, or export without --baseline (objectives and error budgets only)",
            path.display()
        )));
    }
    Ok(match format {
        RulesFormat::Rules => crate::rules::export(&specs, base.as_ref()),
        RulesFormat::PrometheusRule => {
            crate::rules::export_prometheus_rule(&specs, base.as_ref(), namespace)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_args(extra: &[&str]) -> RunArgs {
        let mut argv = vec![
            "upsoak-agent",
            "run",
            "--prometheus",
            "http://p",
            "--state-dir",
            "s",
        ];
        argv.extend_from_slice(extra);
        match <Args as clap::Parser>::try_parse_from(argv)
            .unwrap()
            .command
        {
            Command::Run(o) => *o,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn durations_out_of_their_bounds_are_refused_naming_the_flag_and_the_bound() {
        assert_eq!(monitor::check_durations(&run_args(&[])), Ok(()));
        assert_eq!(
            monitor::check_durations(&run_args(&["--steady-every", "0s"])),
            Ok(())
        );
        let e = monitor::check_durations(&run_args(&["--steady-every", "1ms"])).unwrap_err();
        assert!(
            e.starts_with("--steady-every 1ms is shorter than --judge-window 5m"),
            "{e}"
        );
        let e = monitor::check_durations(&run_args(&["--settle", "400days"])).unwrap_err();
        assert_eq!(
            e,
            "--settle 34560000s is longer than the longest duration taken, 31536000s (365 days)"
        );
        let e = monitor::check_durations(&run_args(&["--step", "30s", "--probe-interval", "10s"]))
            .unwrap_err();
        assert!(
            e.starts_with("--probe-interval 10s is shorter than 30s"),
            "{e}"
        );
        let e = monitor::check_durations(&run_args(&["--probe-interval", "10ms"])).unwrap_err();
        assert!(
            e.starts_with("--probe-interval 10ms is shorter than 1s"),
            "{e}"
        );
    }

    #[test]
    fn times_parse_in_every_documented_form() {
        assert_eq!(parse_time("now", 1000), Ok(1000));
        assert_eq!(parse_time("-10m", 1000), Ok(400));
        assert_eq!(parse_time("1764000000", 0), Ok(1_764_000_000));
        assert_eq!(parse_time("2026-11-25T00:00:00Z", 0), Ok(1_795_564_800));
        assert!(parse_time("yesterday", 0).is_err());
    }
}
