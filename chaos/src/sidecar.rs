//! The sidecar process: [`Sidecar::start`] composes it from its configuration (the metrics
//! server, the Producer, the Wanderer with its applier), [`Sidecar::run`] runs it until a signal
//! or the Wanderer's `max_steps`, then stops every task and checks how each ended.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::registry::Registry;
use tokio::task::{JoinError, JoinHandle};
use tokio_util::sync::CancellationToken;
use upsoak_common::ops::{self, Health, Heartbeat};

use crate::config::{ApplierConfig, SidecarConfig};
use crate::error::{Error, Result};
use crate::producer::{self, events::ProducerMetrics};
use crate::wanderer::apply::{Applier, HelmApplier, ReuseValues, SimApplier};
use crate::wanderer::cluster::Guarded;
use crate::wanderer::events::{
    ClusterVersionChecked, JournalWriteFailed, WandererHalted, WandererMetrics,
};
use crate::wanderer::journal::JournalError;
use crate::wanderer::space::Space;
use crate::wanderer::walk::Walk;
use crate::wanderer::{self, RunError, RunOptions, Schedule};
use upsoak_common::server::{Limits, ServerMetrics};
use upsoak_common::state::StateLock;

/// How long the Producer may take to stop (allocations time out, sessions send EXIT).
const PRODUCER_STOP: Duration = Duration::from_secs(30);
/// After an apply, how long the Agones Deployments may take to run the new release, ready.
const ROLLOUT_WAIT: Duration = Duration::from_secs(60);
/// Where the simulator serves the Agones Deployments (its applier names no namespace).
const SIM_AGONES_NS: &str = "agones-system";
/// How long the metrics server may take to stop.
const SERVER_STOP: Duration = Duration::from_secs(5);
/// Connections the metrics server serves at once (Prometheus, probes, a few people).
const MAX_CONNECTIONS: usize = 64;
/// Longest wait before the walk is retried after the journal could not be written.
const JOURNAL_RETRY_MAX: Duration = Duration::from_secs(60);

/// A started sidecar: listening, serving `/metrics`, the Producer running; the Wanderer starts
/// in [`Sidecar::run`].
pub struct Sidecar {
    cfg: SidecarConfig,
    space: Space,
    addr: SocketAddr,
    ready: Health,
    wanderer_metrics: WandererMetrics,
    server: JoinHandle<std::io::Result<()>>,
    producer: Option<JoinHandle<std::result::Result<(), JoinError>>>,
    shutdown: CancellationToken,
    /// One sidecar per state directory, held until the process ends.
    _lock: StateLock,
}

impl Sidecar {
    /// Loads the space, creates the state directory, binds `listen`, registers every metric,
    /// and starts the metrics server and the Producer. Not ready until the Wanderer has
    /// observed what is installed.
    pub async fn start(cfg: SidecarConfig, shutdown: CancellationToken) -> Result<Sidecar> {
        let space = Space::load(&cfg.wanderer.space)?;
        std::fs::create_dir_all(&cfg.state_dir)
            .map_err(|e| Error::StateDir(cfg.state_dir.clone(), e))?;
        // A second sidecar on this directory would interleave the journal and run helm at the
        // same time: it exits 2 naming this one's pid.
        let lock = StateLock::acquire(&cfg.state_dir)?;
        let listener = tokio::net::TcpListener::bind(&cfg.listen)
            .await
            .map_err(|e| Error::Listen(cfg.listen.clone(), e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::Listen(cfg.listen.clone(), e))?;

        let mut registry = Registry::default();
        let wanderer_metrics = WandererMetrics::default();
        wanderer_metrics.register(&mut registry);
        let producer_metrics = ProducerMetrics::default();
        producer_metrics.register(&mut registry);
        registry.register_collector(Box::new(upsoak_common::process::ProcessCollector));
        let server_metrics = ServerMetrics::new("sidecar");
        server_metrics.register(&mut registry, "upsoak_sidecar");
        let ready = Health::new();

        if cfg.producer.capacity.on_short == producer::OnShort::Warn {
            for (n, why) in producer::capacity::short_fleets(&cfg.producer) {
                producer::events::CapacityShort {
                    fleet: &n.fleet,
                    min_replicas: cfg.producer.fleets[n.index].min_replicas,
                    need: n.need,
                    why: &why,
                }
                .emit();
            }
        }
        let canaries = cfg.producer.canaries.count > 0 && !cfg.producer.fleets.is_empty();
        let producing = canaries
            || cfg.producer.allocation_rate > 0.0
            || cfg
                .producer
                .fleets
                .iter()
                .any(|f| !f.scale_every_max.is_zero());
        let producer = if producing {
            let client =
                producer::client_with_timeout(cfg.kube_server.as_deref(), cfg.kube_timeout).await?;
            let wanderer = wanderer_metrics.clone();
            let generation: producer::Generation = Arc::new(move || wanderer.generation());
            Some(tokio::spawn(producer::run_with(
                client,
                cfg.producer.clone(),
                producer_metrics,
                Some(generation),
                shutdown.clone(),
            )))
        } else {
            None
        };
        let app = ops::router(registry, ready.clone());
        let limits = Limits {
            max_connections: MAX_CONNECTIONS,
            ..Limits::default()
        };
        let server = tokio::spawn(upsoak_common::server::serve(
            listener,
            app,
            limits,
            server_metrics,
            shutdown.clone(),
        ));
        Ok(Sidecar {
            cfg,
            space,
            addr,
            ready,
            wanderer_metrics,
            server,
            producer,
            shutdown,
            _lock: lock,
        })
    }

    /// Where `/metrics`, `/healthz` and `/readyz` are served.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Runs the Wanderer until the shutdown token or `max_steps` (without a Wanderer, until the
    /// token); then stops the Producer and the server and checks how each ended: a panic or a
    /// serve error is an error, not a clean exit. A server that fails early stops the rest.
    pub async fn run(self) -> Result<()> {
        let Sidecar {
            cfg,
            space,
            ready,
            wanderer_metrics,
            mut server,
            producer,
            shutdown,
            ..
        } = self;
        let mut server_ended = None;
        let producing = producer.is_some();
        let walked = {
            let walking = async {
                let walked = walk_retrying(&cfg, space, &ready, &wanderer_metrics, &shutdown).await;
                match walked {
                    // An applier failure (helm unusable, a release left stuck) stops the walk,
                    // never the load: the Producer goes on until the signal, and the error is
                    // the exit status then.
                    Err(Error::Wanderer(
                        ref e @ (RunError::Observe(_) | RunError::Halted { .. }),
                    )) if producing && !shutdown.is_cancelled() => {
                        WandererHalted {
                            reason: &error_chain(e),
                        }
                        .emit(&wanderer_metrics);
                        ready.mark_ready();
                        shutdown.cancelled().await;
                        walked
                    }
                    other => other,
                }
            };
            tokio::pin!(walking);
            tokio::select! {
                r = &mut walking => r,
                r = &mut server => {
                    // On a signal the server may stop first; on a serve error it must stop the
                    // rest, or the sidecar would soak blind. Either way the transition in
                    // flight is finished and journalled.
                    shutdown.cancel();
                    server_ended = Some(r);
                    walking.await
                }
            }
        };
        // The walk ended (max_steps) or a signal came: stop the rest and wait for it.
        shutdown.cancel();
        let produced = match producer {
            None => Ok(()),
            Some(task) => match tokio::time::timeout(PRODUCER_STOP, task).await {
                Err(_) => Err(Error::Stuck("producer", PRODUCER_STOP)),
                Ok(Err(e)) | Ok(Ok(Err(e))) => Err(Error::Task("producer", e)),
                Ok(Ok(Ok(()))) => Ok(()),
            },
        };
        let served = match server_ended {
            Some(r) => server_result(r),
            None => match tokio::time::timeout(SERVER_STOP, server).await {
                Err(_) => Err(Error::Stuck("metrics server", SERVER_STOP)),
                Ok(r) => server_result(r),
            },
        };
        walked.and(produced).and(served)
    }
}

fn server_result(r: std::result::Result<std::io::Result<()>, JoinError>) -> Result<()> {
    match r {
        Err(e) => Err(Error::Task("metrics server", e)),
        Ok(Err(e)) => Err(Error::Serve(e)),
        Ok(Ok(())) => Ok(()),
    }
}

/// The Wanderer, retried after journal failures ([`walk_attempts`]), under its progress
/// watchdog.
async fn walk_retrying(
    cfg: &SidecarConfig,
    space: Space,
    ready: &Health,
    metrics: &WandererMetrics,
    shutdown: &CancellationToken,
) -> Result<()> {
    let progress = wanderer_watchdog(cfg, ready);
    let walked = walk_attempts(cfg, space, ready, metrics, shutdown, progress.as_ref()).await;
    // A walk that ended (max_steps, a halt, a signal) has no progress left to show.
    if let Some(p) = &progress {
        p.set_max_age(Duration::MAX);
    }
    walked
}

/// One watchdog for every attempt of an enabled Wanderer (M3), its limit the longest a healthy
/// step can stay quiet.
fn wanderer_watchdog(cfg: &SidecarConfig, ready: &Health) -> Option<Heartbeat> {
    let w = &cfg.wanderer;
    let stuck_wait = match &w.applier {
        ApplierConfig::Helm { stuck_wait, .. } => *stuck_wait,
        ApplierConfig::Sim { .. } => Duration::ZERO,
    };
    w.enabled.then(|| {
        ready.watchdog(
            "the Wanderer",
            wanderer::longest_quiet(w.apply_timeout, ROLLOUT_WAIT, stuck_wait),
        )
    })
}

/// [`walk`], started again from the journal after a failed journal write (a full disk), with
/// backoff (1 s doubling to a minute), counted and shown on `/healthz`, while the Producer goes
/// on; the warning clears once the walk has observed again.
async fn walk_attempts(
    cfg: &SidecarConfig,
    space: Space,
    ready: &Health,
    metrics: &WandererMetrics,
    shutdown: &CancellationToken,
    progress: Option<&Heartbeat>,
) -> Result<()> {
    let mut failures = 0u32;
    loop {
        let walked = walk(cfg, space.clone(), ready, metrics, shutdown, progress).await;
        let e = match walked {
            Err(Error::Wanderer(RunError::Journal(e @ JournalError::Io(..))))
                if !shutdown.is_cancelled() =>
            {
                e
            }
            other => return other,
        };
        failures += 1;
        let retry_in = Duration::from_secs(1u64 << (failures - 1).min(6)).min(JOURNAL_RETRY_MAX);
        let error = error_chain(&e);
        JournalWriteFailed {
            error: &error,
            failures,
            retry_in,
        }
        .emit(metrics);
        ready.warn(
            "journal",
            Some(format!(
                "the Wanderer cannot write its journal ({failures} failures, retrying in {retry_in:?}): {error}"
            )),
        );
        if let Some(p) = progress {
            p.beat();
        }
        tokio::select! {
            _ = shutdown.cancelled() => return Err(Error::Wanderer(RunError::Journal(e))),
            _ = tokio::time::sleep(retry_in) => {}
        }
    }
}

/// The Wanderer with the configured applier; readiness is marked after its first observation.
/// Disabled, the sidecar is ready at once and waits for the signal.
async fn walk(
    cfg: &SidecarConfig,
    space: Space,
    ready: &Health,
    metrics: &WandererMetrics,
    shutdown: &CancellationToken,
    progress: Option<&Heartbeat>,
) -> Result<()> {
    let w = &cfg.wanderer;
    if !w.enabled {
        ready.mark_ready();
        shutdown.cancelled().await;
        return Ok(());
    }
    let opts = RunOptions {
        schedule: Schedule {
            period: w.schedule.period(),
            jitter: w.schedule.jitter,
        },
        max_steps: w.max_steps,
        apply_timeout: w.apply_timeout,
        progress: progress.cloned(),
    };
    let journal = cfg.state_dir.join("journal.jsonl");
    let space = supported(cfg, space, metrics).await?;
    // Before each transition the cluster's version is read again (wanderer/cluster.rs): a
    // release that no longer supports it is never applied; none left stops the walk, exit 2.
    // Without a client (no kubeconfig: warned at start) transitions go unchecked.
    let client = producer::client_with_timeout(cfg.kube_server.as_deref(), cfg.kube_timeout)
        .await
        .ok();
    let walk_stop = shutdown.child_token();
    let exhausted = Arc::new(std::sync::Mutex::new(None));
    let mut planner = Walk::new(space.clone(), w.seed, w.strategy);
    let walking = Walking {
        journal,
        opts,
        metrics,
        shutdown: &walk_stop,
        ready,
    };
    match &w.applier {
        ApplierConfig::Sim { url } => {
            let applier = SimApplier::new(url, w.apply_timeout);
            let guarded = Guarded {
                inner: &applier,
                namespace: SIM_AGONES_NS.to_owned(),
                rollout_wait: ROLLOUT_WAIT,
                client: client.clone(),
                space: space.clone(),
                stop: walk_stop.clone(),
                exhausted: exhausted.clone(),
            };
            walking.run(&guarded, &mut planner).await?;
        }
        ApplierConfig::Helm { namespace, .. } => {
            let applier = helm_applier(cfg, &planner)?;
            let guarded = Guarded {
                inner: &applier,
                namespace: namespace.clone(),
                rollout_wait: ROLLOUT_WAIT,
                client: client.clone(),
                space: space.clone(),
                stop: walk_stop.clone(),
                exhausted: exhausted.clone(),
            };
            walking.run(&guarded, &mut planner).await?;
        }
    }
    let why = exhausted.lock().ok().and_then(|mut e| e.take());
    match why {
        None => Ok(()),
        Some(why) => {
            let mut p = upsoak_common::problems::Problems::new();
            p.push("versions", why);
            Err(p
                .invalid(
                    "configuration space",
                    cfg.wanderer.space.display().to_string(),
                )
                .into())
        }
    }
}

/// The space cut to the releases that support the cluster's Kubernetes (`/version`); none left
/// is bad input (exit 2). A cluster whose version cannot be read is walked whole, with a warning.
async fn supported(cfg: &SidecarConfig, space: Space, metrics: &WandererMetrics) -> Result<Space> {
    let version =
        match producer::client_with_timeout(cfg.kube_server.as_deref(), cfg.kube_timeout).await {
            Ok(client) => wanderer::cluster::kubernetes_version(&client).await,
            Err(e) => Err(e.to_string()),
        };
    let kube = match version {
        Ok(v) => v,
        Err(e) => {
            ClusterVersionChecked {
                kubernetes: None,
                error: Some(&e),
                kept: &[],
                dropped: &[],
            }
            .emit(metrics);
            return Ok(space);
        }
    };
    let (cut, dropped) = space.supporting(kube);
    let kept: Vec<String> = cut.versions.iter().map(|v| v.name.clone()).collect();
    ClusterVersionChecked {
        kubernetes: Some(&format!("{}.{}", kube.0, kube.1)),
        error: None,
        kept: &kept,
        dropped: &dropped,
    }
    .emit(metrics);
    if cut.versions.is_empty() || cut.start().is_none() {
        let mut p = upsoak_common::problems::Problems::new();
        p.push(
            "versions",
            format!(
                "no release supports the cluster's Kubernetes {}.{} (the ranges of {} exclude it): add newer releases to the space",
                kube.0,
                kube.1,
                dropped.join(", ")
            ),
        );
        return Err(p
            .invalid(
                "configuration space",
                cfg.wanderer.space.display().to_string(),
            )
            .into());
    }
    Ok(cut)
}

/// The helm applier of `cfg` for the space `planner` walks: every tunable must name its chart
/// paths (otherwise it would be written where the chart ignores it).
pub fn helm_applier(cfg: &SidecarConfig, planner: &Walk) -> Result<HelmApplier> {
    let a = helm_applier_for(cfg, planner.space())?;
    // `--reuse-values` keeps the old chart's values, agones.image.tag included (helm's
    // pkg/action/upgrade.go reuseValues): every version change would run the old images.
    if a.reuse_values == ReuseValues::Reuse && planner.space().versions.len() > 1 {
        let mut p = upsoak_common::problems::Problems::new();
        p.push(
            "wanderer.applier.reuse_values",
            "`reuse` (--reuse-values) keeps the old chart's values, agones.image.tag included, so every version change of the space would run the old images; use `reset-then-reuse` (helm ≥ 3.14: upgrade helm), or `none` with your install's values files",
        );
        return Err(p
            .invalid("sidecar configuration", "wanderer.applier")
            .into());
    }
    for w in a.image_tag_warnings() {
        tracing::warn!("{w}");
    }
    Ok(a)
}

/// The helm applier of `cfg` for `space` (see [`helm_applier`]).
pub fn helm_applier_for(cfg: &SidecarConfig, space: &Space) -> Result<HelmApplier> {
    let ApplierConfig::Helm {
        helm,
        release,
        chart,
        namespace,
        timeout,
        values_files,
        reuse_values,
        on_stuck,
        stuck_wait,
        kill_grace,
        wait,
    } = &cfg.wanderer.applier
    else {
        return Err(Error::Flag("the applier is not helm".into()));
    };
    let unmapped: Vec<&str> = space
        .tunables
        .keys()
        .filter(|t| !space.chart.contains_key(*t))
        .map(String::as_str)
        .collect();
    if !unmapped.is_empty() {
        let mut p = upsoak_common::problems::Problems::new();
        for t in unmapped {
            p.push(
                format!("tunables.{t}.chart"),
                "missing: the helm applier writes a tunable only at the chart paths the space names",
            );
        }
        return Err(p
            .invalid(
                "configuration space",
                cfg.wanderer.space.display().to_string(),
            )
            .into());
    }
    Ok(HelmApplier {
        helm: helm.clone(),
        release: release.clone(),
        chart: chart.clone(),
        namespace: namespace.clone(),
        timeout: *timeout,
        kill_after: cfg.wanderer.apply_timeout,
        kill_grace: *kill_grace,
        values_dir: cfg.state_dir.clone(),
        values_files: values_files.clone(),
        // Unset is only accepted with values files (config.rs): they carry the install.
        reuse_values: reuse_values.unwrap_or(ReuseValues::None),
        on_stuck: *on_stuck,
        stuck_wait: *stuck_wait,
        wait: *wait,
        tunables: space.chart.clone(),
        charts: space
            .versions
            .iter()
            .filter_map(|v| Some((v.name.clone(), v.chart.clone()?)))
            .collect(),
        image_tags: space
            .versions
            .iter()
            .filter_map(|v| Some((v.name.clone(), v.image_tag.clone()?)))
            .collect(),
    })
}

/// An error with its sources, credentials in any URL it names hidden (L4).
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    upsoak_common::redact::urls(&s)
}

/// What the Wanderer's loop needs besides its applier and planner.
struct Walking<'a> {
    journal: PathBuf,
    opts: RunOptions,
    metrics: &'a WandererMetrics,
    shutdown: &'a CancellationToken,
    ready: &'a Health,
}

impl Walking<'_> {
    async fn run<A: Applier>(self, applier: &A, planner: &mut Walk) -> Result<()> {
        wanderer::run(
            &self.journal,
            applier,
            planner,
            &self.opts,
            self.metrics,
            self.shutdown,
            || {
                self.ready.mark_ready();
                // Observed again after a journal failure: the walk is back.
                self.ready.warn("journal", None);
            },
        )
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::EXIT_FAILURE;

    #[tokio::test]
    async fn a_crashed_or_failed_server_is_a_runtime_failure() {
        let crashed = tokio::spawn(async { panic!("boom") }).await;
        let e = server_result(crashed.map(|()| Ok(()))).unwrap_err();
        assert!(matches!(e, Error::Task("metrics server", _)), "{e}");
        assert_eq!(e.exit_code(), EXIT_FAILURE);
        let failed = server_result(Ok(Err(std::io::Error::other("accept failed")))).unwrap_err();
        assert_eq!(failed.exit_code(), EXIT_FAILURE);
        assert_eq!(
            std::error::Error::source(&failed).map(|s| s.to_string()),
            Some("accept failed".into())
        );
        assert!(server_result(Ok(Ok(()))).is_ok());
    }
}
