//! The `upsoak-agent` subcommands.

use std::path::Path;
use std::time::Duration;

use std::path::PathBuf;

use crate::Error;
use crate::baseline::{self, Baseline};
use crate::eval::{History, Windows};
use crate::exit;
use crate::prom::PromQuerier;
use crate::report;
use crate::run::{self, RunConfig};
use crate::sinks::AgentMetrics;
use crate::spec::Specs;

/// An error with the exit code it means.
#[derive(Debug)]
pub struct CliError {
    pub code: u8,
    pub message: String,
}

fn bad(message: impl Into<String>) -> CliError {
    CliError {
        code: exit::BAD_INPUT,
        message: message.into(),
    }
}

/// The upsoak Monitor: judges every Agones upgrade from Prometheus against recorded SLO baselines.
///
/// Exit codes: 0 pass, 1 fail, 2 bad input, 3 inconclusive.
/// 0: every judged SLO passed (or the file is valid);
/// 1: at least one SLO failed;
/// 2: bad input (a file, flag or configuration);
/// 3: nothing failed, but something could not be judged.
#[derive(clap::Parser, Debug)]
#[command(name = "upsoak-agent", version)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
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
    Run(RunOptions),
    /// Prints the verdict history and exits with the overall verdict.
    Report {
        /// The `run`'s state directory.
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
    /// Runs the subcommand: its output, or the error with the exit code it means.
    pub async fn run(self) -> Result<String, CliError> {
        match self.command {
            Command::CheckConfig { file } => check_config(&file),
            Command::Run(o) => run(o, upsoak_common::shutdown::on_signal()).await,
            Command::Report { state_dir, format } => report(&state_dir, &format),
            Command::Rules {
                command:
                    RulesCommand::Export {
                        specs,
                        baseline,
                        format,
                        namespace,
                    },
            } => export_rules(&specs, baseline.as_deref(), format, &namespace),
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
                use_prometheus_token(prometheus_token_file.as_deref())?;
                record_baseline(&prometheus, &from, &to, step, &specs, &out).await
            }
        }
    }
}

/// `check-config FILE`.
pub fn check_config(file: &Path) -> Result<String, CliError> {
    let specs = Specs::load(file).map_err(|e| bad(e.to_string()))?;
    let mut out = format!(
        "{}: {} SLOs in {} groups (spec hash {})\n",
        file.display(),
        specs.slos.len(),
        specs.file.groups.len(),
        specs.hash
    );
    for g in &specs.file.groups {
        let names: Vec<&str> = g.slos.iter().map(|s| s.name.as_str()).collect();
        out.push_str(&format!(
            "  {} every {}: {}\n",
            g.name,
            humantime::format_duration(g.interval),
            names.join(", ")
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

/// An unset value: absent, or empty (how a Kubernetes ConfigMap leaves an environment variable
/// unset).
fn set<T: AsRef<std::ffi::OsStr>>(v: Option<T>) -> Option<T> {
    v.filter(|v| !v.as_ref().is_empty())
}

/// Reads `--prometheus-token-file` (when set) and makes every Prometheus query send it.
fn use_prometheus_token(file: Option<&Path>) -> Result<(), CliError> {
    let Some(file) = set(file) else {
        return Ok(());
    };
    let token = std::fs::read_to_string(file)
        .map_err(|e| bad(format!("--prometheus-token-file `{}`: {e}", file.display())))?;
    crate::prom::set_bearer_token(&token).map_err(|e| bad(e.to_string()))
}

/// `baseline record`.
pub async fn record_baseline(
    prometheus: &str,
    from: &str,
    to: &str,
    step: Duration,
    specs: &Path,
    out: &Path,
) -> Result<String, CliError> {
    let now = crate::run::unix_now();
    let from = parse_time(from, now).map_err(|e| bad(format!("--from: {e}")))?;
    let to = parse_time(to, now).map_err(|e| bad(format!("--to: {e}")))?;
    if from >= to {
        return Err(bad(format!("--from ({from}) must be before --to ({to})")));
    }
    if step.is_zero() {
        return Err(bad("--step must be above zero"));
    }
    let specs = Specs::load(specs).map_err(|e| bad(e.to_string()))?;
    let q = PromQuerier::new(prometheus).map_err(|e| bad(e.to_string()))?;
    let b = baseline::record(&q, &specs, from, to, step.as_secs_f64())
        .await
        .map_err(|e| match e {
            e @ Error::Query { .. } => CliError {
                code: exit::INCONCLUSIVE,
                message: e.to_string(),
            },
            Error::Write(..) | Error::Read(..) => CliError {
                code: exit::FAIL,
                message: e.to_string(),
            },
            other => bad(other.to_string()),
        })?;
    b.save(out).map_err(|e| CliError {
        code: exit::FAIL,
        message: e.to_string(),
    })?;
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
    Ok(text)
}

/// `report --state-dir D --format F`: the text, and the exit code of the overall verdict
/// (carried as a `CliError` when it is not pass, so `main` prints the report and exits with it).
pub fn report(state_dir: &Path, format: &str) -> Result<String, CliError> {
    let h = History::load(state_dir).map_err(|e| bad(e.to_string()))?;
    let text = match format {
        "text" => report::text(&h),
        "json" => report::json(&h),
        "html" => report::html(&h),
        other => {
            return Err(bad(format!(
                "--format: `{other}` is not text, json or html"
            )));
        }
    };
    let code = report::exit_code(h.overall());
    if code == exit::PASS {
        Ok(text)
    } else {
        print!("{text}");
        Err(CliError {
            code,
            message: format!("overall verdict: {}", h.overall().as_str()),
        })
    }
}

/// `rules export`.
pub fn export_rules(
    specs: &Path,
    baseline: Option<&Path>,
    format: RulesFormat,
    namespace: &str,
) -> Result<String, CliError> {
    let specs = Specs::load(specs).map_err(|e| bad(e.to_string()))?;
    let base = baseline
        .map(Baseline::load)
        .transpose()
        .map_err(|e| bad(e.to_string()))?;
    Ok(match format {
        RulesFormat::Rules => crate::rules::export(&specs, base.as_ref()),
        RulesFormat::PrometheusRule => {
            crate::rules::export_prometheus_rule(&specs, base.as_ref(), namespace)
        }
    })
}

/// Options of `run`.
#[derive(clap::Args, Debug)]
pub struct RunOptions {
    /// Prometheus (or any Prometheus-compatible API) base URL.
    #[arg(long, env = "UPSOAK_PROMETHEUS")]
    pub prometheus: String,
    /// SLO specs.
    #[arg(long, default_value = "rules/slos.yaml")]
    pub specs: PathBuf,
    /// Baseline file from `baseline record`; without it only objectives are judged.
    #[arg(long)]
    pub baseline: Option<PathBuf>,
    /// Where the verdict history is kept (survives restarts).
    #[arg(long)]
    pub state_dir: PathBuf,
    /// Address of /metrics, /healthz, /readyz; port 0 picks one.
    #[arg(long, default_value = "127.0.0.1:9465")]
    pub listen: String,
    /// File holding a bearer token sent to Prometheus (empty: none).
    #[arg(long, env = "UPSOAK_PROMETHEUS_TOKEN_FILE", value_parser = maybe_path())]
    pub prometheus_token_file: Option<PathBuf>,
    /// Alertmanager base URL (API v2); empty: none.
    #[arg(long, env = "UPSOAK_ALERTMANAGER")]
    pub alertmanager: Option<String>,
    /// Wait after a transition before judging.
    #[arg(long, default_value = "2m", value_parser = humantime::parse_duration)]
    pub settle: Duration,
    /// Length of the judged window.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    pub judge_window: Duration,
    /// Query resolution of every group's judged window [default: each group's `interval`,
    /// the slot it is evaluated on].
    #[arg(long, value_parser = humantime::parse_duration)]
    pub step: Option<Duration>,
    /// Period of the active control-plane probes.
    #[arg(long, alias = "interval", default_value = "15s", value_parser = humantime::parse_duration)]
    pub probe_interval: Duration,
    /// Significance level of the Mann–Whitney test.
    #[arg(long, default_value_t = crate::judge::DEFAULT_ALPHA)]
    pub alpha: f64,
    /// Stop once this many transitions are judged.
    #[arg(long)]
    pub max_transitions: Option<usize>,
    /// Kubernetes API for the control-plane probes (else kubeconfig or in-cluster).
    #[arg(long)]
    pub kube_server: Option<String>,
    /// Turns the active control-plane probes off (passive mode).
    #[arg(long = "no-probes", action = clap::ArgAction::SetFalse)]
    pub probes: bool,
    /// Grafana base URL for annotations (a region per transition, a point per verdict); empty:
    /// none.
    #[arg(long, env = "UPSOAK_GRAFANA")]
    pub grafana: Option<String>,
    /// File holding the Grafana API token.
    #[arg(long, env = "UPSOAK_GRAFANA_TOKEN_FILE", value_parser = maybe_path())]
    pub grafana_token_file: Option<PathBuf>,
    /// Without a Grafana: record the annotations that would be posted here (JSON lines).
    #[arg(long)]
    pub annotations_file: Option<PathBuf>,
}

/// A flag set on every SIGHUP.
fn reload_on_sighup() -> std::sync::Arc<std::sync::atomic::AtomicBool> {
    let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    #[cfg(unix)]
    {
        let f = flag.clone();
        if let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        {
            tokio::spawn(async move {
                while hup.recv().await.is_some() {
                    f.store(true, std::sync::atomic::Ordering::Release);
                }
            });
        }
    }
    flag
}

/// `run`: serves /metrics and judges transitions until stopped; the overall verdict is the
/// exit code.
pub async fn run(
    o: RunOptions,
    shutdown: tokio_util::sync::CancellationToken,
) -> Result<String, CliError> {
    let specs = Specs::load(&o.specs).map_err(|e| bad(e.to_string()))?;
    let baseline = match &o.baseline {
        Some(p) => {
            let b = Baseline::load(p).map_err(|e| bad(e.to_string()))?;
            if b.spec_hash != specs.hash {
                tracing::warn!(baseline = %p.display(), "the baseline was recorded for other SLO specs; SLOs it lacks are judged on objectives only");
            }
            Some(b)
        }
        None => None,
    };
    if !(o.alpha > 0.0 && o.alpha < 1.0) {
        return Err(bad(format!("--alpha: {} is not within (0, 1)", o.alpha)));
    }
    if o.probe_interval.is_zero() || o.step.is_some_and(|s| s.is_zero()) {
        return Err(bad("--probe-interval and --step must be above zero"));
    }
    let windows = Windows {
        settle: o.settle,
        judge: o.judge_window,
        step: o.step,
        alpha: o.alpha,
    };
    let short = crate::eval::too_few_samples(&specs, &windows);
    if !short.is_empty() {
        return Err(bad(format!(
            "--judge-window {}s is too short for these SLOs (lengthen it, or lower their group's interval or min_samples):\n  {}",
            o.judge_window.as_secs(),
            short.join("\n  ")
        )));
    }
    let listener = tokio::net::TcpListener::bind(&o.listen)
        .await
        .map_err(|e| CliError {
            code: exit::FAIL,
            message: format!("cannot listen on `{}`: {e}", o.listen),
        })?;
    let addr = listener.local_addr().map_err(|e| CliError {
        code: exit::FAIL,
        message: e.to_string(),
    })?;
    println!("listening on http://{addr}");
    use_prometheus_token(o.prometheus_token_file.as_deref())?;
    let grafana = match (
        &set(o.grafana.as_deref()),
        &set(o.grafana_token_file.as_deref()),
    ) {
        (Some(url), Some(file)) => {
            let token = std::fs::read_to_string(file)
                .map_err(|e| bad(format!("--grafana-token-file `{}`: {e}", file.display())))?;
            Some(crate::grafana::Grafana::new(url, token.trim()))
        }
        (Some(_), None) => return Err(bad("--grafana needs --grafana-token-file")),
        (None, _) => o.annotations_file.as_deref().map(|p| {
            println!("no --grafana: annotations are recorded in {}", p.display());
            crate::grafana::Grafana::recording(p)
        }),
    };
    let metrics = AgentMetrics::default();
    let mut registry = prometheus_client::registry::Registry::default();
    metrics.register(&mut registry);
    let probe_metrics = crate::probe::ProbeMetrics::default();
    if o.probes {
        probe_metrics.register(&mut registry);
        let client = crate::probe::client(o.kube_server.as_deref())
            .await
            .map_err(bad)?;
        tokio::spawn(crate::probe::run(
            client,
            o.probe_interval,
            probe_metrics,
            shutdown.clone(),
        ));
    }
    registry.register_collector(Box::new(upsoak_common::process::ProcessCollector));
    let inbox = crate::webhook::Inbox::default();
    let server = tokio::spawn(run::serve(
        listener,
        registry,
        inbox.clone(),
        shutdown.clone(),
    ));
    let cfg = RunConfig {
        prometheus: o.prometheus,
        specs,
        baseline,
        state_dir: o.state_dir.clone(),
        alertmanager: set(o.alertmanager),
        windows,
        max_judged: o.max_transitions,
        grafana,
        inbox,
        reload: Some((o.specs.clone(), reload_on_sighup())),
    };
    let verdict = run::run(cfg, metrics, shutdown.clone())
        .await
        .map_err(|e| CliError {
            code: exit::FAIL,
            message: e.to_string(),
        })?;
    shutdown.cancel();
    let _ = server.await;
    let h = History::load(&o.state_dir).map_err(|e| bad(e.to_string()))?;
    let text = report::text(&h);
    match report::exit_code(verdict) {
        exit::PASS => Ok(text),
        code => {
            print!("{text}");
            Err(CliError {
                code,
                message: format!("overall verdict: {}", verdict.as_str()),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_in_every_documented_form() {
        assert_eq!(parse_time("now", 1000), Ok(1000));
        assert_eq!(parse_time("-10m", 1000), Ok(400));
        assert_eq!(parse_time("1764000000", 0), Ok(1_764_000_000));
        assert_eq!(parse_time("2026-11-25T00:00:00Z", 0), Ok(1_795_564_800));
        assert!(parse_time("yesterday", 0).is_err());
    }
}
