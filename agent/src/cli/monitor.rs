//! `upsoak-agent run`: checks the flags, binds the HTTP server, starts the probes and the SIGHUP
//! reloader, runs the [`crate::monitor`] loop until it stops, then stops every task within a
//! deadline. The exit code is the overall verdict, or a runtime failure when the agent itself
//! failed (a crash is not a regression).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use upsoak_common::cli::CliError;

use super::{Output, bad, bad_error, failed, maybe_path, non_empty, prometheus_token};
use crate::baseline::Baseline;
use crate::baseline::auto::AutoBaseline;
use crate::eval::JudgeSettings;
use crate::events::{AgentMetrics, ProbeMetrics};
use crate::exit;
use crate::grafana::Grafana;
use crate::http::Timeouts;
use crate::monitor::{MonitorConfig, Outputs, Reload};
use crate::prom::PromQuerier;
use crate::report;
use crate::spec::Specs;
use crate::time::SystemClock;
use crate::webhook::{Inbox, MAX_INBOX_BYTES, Webhook, WebhookAuth};
use upsoak_common::ops::Health;
use upsoak_common::server::Limits;
use upsoak_common::state::StateLock;

/// `--baseline auto`: the agent records its own ([`crate::baseline::auto`]).
const AUTO: &str = "auto";

/// How long the server, the probes and the SIGHUP reloader may take to stop.
const STOP_DEADLINE: Duration = Duration::from_secs(10);

/// The flags of `run`.
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Prometheus (or any Prometheus-compatible API) base URL.
    #[arg(long, env = "UPSOAK_PROMETHEUS")]
    pub prometheus: String,
    /// SLO specs.
    #[arg(long, default_value = "rules/slos.yaml")]
    pub specs: PathBuf,
    /// Baseline: a file from `baseline record`, or `auto`; without it (or empty) only
    /// objectives are judged.
    ///
    /// `auto`: the baseline is `<state-dir>/baseline.json`. If it exists at start it is loaded.
    /// Otherwise, when the sidecar's next transition starts, the agent records one from the
    /// steady period before it: the last `--judge-window` before the apply started, but no
    /// earlier than `--settle` after the previous apply finished (or went live) and `--settle`
    /// after the sidecar started. SLOs with too few samples there are left out and logged with
    /// why. The file is written atomically, and that transition and every later one are
    /// judged against it; transitions judged before it existed keep their objective-only
    /// verdicts. A transition whose steady period gives no baseline (no apply start exported,
    /// no steady time, no SLO with enough samples) is logged, and the next one is tried.
    #[arg(long, env = "UPSOAK_BASELINE")]
    pub baseline: Option<String>,
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
    #[arg(long, env = "UPSOAK_SETTLE", default_value = "2m", value_parser = humantime::parse_duration)]
    pub settle: Duration,
    /// Length of the judged window.
    #[arg(long, env = "UPSOAK_JUDGE_WINDOW", default_value = "5m", value_parser = humantime::parse_duration)]
    pub judge_window: Duration,
    /// After the first judged window, the steady period until the next transition is judged in
    /// consecutive chunks of this length, each a verdict row of the transition; `0s`: only
    /// the first window is judged.
    #[arg(long, env = "UPSOAK_STEADY_EVERY", default_value = "1h", value_parser = humantime::parse_duration)]
    pub steady_every: Duration,
    /// Query resolution of every group's judged window [default: each group's `interval`,
    /// the slot it is evaluated on].
    #[arg(long, env = "UPSOAK_STEP", value_parser = humantime::parse_duration)]
    pub step: Option<Duration>,
    /// Period of the active control-plane probes.
    #[arg(long, alias = "interval", env = "UPSOAK_PROBE_INTERVAL", default_value = "15s", value_parser = humantime::parse_duration)]
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
    /// The namespace Agones is installed in: the probes read its Deployments there.
    #[arg(long, env = "UPSOAK_AGONES_NAMESPACE", default_value = crate::probe::DEFAULT_NAMESPACE)]
    pub agones_namespace: String,
    /// The agent's own namespace (the deploy sets it from the downward API's
    /// `metadata.namespace`); when set, every alert sent to Alertmanager carries
    /// `namespace=<it>`, so an AlertmanagerConfig in that namespace (whose routes
    /// prometheus-operator restricts to `namespace="<it>"`) matches them. Empty: no label.
    #[arg(long, env = "UPSOAK_NAMESPACE")]
    pub namespace: Option<String>,
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
    /// File holding the bearer token Alertmanager's webhook must send (`http_config:
    /// authorization: {credentials_file: …}`); empty: none. Without this and
    /// --webhook-basic-auth-file, anyone who reaches the port can post alerts.
    #[arg(long, env = "UPSOAK_WEBHOOK_TOKEN_FILE", value_parser = maybe_path())]
    pub webhook_token_file: Option<PathBuf>,
    /// File holding `user:password` that Alertmanager's webhook must send as basic auth
    /// (`http_config: basic_auth: {username, password_file}`); empty: none.
    #[arg(long, env = "UPSOAK_WEBHOOK_BASIC_AUTH_FILE", value_parser = maybe_path())]
    pub webhook_basic_auth_file: Option<PathBuf>,
    /// Time to connect to Prometheus, Alertmanager or Grafana.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub connect_timeout: Duration,
    /// Time for a whole Prometheus query; one not answered by then fails (and is counted).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub query_timeout: Duration,
    /// Time for a whole request to Alertmanager or Grafana (sent beside the loop).
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub sink_timeout: Duration,
    /// Time for a request of the control-plane probes to the Kubernetes API.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub kube_timeout: Duration,
    /// /healthz fails after this many of the shortest group interval without Prometheus
    /// answering a query (and recovers with the next answer).
    #[arg(long, default_value_t = crate::monitor::DEFAULT_UNHEALTHY_AFTER)]
    pub unhealthy_after: u32,
    /// Time a client has to send a request's headers (and an idle connection to send its next).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub header_read_timeout: Duration,
    /// Time a client has to send a request's body.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub body_read_timeout: Duration,
    /// Connections served at once; more are answered 503 and closed.
    #[arg(long, default_value_t = 128)]
    pub max_connections: usize,
}

impl RunArgs {
    /// The outbound timeouts, checked.
    fn timeouts(&self) -> Result<(Timeouts, Timeouts), CliError> {
        for (flag, d) in [
            ("--connect-timeout", self.connect_timeout),
            ("--query-timeout", self.query_timeout),
            ("--sink-timeout", self.sink_timeout),
            ("--kube-timeout", self.kube_timeout),
        ] {
            if d.is_zero() {
                return Err(bad(format!("{flag} must be above zero")));
            }
        }
        if self.unhealthy_after == 0 {
            return Err(bad("--unhealthy-after must be at least 1"));
        }
        Ok((
            Timeouts {
                connect: self.connect_timeout,
                request: self.query_timeout,
            },
            Timeouts {
                connect: self.connect_timeout,
                request: self.sink_timeout,
            },
        ))
    }

    /// The HTTP server's limits, checked.
    fn limits(&self) -> Result<Limits, CliError> {
        let limits = Limits {
            header_read_timeout: self.header_read_timeout,
            body_read_timeout: self.body_read_timeout,
            // The webhook refuses bodies above its own (smaller) limit with its own counter.
            max_body_bytes: upsoak_common::server::DEFAULT_MAX_BODY_BYTES,
            max_connections: self.max_connections,
        };
        limits.check().map_err(|e| {
            bad(format!(
                "--header-read-timeout, --body-read-timeout, --max-connections: {e}"
            ))
        })?;
        Ok(limits)
    }
}

/// A long-lived task, before it is spawned (supervised).
type Task = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// A runtime failure: the agent itself failed, whatever the SLOs did.
fn runtime(message: String, e: impl std::error::Error + Send + Sync + 'static) -> CliError {
    CliError::runtime(message).with_source(e)
}

/// Asks for a reload of the specs on every SIGHUP, until `shutdown`.
fn reload_on_sighup(reload: Reload, shutdown: CancellationToken) -> Result<Task, CliError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = signal(SignalKind::hangup())
        .map_err(|e| runtime("cannot listen for SIGHUP".to_owned(), e))?;
    Ok(Box::pin(async move {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                got = hup.recv() => match got {
                    Some(()) => reload.request(),
                    None => return,
                },
            }
        }
    }))
}

/// Waits for a stopped task within `deadline`: a task that panicked or does not stop is a
/// runtime failure.
async fn stopped<T>(name: &str, task: JoinHandle<T>, deadline: Duration) -> Result<T, CliError> {
    match tokio::time::timeout(deadline, task).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(runtime(format!("the {name} task failed"), e)),
        Err(e) => Err(runtime(
            format!("the {name} task did not stop within {deadline:?}"),
            e,
        )),
    }
}

/// Longest duration any flag takes: a typo in a unit (`1y` for `1m`) is refused, not waited on.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);
/// Shortest period of the control-plane probes.
pub const MIN_PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// Every duration flag within its bounds, else the flag, its value and the bound: a steady
/// chunk (`--steady-every`, unless `0s`) at least `--judge-window` (which is itself long
/// enough for every group's `min_samples`, checked by [`judge_settings`]), `--probe-interval`
/// at least 1 s and `--step`, and each at most [`MAX_DURATION`].
pub fn check_durations(o: &RunArgs) -> Result<(), String> {
    let all = [
        ("--settle", o.settle),
        ("--judge-window", o.judge_window),
        ("--steady-every", o.steady_every),
        ("--step", o.step.unwrap_or_default()),
        ("--probe-interval", o.probe_interval),
        ("--connect-timeout", o.connect_timeout),
        ("--query-timeout", o.query_timeout),
        ("--sink-timeout", o.sink_timeout),
        ("--kube-timeout", o.kube_timeout),
        ("--header-read-timeout", o.header_read_timeout),
        ("--body-read-timeout", o.body_read_timeout),
    ];
    if let Some((flag, d)) = all.iter().find(|(_, d)| *d > MAX_DURATION) {
        return Err(format!(
            "{flag} {}s is longer than the longest duration taken, {}s (365 days)",
            d.as_secs(),
            MAX_DURATION.as_secs()
        ));
    }
    if !o.steady_every.is_zero() && o.steady_every < o.judge_window {
        return Err(format!(
            "--steady-every {} is shorter than --judge-window {}: each steady chunk is judged like a window, so it must be at least as long (or 0s: no chunks)",
            humantime::format_duration(o.steady_every),
            humantime::format_duration(o.judge_window)
        ));
    }
    let least = o.step.unwrap_or_default().max(MIN_PROBE_INTERVAL);
    if o.probe_interval < least {
        return Err(format!(
            "--probe-interval {} is shorter than {} (at least 1s, and at least --step)",
            humantime::format_duration(o.probe_interval),
            humantime::format_duration(least)
        ));
    }
    Ok(())
}

/// The checked judging settings, or why they cannot work.
fn judge_settings(o: &RunArgs, specs: &Specs) -> Result<JudgeSettings, CliError> {
    check_durations(o).map_err(bad)?;
    if !(o.alpha > 0.0 && o.alpha < 1.0) {
        return Err(bad(format!("--alpha: {} is not within (0, 1)", o.alpha)));
    }
    if o.probe_interval.is_zero() || o.step.is_some_and(|s| s.is_zero()) {
        return Err(bad("--probe-interval and --step must be above zero"));
    }
    let settings = JudgeSettings {
        settle: o.settle,
        judge: o.judge_window,
        step: o.step,
        alpha: o.alpha,
    };
    let short = crate::eval::too_few_samples(specs, &settings);
    if !short.is_empty() {
        return Err(bad(format!(
            "--judge-window {}s is too short for these SLOs (lengthen it, or lower their group's interval or min_samples):\n  {}",
            o.judge_window.as_secs(),
            short.join("\n  ")
        )));
    }
    Ok(settings)
}

/// Grafana from `--grafana` and its token file, else the recording of `--annotations-file`.
fn grafana(o: &RunArgs, timeouts: Timeouts) -> Result<Option<Grafana>, CliError> {
    match (
        non_empty(o.grafana.as_deref()),
        non_empty(o.grafana_token_file.as_deref()),
    ) {
        (Some(url), Some(file)) => {
            let token = std::fs::read_to_string(file).map_err(|e| {
                CliError::bad_input(format!(
                    "cannot read --grafana-token-file `{}`",
                    file.display()
                ))
                .with_source(e)
            })?;
            Ok(Some(Grafana::with_timeouts(url, token.trim(), timeouts)))
        }
        (Some(_), None) => Err(bad("--grafana needs --grafana-token-file")),
        (None, _) => Ok(o.annotations_file.as_deref().map(Grafana::recording)),
    }
}

/// `run`: serves /metrics and judges transitions until stopped; the overall verdict is the
/// exit code.
pub async fn monitor(o: RunArgs, shutdown: CancellationToken) -> Result<Output, CliError> {
    let specs = Specs::load(&o.specs).map_err(bad_error)?;
    let (baseline_file, auto_baseline) = match non_empty(o.baseline.as_deref()) {
        None => (None, None),
        Some(AUTO) => {
            let path = o.state_dir.join(crate::baseline::auto::FILE);
            match path.exists() {
                true => (Some(path), None),
                false => (None, Some(AutoBaseline::new(path))),
            }
        }
        Some(file) => (Some(PathBuf::from(file)), None),
    };
    let baseline = match &baseline_file {
        Some(p) => {
            let b = Baseline::load(p).map_err(bad_error)?;
            if b.spec_hash != specs.hash {
                crate::events::BaselineOfOtherSpecs { path: p }.emit();
            }
            Some(b)
        }
        None => None,
    };
    let alert_labels: BTreeMap<String, String> = non_empty(o.namespace.as_deref())
        .map(|ns| ("namespace".to_owned(), ns.to_owned()))
        .into_iter()
        .collect();
    if o.agones_namespace.is_empty() {
        return Err(bad("--agones-namespace must not be empty"));
    }
    let judge = judge_settings(&o, &specs)?;
    let (query_timeouts, sink_timeouts) = o.timeouts()?;
    let limits = o.limits()?;
    let token = prometheus_token(o.prometheus_token_file.as_deref())?;
    let q = PromQuerier::with_timeouts(&o.prometheus, token.as_deref(), query_timeouts)
        .map_err(bad_error)?;
    let grafana = grafana(&o, sink_timeouts)?;
    let auth = WebhookAuth::from_files(
        non_empty(o.webhook_token_file.as_deref()),
        non_empty(o.webhook_basic_auth_file.as_deref()),
    )
    .map_err(bad_error)?;
    std::fs::create_dir_all(&o.state_dir).map_err(|e| {
        runtime(
            format!("cannot create --state-dir `{}`", o.state_dir.display()),
            e,
        )
    })?;
    // One agent per state directory: a second one would tear the history (held until exit).
    let lock = StateLock::acquire(&o.state_dir).map_err(|e| match e {
        upsoak_common::state::LockError::Held { .. } => bad_error(e),
        upsoak_common::state::LockError::Io(..) => runtime("cannot lock --state-dir".to_owned(), e),
    })?;
    for stale in lock.stale_removed() {
        tracing::info!(path = %stale.display(), "removed the temporary file of a killed agent");
    }
    // A state file that cannot be read is bad input (exit 2, naming the file), the history as
    // the inbox, as `report` says of it; read here, before anything runs. A history an older
    // agent wrote with whole alert summaries is written back bounded at once, so neither the
    // loop nor `GET /report` reads the unbounded file again.
    let (history, clipped) =
        crate::history::History::load_bounded(&o.state_dir).map_err(bad_error)?;
    if clipped > 0 {
        history
            .save(&o.state_dir)
            .map_err(|e| runtime("cannot write the bounded history".to_owned(), e))?;
        tracing::info!(
            verdicts = clipped,
            "history: webhook alert verdicts clipped to their bounds"
        );
    }
    drop(history);
    let inbox = Inbox::open(&o.state_dir, MAX_INBOX_BYTES).map_err(bad_error)?;
    let kube = match o.probes {
        true => Some(
            crate::probe::client(o.kube_server.as_deref(), o.kube_timeout)
                .await
                .map_err(bad_error)?,
        ),
        false => None,
    };
    // Every input is checked before the agent listens: bad input runs nothing.
    let listener = tokio::net::TcpListener::bind(&o.listen)
        .await
        .map_err(|e| runtime(format!("cannot listen on `{}`", o.listen), e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| runtime(format!("no local address for `{}`", o.listen), e))?;
    println!("listening on http://{addr}");
    if let (None, Some(p)) = (non_empty(o.grafana.as_deref()), &o.annotations_file) {
        println!("no --grafana: annotations are recorded in {}", p.display());
    }
    let metrics = AgentMetrics::default();
    let mut registry = prometheus_client::registry::Registry::default();
    metrics.register(&mut registry);
    match (&baseline, &baseline_file, &auto_baseline) {
        (Some(b), Some(path), _) => {
            crate::events::BaselineLoaded { path, baseline: b }.emit(&metrics)
        }
        (_, _, Some(a)) => println!(
            "--baseline auto: no {} yet; it is recorded before the next transition's apply",
            a.path.display()
        ),
        _ => {}
    }
    let ready = Health::new();
    // Every task is supervised: one that ends early (or panics) is logged, counted, fails
    // /healthz and stops the agent, which then exits with the runtime-failure code.
    let supervise = |name: &'static str, task: Task| {
        let m = metrics.clone();
        upsoak_common::tasks::supervise(name, task, ready.clone(), shutdown.clone(), move |t, r| {
            crate::events::TaskDied { task: t, reason: r }.emit(&m)
        })
    };
    let mut tasks: Vec<(&str, JoinHandle<upsoak_common::tasks::Ended>)> = Vec::new();
    if let Some(client) = kube {
        let probe_metrics = ProbeMetrics::default();
        probe_metrics.register(&mut registry);
        tasks.push((
            "probe",
            supervise(
                "probe",
                Box::pin(crate::probe::run(
                    client,
                    o.agones_namespace.clone(),
                    o.probe_interval,
                    probe_metrics,
                    shutdown.clone(),
                )),
            ),
        ));
    }
    registry.register_collector(Box::new(upsoak_common::process::ProcessCollector));
    crate::events::WebhookAuthConfigured {
        enabled: auth.is_some(),
    }
    .emit(&metrics);
    if let Some(path) = inbox.file() {
        crate::events::InboxRestored {
            path,
            alerts: inbox.alerts().len(),
        }
        .emit(&metrics);
    }
    let webhook = Webhook {
        inbox: inbox.clone(),
        auth: auth.map(std::sync::Arc::new),
        metrics: metrics.clone(),
    };
    let mut server = tokio::spawn(crate::server::serve(
        listener,
        registry,
        webhook,
        ready.clone(),
        o.state_dir.clone(),
        limits,
        shutdown.clone(),
    ));
    let reload = Reload::new(&o.specs);
    tasks.push((
        "SIGHUP",
        supervise(
            "SIGHUP",
            reload_on_sighup(reload.clone(), shutdown.clone())?,
        ),
    ));
    let (grafana, annotations) = match grafana {
        Some(g) => {
            let (g, d) = g.beside_the_loop(&metrics, ready.clone());
            (Some(g), d)
        }
        None => (None, None),
    };
    let cfg = MonitorConfig {
        specs,
        baseline,
        state_dir: o.state_dir.clone(),
        alertmanager: non_empty(o.alertmanager),
        judge,
        max_judged: o.max_transitions,
        grafana,
        inbox,
        reload: Some(reload),
        alert_timeouts: sink_timeouts,
        unhealthy_after: o.unhealthy_after,
        steady_every: (!o.steady_every.is_zero()).then_some(o.steady_every),
        auto_baseline,
        alert_labels,
    };
    let outputs = Outputs {
        metrics: &metrics,
        ready: &ready,
    };
    // A server that stops before the loop does is a failure of the agent: the loop stops too.
    let finished = tokio::select! {
        h = crate::monitor::run(cfg, &q, &SystemClock, outputs, &shutdown) => Ok(h),
        s = &mut server => Err(s),
    };
    shutdown.cancel();
    let history = match finished {
        Ok(h) => {
            stopped("HTTP server", server, STOP_DEADLINE)
                .await?
                .map_err(|e| runtime("the HTTP server failed".to_owned(), e))?;
            h
        }
        Err(joined) => {
            let e = match joined {
                Ok(Ok(())) => std::io::Error::other("it stopped before the loop"),
                Ok(Err(e)) => e,
                Err(e) => return Err(runtime("the HTTP server task failed".to_owned(), e)),
            };
            return Err(runtime("the HTTP server failed".to_owned(), e));
        }
    };
    if let Some(d) = annotations {
        d.close(STOP_DEADLINE).await;
    }
    for (name, task) in tasks {
        stopped(name, task, STOP_DEADLINE)
            .await?
            .map_err(|reason| CliError::runtime(format!("the {name} task died: {reason}")))?;
    }
    let history = history.map_err(|e| failed(exit::RUNTIME_FAILURE, e))?;
    Ok(Output {
        text: report::text(&history),
        code: report::exit_code(history.overall()),
    })
}
