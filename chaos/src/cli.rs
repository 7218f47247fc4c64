//! The `upsoak-chaos` command line: its arguments (the doc comments are the help) and the
//! dispatch of `validate`, `plan` and `run` to the modules that do them.

use std::io::Write;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::config::SidecarConfig;
use crate::error::{Error, Result};
use crate::plan;
use crate::sidecar::Sidecar;
use crate::wanderer::walk::Strategy;

pub use crate::error::{EXIT_BAD_INPUT, EXIT_FAILURE, EXIT_OK};

/// The upsoak sidecar: the Wanderer (a seeded walk over valid Agones configurations) and the
/// Producer (open-model load: Fleet scaling, allocations, game sessions).
///
/// Exit codes: 0 success, 2 bad input (file, flag or configuration), 4 runtime failure (a crash
/// or an unreachable dependency, not a verdict on Agones).
#[derive(Debug, Parser)]
#[command(version)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub log: upsoak_common::telemetry::LogArgs,
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
    /// Checks, before a soak, what it needs, and prints each check as PASS, WARN, FAIL or SKIP
    /// with a hint: `helm` (found, its version; with the helm applier), `release` (installed,
    /// settled, its version in the space), `kubernetes` (`/version` in the range of at least
    /// two releases), `permissions` (SelfSubjectAccessReview of each the Producer and Wanderer
    /// use), `fleets` (the Producer's exist with Ready servers), `capacity` (each Fleet's
    /// replicas hold what the load needs: canaries + rate × (mean session + replace_time) ×
    /// headroom), `allocation` (one server allocated answers GAMESERVER and is released after
    /// EXIT).
    ///
    /// Exit codes: 0 no check failed (a WARN does not), 1 some failed (named on stderr), 2 bad
    /// configuration (a Fleet whose `min_replicas` cannot hold the load included).
    Preflight {
        /// YAML configuration, as for `run`.
        #[arg(long, env = "UPSOAK_CONFIG")]
        config: PathBuf,
        /// Longest each check may take.
        #[arg(long, default_value = "30s", value_parser = humantime_serde::re::humantime::parse_duration)]
        timeout: std::time::Duration,
    },
    /// Runs the sidecar: /metrics, /healthz, /readyz on `listen`, the Wanderer and the Producer.
    ///
    /// Refuses to start (exit 2) when a Fleet's `min_replicas` cannot hold the load, naming the
    /// numbers (`producer.capacity`).
    ///
    /// Exit codes: 0 stopped by a signal or after `max_steps`, 2 bad configuration, 4 runtime
    /// failure (cannot listen or observe, journal I/O, a task crashed).
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
    /// Runs the subcommand, writing its output to `out`.
    pub async fn run(self, out: &mut dyn Write) -> Result<()> {
        match self.command {
            Command::Validate { file } => emit(out, &plan::validate(&file)?),
            Command::Plan {
                space,
                seed,
                steps,
                from,
                strategy,
                format,
            } => emit(
                out,
                &plan::plan(
                    &space,
                    seed,
                    steps,
                    from.as_deref(),
                    strategy,
                    format == Format::Json,
                )?,
            ),
            Command::Preflight { config, timeout } => {
                let cfg = SidecarConfig::load(&config)?;
                let report = crate::preflight::run(&cfg, timeout).await?;
                emit(out, &report.render())?;
                crate::preflight::verdict(&report)
            }
            Command::Run { config } => {
                let cfg = SidecarConfig::load(&config)?;
                let sidecar = Sidecar::start(cfg, upsoak_common::shutdown::on_signal()).await?;
                // The first line: tests and the e2e harness read the bound address from it.
                emit(out, &format!("listening on http://{}\n", sidecar.addr()))?;
                sidecar.run().await
            }
        }
    }
}

fn emit(out: &mut dyn Write, text: &str) -> Result<()> {
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(Error::Output)
}
