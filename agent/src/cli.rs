//! The `upsoak-agent` subcommands.

use std::path::Path;
use std::time::Duration;

use std::path::PathBuf;

use crate::baseline::{self, Baseline, BaselineError};
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

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
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
    let now = unix_now();
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
            BaselineError::Query(q) => CliError {
                code: exit::INCONCLUSIVE,
                message: q.to_string(),
            },
            BaselineError::Write(..) | BaselineError::Read(..) => CliError {
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
pub fn export_rules(specs: &Path, baseline: Option<&Path>) -> Result<String, CliError> {
    let specs = Specs::load(specs).map_err(|e| bad(e.to_string()))?;
    let base = baseline
        .map(Baseline::load)
        .transpose()
        .map_err(|e| bad(e.to_string()))?;
    Ok(crate::rules::export(&specs, base.as_ref()))
}

/// Options of `run`.
pub struct RunOptions {
    pub prometheus: String,
    pub specs: PathBuf,
    pub baseline: Option<PathBuf>,
    pub state_dir: PathBuf,
    pub listen: String,
    pub alertmanager: Option<String>,
    pub settle: Duration,
    pub judge_window: Duration,
    pub step: Duration,
    pub interval: Duration,
    pub alpha: f64,
    pub max_transitions: Option<usize>,
    pub kube_server: Option<String>,
    pub probes: bool,
    pub grafana: Option<String>,
    pub grafana_token_file: Option<PathBuf>,
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
    if o.interval.is_zero() || o.step.is_zero() {
        return Err(bad("--interval and --step must be above zero"));
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
    let grafana = match (&o.grafana, &o.grafana_token_file) {
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
            o.interval,
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
        alertmanager: o.alertmanager,
        windows: Windows {
            settle: o.settle,
            judge: o.judge_window,
            step: o.step,
            alpha: o.alpha,
        },
        interval: o.interval,
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
