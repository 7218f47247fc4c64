//! The `upsoak-chaos` command line: its arguments (the doc comments are the help), the
//! subcommands `validate`, `plan` and `run`, and the exit codes.

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand, ValueEnum};

use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

use crate::apply::{Applier, HelmApplier, SimApplier};
use crate::producer::{self, metrics::ProducerMetrics};
use crate::runner::{self, RunOptions, Schedule, WandererMetrics};
use crate::sidecar::{self, ApplierConfig, Readiness, SidecarConfig};
use crate::space::{Space, Stage, State};
use crate::walk::{Strategy, Walk};

/// The upsoak sidecar: the Wanderer (a seeded walk over valid Agones configurations) and the
/// Producer (open-model load: Fleet scaling, allocations, game sessions).
///
/// Exit codes: 0 success, 1 runtime failure, 2 bad input (file, flag or configuration).
#[derive(Debug, Parser)]
#[command(version)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Checks a configuration space file: every problem with its path (exit 2), or a summary
    /// (versions, gates, tunables, constraints, valid states, reachable pairs; exit 0).
    ///
    /// A space file has `versions` (oldest first: `version`, `kubernetes: {min, max}`,
    /// `gates: {Name: Alpha|Beta|Stable}`), `hops: {max_up, max_down, allow_downgrade}`,
    /// `tunables` (`name: {min, max}` or `name: {values: [...]}`) and `constraints`.
    ///
    /// A constraint is `IF expr THEN expr` or `expr`. In `expr`, NOT binds tighter than AND,
    /// AND tighter than OR, `( … )` groups; the atoms are `gate:NAME` (the gate is on),
    /// `version OP 1.59` and `tunable:NAME OP VALUE`, with OP one of == != < <= > >= (an enum
    /// tunable takes == and != only). Example:
    /// `IF gate:ProcessorAllocator THEN tunable:allocationBatchWaitTime <= 500`.
    ///
    /// Exit codes: 0 valid, 2 invalid or unreadable.
    Validate {
        /// The configuration space (YAML).
        file: PathBuf,
    },
    /// Prints the walk a seed gives (step, version, what changed) and the pairwise coverage it
    /// reaches, without applying anything. The same space and seed always give the same walk.
    ///
    /// Exit codes: 0 printed, 2 bad space or flag.
    Plan {
        /// The configuration space (YAML).
        #[arg(long, env = "UPSOAK_SPACE")]
        space: PathBuf,
        /// The walk's seed.
        #[arg(long, env = "UPSOAK_SEED")]
        seed: u64,
        /// Transitions to plan.
        #[arg(long, default_value_t = 20)]
        steps: u64,
        /// Start from this version's defaults (Stable and Beta gates on, Alpha off, tunables
        /// at their first value) instead of the oldest version's.
        #[arg(long, value_name = "VERSION")]
        from: Option<String>,
        /// How each next state is chosen.
        #[arg(long, value_enum, default_value_t = Strategy::Coverage, env = "UPSOAK_STRATEGY")]
        strategy: Strategy,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Runs the sidecar: /metrics, /healthz, /readyz on `listen`, the Wanderer and the Producer.
    ///
    /// Exit codes: 0 stopped by a signal or after `max_steps`, 1 runtime failure, 2 bad
    /// configuration.
    Run {
        /// YAML configuration; `UPSOAK_SECTION__KEY=value` overrides a key.
        #[arg(long, env = "UPSOAK_CONFIG")]
        config: PathBuf,
    },
}

/// `plan`'s output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One line per step, then the coverage.
    Text,
    /// One JSON document: seed, strategy, steps (version, gates, tunables, changes), coverage.
    Json,
}

impl Args {
    /// Runs the subcommand; its output, or the error and the exit code it means.
    pub async fn run(self) -> Result<String, CliError> {
        match self.command {
            Command::Validate { file } => validate(&file),
            Command::Plan {
                space,
                seed,
                steps,
                from,
                strategy,
                format,
            } => plan(
                &space,
                seed,
                steps,
                from.as_deref(),
                strategy,
                format == Format::Json,
            ),
            Command::Run { config } => run(&config, upsoak_common::shutdown::on_signal())
                .await
                .map(|()| String::new()),
        }
    }
}

/// Success.
pub const EXIT_OK: u8 = 0;
/// A runtime failure (cannot bind, cannot observe, journal I/O).
pub const EXIT_FAILURE: u8 = 1;
/// Bad input: an invalid file, flag or configuration.
pub const EXIT_BAD_INPUT: u8 = 2;

/// An error with the exit code it means.
#[derive(Debug)]
pub struct CliError {
    pub code: u8,
    pub message: String,
}

impl CliError {
    fn bad(message: impl Into<String>) -> CliError {
        CliError {
            code: EXIT_BAD_INPUT,
            message: message.into(),
        }
    }
    fn failed(message: impl Into<String>) -> CliError {
        CliError {
            code: EXIT_FAILURE,
            message: message.into(),
        }
    }
}

fn load_space(path: &Path) -> Result<Space, CliError> {
    Space::load(path).map_err(|e| CliError::bad(e.to_string()))
}

/// `validate FILE`: every problem, or a summary of the space.
pub fn validate(path: &Path) -> Result<String, CliError> {
    let space = load_space(path)?;
    let mut out = format!(
        "{}: valid configuration space ({})\n",
        path.display(),
        space.hash
    );
    out.push_str(&format!(
        "hops: up to {} minor up, {} down, downgrades {}\n",
        space.hops.max_up,
        space.hops.max_down,
        if space.hops.allow_downgrade {
            "allowed"
        } else {
            "forbidden"
        }
    ));
    for v in &space.versions {
        let count = |st: Stage| v.gates.values().filter(|s| **s == st).count();
        out.push_str(&format!(
            "  {:<8} gates: {} Stable, {} Beta, {} Alpha; Kubernetes {}\n",
            v.name,
            count(Stage::Stable),
            count(Stage::Beta),
            count(Stage::Alpha),
            v.kubernetes
                .as_ref()
                .map(|k| format!("{}–{}", k.min, k.max))
                .unwrap_or_else(|| "unspecified".into())
        ));
    }
    for (t, spec) in &space.tunables {
        out.push_str(&format!(
            "  tunable {t}: {}\n",
            serde_json::to_string(spec).unwrap_or_default()
        ));
    }
    for (c, _) in &space.constraints {
        out.push_str(&format!("  constraint: {c}\n"));
    }
    match space.census() {
        Some(c) => out.push_str(&format!("  valid states: {}\n", c.states)),
        None => out.push_str("  valid states: not counted (more than a census tries)\n"),
    }
    let walk = Walk::new(space, 0, Strategy::Coverage);
    for (kind, _, total) in walk.coverage().counts() {
        out.push_str(&format!("  reachable {kind}: {total}\n"));
    }
    Ok(out)
}

/// What `from → to` changes: `1.55.0 → 1.57.0`, `+Gate`, `-Gate`, `tunable=value`.
fn changes(space: &Space, from: &State, to: &State) -> Vec<String> {
    let mut parts = Vec::new();
    if from.version != to.version {
        parts.push(format!(
            "{} → {}",
            space.versions[from.version].name, space.versions[to.version].name
        ));
    }
    for (g, on) in &to.gates {
        if from.gates.get(g) != Some(on)
            && space.versions[to.version].gates.get(g) != Some(&Stage::Stable)
        {
            parts.push(format!("{}{g}", if *on { "+" } else { "-" }));
        }
    }
    for (t, v) in &to.tunables {
        if from.tunables.get(t) != Some(v) {
            parts.push(format!(
                "{t}={}",
                match v {
                    crate::space::Value::Int(i) => i.to_string(),
                    crate::space::Value::Str(s) => s.clone(),
                }
            ));
        }
    }
    parts
}

/// `plan`: the walk, printed without applying it.
pub fn plan(
    space_path: &Path,
    seed: u64,
    steps: u64,
    from: Option<&str>,
    strategy: Strategy,
    json: bool,
) -> Result<String, CliError> {
    let space = load_space(space_path)?;
    let start = match from {
        None => space.start(),
        Some(name) => {
            let Some(v) = space.versions.iter().position(|v| v.name == name) else {
                let names: Vec<&str> = space.versions.iter().map(|v| v.name.as_str()).collect();
                return Err(CliError::bad(format!(
                    "--from: `{name}` is not a version of the space ({})",
                    names.join(", ")
                )));
            };
            let s = space.defaults(v);
            if let Some(why) = space.why_invalid(&s) {
                return Err(CliError::bad(format!(
                    "--from: the defaults of `{name}` are not a valid state: {why}"
                )));
            }
            Some(s)
        }
    };
    let mut walk = Walk::new(space.clone(), seed, strategy);
    let states = match start {
        Some(s) => walk.plan_from(s, steps),
        None => Vec::new(),
    };
    let mut out = String::new();
    if json {
        let rows: Vec<serde_json::Value> = states
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let install = space.install(s);
                let changed = match i {
                    0 => Vec::new(),
                    _ => changes(&space, &states[i - 1], s),
                };
                serde_json::json!({"step": i, "version": install.version, "featureGates": install.gate_query(), "tunables": install.tunables, "changes": changed})
            })
            .collect();
        let coverage: serde_json::Map<String, serde_json::Value> = walk
            .coverage()
            .ratios()
            .into_iter()
            .map(|(k, r)| (k.to_owned(), serde_json::Value::from(r)))
            .collect();
        out = serde_json::to_string_pretty(&serde_json::json!({"seed": seed, "strategy": strategy.as_str(), "steps": rows, "coverage": coverage}))
            .unwrap_or_default();
        out.push('\n');
        return Ok(out);
    }
    out.push_str(&format!(
        "# seed {seed}, strategy {}, space {}\n",
        strategy.as_str(),
        space.hash
    ));
    for (i, s) in states.iter().enumerate() {
        let change = match i {
            0 => "start".to_owned(),
            _ => changes(&space, &states[i - 1], s).join(" "),
        };
        out.push_str(&format!(
            "{i:>4}  {:<8} {change}\n",
            space.versions[s.version].name
        ));
    }
    for (kind, covered, total) in walk.coverage().counts() {
        out.push_str(&format!("coverage {kind}: {covered}/{total}\n"));
    }
    Ok(out)
}

/// `run --config FILE`: the sidecar until SIGINT/SIGTERM (or the Wanderer's `max_steps`).
pub async fn run(config: &Path, shutdown: CancellationToken) -> Result<(), CliError> {
    let cfg = SidecarConfig::load(config)
        .map_err(|p| CliError::bad(format!("invalid configuration:\n  {}", p.join("\n  "))))?;
    let space = load_space(&cfg.wanderer.space)?;
    let strategy = Strategy::parse(&cfg.wanderer.strategy)
        .ok_or_else(|| CliError::bad(format!("wanderer.strategy: `{}`", cfg.wanderer.strategy)))?;
    std::fs::create_dir_all(&cfg.state_dir).map_err(|e| {
        CliError::failed(format!(
            "cannot create the state directory `{}`: {e}",
            cfg.state_dir.display()
        ))
    })?;
    let listener = tokio::net::TcpListener::bind(&cfg.listen)
        .await
        .map_err(|e| CliError::failed(format!("cannot listen on `{}`: {e}", cfg.listen)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| CliError::failed(e.to_string()))?;
    println!("listening on http://{addr}");

    let mut registry = Registry::default();
    let wmetrics = WandererMetrics::default();
    wmetrics.register(&mut registry);
    let pmetrics = ProducerMetrics::default();
    pmetrics.register(&mut registry);
    registry.register_collector(Box::new(upsoak_common::process::ProcessCollector));
    let ready = Readiness::default();
    let server = tokio::spawn(sidecar::serve(
        listener,
        registry,
        ready.clone(),
        shutdown.clone(),
    ));

    let producer_task = if cfg.producer.allocation_rate > 0.0
        || cfg
            .producer
            .fleets
            .iter()
            .any(|f| !f.scale_every_max.is_zero())
    {
        let client = producer::client(cfg.kube_server.as_deref())
            .await
            .map_err(|e| CliError::bad(format!("kube client: {e}")))?;
        Some(tokio::spawn(producer::run(
            client,
            cfg.producer.clone(),
            pmetrics,
            shutdown.clone(),
        )))
    } else {
        None
    };

    let result = if cfg.wanderer.enabled {
        let period = cfg.wanderer.schedule.period().map_err(CliError::bad)?;
        let opts = RunOptions {
            schedule: Schedule {
                period,
                jitter: cfg.wanderer.schedule.jitter,
            },
            max_steps: cfg.wanderer.max_steps,
            apply_timeout: cfg.wanderer.apply_timeout,
        };
        let journal = cfg.state_dir.join("journal.jsonl");
        let mut walk = Walk::new(space, cfg.wanderer.seed, strategy);
        tracing::info!(seed = cfg.wanderer.seed, strategy = strategy.as_str(), period_s = period.as_secs_f64(), journal = %journal.display(), "wanderer starting");
        ready.set();
        match &cfg.wanderer.applier {
            ApplierConfig::Sim { url } => {
                let a = SimApplier::new(url, cfg.wanderer.apply_timeout);
                run_wanderer(&journal, &a, &mut walk, &opts, &wmetrics, &shutdown).await
            }
            ApplierConfig::Helm {
                helm,
                release,
                chart,
                namespace,
                timeout,
                values,
            } => {
                let a = HelmApplier {
                    helm: helm.clone(),
                    release: release.clone(),
                    chart: chart.clone(),
                    namespace: namespace.clone(),
                    timeout: *timeout,
                    values_dir: cfg.state_dir.clone(),
                    extra_values: values.clone(),
                };
                run_wanderer(&journal, &a, &mut walk, &opts, &wmetrics, &shutdown).await
            }
        }
    } else {
        ready.set();
        shutdown.cancelled().await;
        Ok(())
    };
    // The walk ended (max_steps) or a signal came: stop the rest and wait for it.
    shutdown.cancel();
    if let Some(t) = producer_task {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(30), t).await;
    }
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), server).await;
    result
}

async fn run_wanderer<A: Applier>(
    journal: &Path,
    applier: &A,
    walk: &mut Walk,
    opts: &RunOptions,
    metrics: &WandererMetrics,
    shutdown: &CancellationToken,
) -> Result<(), CliError> {
    match runner::run(journal, applier, walk, opts, metrics, shutdown).await {
        Ok(steps) => {
            tracing::info!(steps, "wanderer stopped");
            Ok(())
        }
        Err(e @ runner::RunError::OtherWalk { .. }) => Err(CliError::bad(e.to_string())),
        Err(e) => Err(CliError::failed(format!(
            "{e}: {}",
            std::error::Error::source(&e)
                .map(|s| s.to_string())
                .unwrap_or_default()
        ))),
    }
}
