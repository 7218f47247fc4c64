//! `upsoak-chaos preflight --config sidecar.yaml`: what a soak needs, checked before it starts,
//! each check printed as PASS, WARN, FAIL or SKIP with a hint. Exit 0 when none fails (a WARN
//! does not), 1 when some do (the error names them), 2 for a bad configuration or space.
//!
//! The checks, in order (each bounded by `--timeout`):
//! - `helm`: helm runs and says its version (≥ 3.14 with `reuse_values: reset-then-reuse`);
//!   only with the helm applier.
//! - `charts`: every version of the space's chart can be pulled (`helm show chart CHART
//!   --version V`, [`chart`]); only with the helm applier.
//! - `release`: the release is installed, settled (deployed, not `pending-*`), and its chart
//!   version is in the space.
//! - `kubernetes`: the cluster's `/version` is in the Kubernetes range of at least two of the
//!   space's releases (one release is no walk).
//! - `permissions`: every permission the Producer and Wanderer will use ([`access`]); with the
//!   helm applier, those of `helm upgrade --wait` on every object the chart renders (`helm
//!   template` of each version of the space with the release's values files).
//! - `loadbalancer`: the Services of type LoadBalancer in the Agones namespace have an ingress
//!   (helm's `--wait` waits for it, [`services`]).
//! - `fleets`: the Producer's Fleets exist and have Ready servers.
//! - `capacity`: each Fleet's `spec.replicas` holds what the load needs of it
//!   ([`crate::producer::capacity`]), and few enough of them are starting at any time for
//!   `fleet-converged`.
//! - `allocation`: one server allocated, played and released ([`game`]).

pub mod access;
pub mod chart;
pub mod game;
pub mod services;

use std::fmt::Write as _;
use std::time::Duration;

use kube::Api;
use upsoak_agones::Fleet;

use crate::config::{ApplierConfig, SidecarConfig};
use crate::error::{Error, Result};
use crate::producer;
use crate::producer::capacity::{self, FleetNeed};
use crate::sidecar::helm_applier_for;
use crate::wanderer::apply::{Applier, HelmApplier, ReuseValues, SimApplier, process};
use crate::wanderer::cluster;
use crate::wanderer::space::Space;

/// The oldest helm with `--reset-then-reuse-values` (helm v3.14.0 release notes).
const RESET_THEN_REUSE_SINCE: (u32, u32) = (3, 14);
/// Releases the cluster's Kubernetes must be supported by for a walk to go anywhere.
const MIN_RELEASES: usize = 2;
/// The objective of `fleet-converged` in rules/slos.yaml: the share of a Fleet's replicas that
/// must be Ready, Reserved or Allocated. The load keeps `rate × replace_time` of them starting.
pub const FLEET_CONVERGED_OBJECTIVE: f64 = 0.8;

/// How one check ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// Works, but will cost the soak something (said in the hint); not a failure.
    Warn,
    Fail,
    /// Not applicable to this configuration, or not possible after an earlier failure.
    Skip,
}

impl Verdict {
    fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Warn => "WARN",
            Verdict::Fail => "FAIL",
            Verdict::Skip => "SKIP",
        }
    }
}

/// One check's result.
#[derive(Clone, Debug)]
pub struct Check {
    /// Its name: `helm`, `charts`, `release`, `kubernetes`, `permissions`, `loadbalancer`,
    /// `fleets`, `capacity`, `allocation`.
    pub name: &'static str,
    pub verdict: Verdict,
    /// What was found.
    pub detail: String,
    /// What to do about a failure.
    pub hint: Option<String>,
}

impl Check {
    fn pass(name: &'static str, detail: impl Into<String>) -> Check {
        Check {
            name,
            verdict: Verdict::Pass,
            detail: detail.into(),
            hint: None,
        }
    }
    fn fail(name: &'static str, detail: impl Into<String>, hint: impl Into<String>) -> Check {
        Check {
            name,
            verdict: Verdict::Fail,
            detail: detail.into(),
            hint: Some(hint.into()),
        }
    }
    fn warn(name: &'static str, detail: impl Into<String>, hint: impl Into<String>) -> Check {
        Check {
            name,
            verdict: Verdict::Warn,
            detail: detail.into(),
            hint: Some(hint.into()),
        }
    }
    fn skip(name: &'static str, detail: impl Into<String>) -> Check {
        Check {
            name,
            verdict: Verdict::Skip,
            detail: detail.into(),
            hint: None,
        }
    }
}

/// Every check's result, in order.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub checks: Vec<Check>,
}

impl Report {
    /// The names of the checks that failed.
    pub fn failed(&self) -> Vec<&'static str> {
        self.checks
            .iter()
            .filter(|c| c.verdict == Verdict::Fail)
            .map(|c| c.name)
            .collect()
    }

    /// One line per check (`PASS  name  detail`), its hint below a failure, and a summary.
    pub fn render(&self) -> String {
        let mut s = String::new();
        for c in &self.checks {
            let _ = writeln!(s, "{}  {:<12} {}", c.verdict.as_str(), c.name, c.detail);
            if let Some(h) = &c.hint {
                let _ = writeln!(s, "      hint: {h}");
            }
        }
        let failed = self.failed();
        if failed.is_empty() {
            let _ = writeln!(s, "preflight: every check passed");
        } else {
            let _ = writeln!(
                s,
                "preflight: {} of {} checks failed: {}",
                failed.len(),
                self.checks.len(),
                failed.join(", ")
            );
        }
        s
    }
}

/// Runs every check for `cfg`, each bounded by `timeout`. A bad space is an error (exit 2);
/// everything else is a check's result.
pub async fn run(cfg: &SidecarConfig, timeout: Duration) -> Result<Report> {
    let space = Space::load(&cfg.wanderer.space)?;
    let helm = match &cfg.wanderer.applier {
        ApplierConfig::Helm { .. } => Some(helm_applier_for(cfg, &space)?),
        ApplierConfig::Sim { .. } => None,
    };
    let client = producer::client(cfg.kube_server.as_deref()).await?;
    let mut report = Report::default();
    let versions: Vec<String> = space.versions.iter().map(|v| v.name.clone()).collect();
    if let (Some(h), ApplierConfig::Helm { reuse_values, .. }) = (&helm, &cfg.wanderer.applier) {
        let reuse = reuse_values.unwrap_or(ReuseValues::None);
        report
            .checks
            .push(bounded("helm", timeout, helm_check(h, reuse, timeout)).await);
    } else {
        report.checks.push(Check::skip(
            "helm",
            "the applier is the simulator's, not helm",
        ));
    }
    let charts = match &helm {
        Some(h) => {
            bounded(
                "charts",
                timeout,
                chart::charts_check(h, &versions, timeout),
            )
            .await
        }
        None => Check::skip(
            "charts",
            "the applier is the simulator's: no chart is pulled",
        ),
    };
    report.checks.push(charts);
    report.checks.push(
        bounded(
            "release",
            timeout,
            release_check(cfg, helm.as_ref(), &space, timeout),
        )
        .await,
    );
    report
        .checks
        .push(bounded("kubernetes", timeout, kubernetes_check(&client, &space)).await);
    report.checks.push(
        bounded(
            "permissions",
            timeout,
            permissions_check(&client, cfg, helm.as_ref(), &versions, timeout),
        )
        .await,
    );
    let agones_ns = match &helm {
        Some(h) => h.namespace.clone(),
        None => access::SIM_AGONES_NS.to_owned(),
    };
    report.checks.push(
        bounded(
            "loadbalancer",
            timeout,
            services::loadbalancer_check(&client, &agones_ns),
        )
        .await,
    );
    let fleets = bounded("fleets", timeout, fleets_check(&client, cfg)).await;
    let ready_fleet = (fleets.verdict == Verdict::Pass)
        .then(|| cfg.producer.fleets.first().map(|f| f.name.clone()))
        .flatten();
    report.checks.push(fleets);
    report
        .checks
        .push(bounded("capacity", timeout, capacity_check(&client, cfg)).await);
    let allocation = match ready_fleet {
        None if cfg.producer.fleets.is_empty() => Check::skip(
            "allocation",
            "no Fleets configured: the Producer does not allocate",
        ),
        None => Check::skip("allocation", "skipped: the fleets check failed"),
        Some(fleet) => {
            bounded(
                "allocation",
                timeout,
                allocation_check(&client, cfg, fleet, timeout),
            )
            .await
        }
    };
    report.checks.push(allocation);
    Ok(report)
}

/// `check`, or a failure when it takes longer than `timeout`.
async fn bounded(
    name: &'static str,
    timeout: Duration,
    check: impl std::future::Future<Output = Check>,
) -> Check {
    tokio::time::timeout(timeout, check)
        .await
        .unwrap_or_else(|_| {
            Check::fail(
                name,
                format!("no answer within {timeout:?}"),
                "check that the cluster (or helm) answers; raise --timeout if it is only slow",
            )
        })
}

async fn helm_check(h: &HelmApplier, reuse: ReuseValues, timeout: Duration) -> Check {
    let args = ["version".to_owned(), "--short".to_owned()];
    let out = match process::run(&h.helm, &args, "helm version", timeout, h.kill_grace).await {
        Ok(out) if out.status.success() => out.stdout,
        Ok(out) => {
            return Check::fail(
                "helm",
                format!(
                    "`{} version` failed ({}): {}",
                    h.helm.display(),
                    out.status,
                    out.stderr.trim()
                ),
                "install helm 3 (≥ 3.14), or set `wanderer.applier.helm` to its path",
            );
        }
        Err(e) => {
            return Check::fail(
                "helm",
                format!("cannot run `{}`: {e}", h.helm.display()),
                "install helm 3 (≥ 3.14), or set `wanderer.applier.helm` to its path",
            );
        }
    };
    let version = out.trim().to_owned();
    let number = version
        .trim_start_matches('v')
        .split(['.', '+', '-'])
        .take(2)
        .map(str::parse::<u32>)
        .collect::<std::result::Result<Vec<_>, _>>();
    match number.as_deref() {
        Ok([a, b]) if reuse == ReuseValues::ResetThenReuse && (*a, *b) < RESET_THEN_REUSE_SINCE => {
            Check::fail(
                "helm",
                format!(
                    "{version} at {} has no --reset-then-reuse-values",
                    h.helm.display()
                ),
                // Not `reuse`: `--reuse-values` keeps the old chart's values, its
                // `agones.image.tag` included (helm `pkg/action/upgrade.go`, `reuseValues`), so
                // every version change would install the old images.
                "upgrade helm to ≥ 3.14, or set `wanderer.applier.reuse_values: none` and give every \
                 value of your install in `values_files` (`reuse` cannot change versions)",
            )
        }
        Ok([_, _]) => Check::pass("helm", format!("{version} at {}", h.helm.display())),
        _ => Check::fail(
            "helm",
            format!("`helm version --short` said {version:?}, not a version"),
            "check that `wanderer.applier.helm` is helm",
        ),
    }
}

async fn release_check(
    cfg: &SidecarConfig,
    helm: Option<&HelmApplier>,
    space: &Space,
    timeout: Duration,
) -> Check {
    let in_space = |v: &str| space.versions.iter().any(|s| s.name == v);
    let names = || {
        space
            .versions
            .iter()
            .map(|v| v.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (what, version) = match (helm, &cfg.wanderer.applier) {
        (Some(h), _) => match h.status().await {
            Err(e) => {
                return Check::fail(
                    "release",
                    format!("helm status {}: {e}", h.release),
                    "check helm's access to the cluster (its kubeconfig) and `wanderer.applier.namespace`",
                );
            }
            Ok(None) => {
                return Check::fail(
                    "release",
                    format!(
                        "release `{}` is not installed in `{}`",
                        h.release, h.namespace
                    ),
                    "install Agones with helm first, or set `wanderer.applier.release`/`namespace` to your install's (`helm list -A`)",
                );
            }
            Ok(Some(st)) if st.status != "deployed" => {
                return Check::fail(
                    "release",
                    format!(
                        "release `{}` revision {} is `{}`, chart {}",
                        h.release, st.revision, st.status, st.chart_version
                    ),
                    format!(
                        "wait for the operation in progress, or recover it (`helm rollback {} --namespace {}`)",
                        h.release, h.namespace
                    ),
                );
            }
            Ok(Some(st)) => (
                format!("release `{}` revision {} deployed", h.release, st.revision),
                st.chart_version,
            ),
        },
        (None, ApplierConfig::Sim { url }) => {
            match SimApplier::new(url, timeout).observe_installed().await {
                Err(e) => {
                    return Check::fail(
                        "release",
                        format!("the simulator at {url}: {e}"),
                        "start upsoak-sim, or fix `wanderer.applier.url`",
                    );
                }
                Ok(i) => (format!("the simulator at {url}"), i.version),
            }
        }
        (None, ApplierConfig::Helm { .. }) => {
            return Check::fail("release", "no helm applier", "a bug: report it");
        }
    };
    if in_space(&version) {
        Check::pass("release", format!("{what}: Agones {version}, in the space"))
    } else {
        Check::fail(
            "release",
            format!("{what}: Agones {version} is not in the space ({})", names()),
            "add the installed release to the space, or install one of its releases first",
        )
    }
}

async fn kubernetes_check(client: &kube::Client, space: &Space) -> Check {
    let kube = match cluster::kubernetes_version(client).await {
        Ok(v) => v,
        Err(e) => {
            return Check::fail(
                "kubernetes",
                e,
                "check `kube_server` or the kubeconfig, and that the API server answers",
            );
        }
    };
    let (cut, dropped) = space.supporting(kube);
    let kept: Vec<&str> = cut.versions.iter().map(|v| v.name.as_str()).collect();
    let detail = format!(
        "cluster {}.{}: supported by {} ({})",
        kube.0,
        kube.1,
        kept.len(),
        if kept.is_empty() {
            "none".to_owned()
        } else {
            kept.join(", ")
        }
    );
    if kept.len() >= MIN_RELEASES {
        Check::pass("kubernetes", detail)
    } else {
        Check::fail(
            "kubernetes",
            format!("{detail}; not {}", dropped.join(", ")),
            format!(
                "the walk needs at least {MIN_RELEASES} releases that support the cluster: add newer releases to the space, or soak on a cluster version they support"
            ),
        )
    }
}

async fn permissions_check(
    client: &kube::Client,
    cfg: &SidecarConfig,
    helm: Option<&HelmApplier>,
    versions: &[String],
    timeout: Duration,
) -> Check {
    let mut needs = access::needs(cfg);
    if let Some(h) = helm.filter(|_| cfg.wanderer.enabled) {
        match chart::chart_needs(client, h, versions, timeout).await {
            Ok(more) => {
                for n in more {
                    if !needs.iter().any(|m| {
                        (m.verb, &m.group, &m.resource, m.subresource, &m.namespace)
                            == (n.verb, &n.group, &n.resource, n.subresource, &n.namespace)
                    }) {
                        needs.push(n);
                    }
                }
            }
            Err(check) => return check,
        }
    }
    match access::denied(client, &needs).await {
        Err(e) => Check::fail(
            "permissions",
            e,
            "check the credentials (kubeconfig or ServiceAccount) and that the API server answers",
        ),
        Ok(denied) if denied.is_empty() => Check::pass(
            "permissions",
            format!("all {} allowed (SelfSubjectAccessReview)", needs.len()),
        ),
        Ok(denied) => Check::fail(
            "permissions",
            format!(
                "{} of {} denied (verb, resource, namespace): {}{}",
                denied.len(),
                needs.len(),
                access::list_denied(&denied),
                denied
                    .first()
                    .map(|(n, why)| format!(
                        "; the first: {} `{}` for {} ({why})",
                        n.who,
                        n.describe(),
                        n.why
                    ))
                    .unwrap_or_default(),
            ),
            "apply deploy/base/rbac.yaml (the Producer) and deploy/components/helm-applier (the helm applier), or grant the same to your credentials",
        ),
    }
}

async fn fleets_check(client: &kube::Client, cfg: &SidecarConfig) -> Check {
    let p = &cfg.producer;
    if p.fleets.is_empty() {
        return Check::skip("fleets", "no Fleets configured");
    }
    let api: Api<Fleet> = Api::namespaced(client.clone(), &p.namespace);
    let mut found = Vec::new();
    let mut problems = Vec::new();
    for f in &p.fleets {
        match api.get_opt(&f.name).await {
            Err(e) => problems.push(format!("{}/{}: {e}", p.namespace, f.name)),
            Ok(None) => problems.push(format!("{}/{} does not exist", p.namespace, f.name)),
            Ok(Some(fleet)) => {
                let st = fleet.status.unwrap_or_default();
                let line = format!(
                    "{}/{}: {} Ready of {}",
                    p.namespace, f.name, st.ready_replicas, st.replicas
                );
                if st.ready_replicas > 0 {
                    found.push(line);
                } else {
                    problems.push(format!("{line}: no Ready servers"));
                }
            }
        }
    }
    if problems.is_empty() {
        Check::pass("fleets", found.join(", "))
    } else {
        Check::fail(
            "fleets",
            problems.join("; "),
            "create the Fleets named in `producer.fleets` (in `producer.namespace`) and wait until their servers are Ready (`kubectl get fleets`)",
        )
    }
}

/// Each Fleet's `spec.replicas` (and, for a Fleet the Producer scales, its `min_replicas`)
/// against what the load needs of it; FAIL when a Fleet the Producer does not scale is too
/// small, WARN when one it scales is too small now or at its `min_replicas`, or when the
/// replacements the load keeps starting (`rate × replace_time`) exceed what `fleet-converged`
/// allows (1 − [`FLEET_CONVERGED_OBJECTIVE`] of the replicas).
async fn capacity_check(client: &kube::Client, cfg: &SidecarConfig) -> Check {
    let p = &cfg.producer;
    let Some(needs) = capacity::needs(p) else {
        return Check::skip(
            "capacity",
            "`sessions: keep` holds every server it allocates: the load drains the Fleets on purpose",
        );
    };
    if needs.is_empty() {
        return Check::skip("capacity", "no Fleets configured");
    }
    let api: Api<Fleet> = Api::namespaced(client.clone(), &p.namespace);
    let mut seen = Vec::new();
    let mut fails = Vec::new();
    let mut warns = Vec::new();
    for n in &needs {
        let name = format!("{}/{}", p.namespace, n.fleet);
        let replicas = match api.get_opt(&n.fleet).await {
            Err(e) => {
                fails.push(format!("{name}: {e}"));
                continue;
            }
            Ok(None) => {
                fails.push(format!("{name} does not exist (see `fleets`)"));
                continue;
            }
            Ok(Some(f)) => f.spec.replicas,
        };
        let (verdict, line) = judge_capacity(n, &p.fleets[n.index], replicas);
        let line = format!("{name}: {line}");
        match verdict {
            Verdict::Fail => fails.push(line),
            Verdict::Warn => warns.push(line),
            _ => seen.push(line),
        }
    }
    let fix = "scale the Fleet (`kubectl scale fleet NAME --replicas N`) and set `producer.fleets[].min_replicas` to at least the need, or lower `producer.allocation_rate`, the session length or `canaries.count`; the terms are under `producer.capacity`";
    if !fails.is_empty() {
        fails.extend(warns);
        Check::fail("capacity", fails.join("; "), fix)
    } else if !warns.is_empty() {
        Check::warn("capacity", warns.join("; "), fix)
    } else {
        Check::pass("capacity", seen.join(", "))
    }
}

/// One Fleet's capacity verdict, given its `spec.replicas` now, and the sentence saying why.
pub fn judge_capacity(
    n: &FleetNeed,
    load: &producer::FleetLoad,
    replicas: i32,
) -> (Verdict, String) {
    let scaled = !load.scale_every_max.is_zero();
    let need = n.need;
    // The fewest replicas the soak will run on: the Producer's floor once it scales.
    let floor = if scaled { load.min_replicas } else { replicas };
    if i64::from(replicas) < need && !scaled {
        return (
            Verdict::Fail,
            format!(
                "{replicas} replicas, the Producer does not scale it, and the load needs {need} ({}): allocations will answer FleetFull",
                n.arithmetic()
            ),
        );
    }
    if i64::from(floor) < need {
        return (
            Verdict::Warn,
            format!(
                "the Producer scales it down to min_replicas {floor}, and the load needs {need} ({}): allocations will answer FleetFull",
                n.arithmetic()
            ),
        );
    }
    if i64::from(replicas) < need {
        return (
            Verdict::Warn,
            format!(
                "{replicas} replicas now, and the load needs {need} ({}): allocations may answer FleetFull until the Producer's first scale request (within {:?}) takes it to {}..={}",
                n.arithmetic(),
                load.scale_every_max,
                load.min_replicas,
                load.max_replicas
            ),
        );
    }
    let starting = n.starting();
    let least = floor.min(replicas).max(1);
    let converged = 1.0 - starting / f64::from(least);
    if converged < FLEET_CONVERGED_OBJECTIVE {
        return (
            Verdict::Warn,
            format!(
                "about {starting:.1} of its {least} replicas are always starting (rate × replace_time), so `fleet-converged` reads about {converged:.2}, below its objective {FLEET_CONVERGED_OBJECTIVE}"
            ),
        );
    }
    (
        Verdict::Pass,
        format!(
            "{replicas} replicas{}, the load needs {need} ({}), about {starting:.1} starting",
            if scaled {
                format!(
                    " (scaled within {}..={})",
                    load.min_replicas, load.max_replicas
                )
            } else {
                String::new()
            },
            n.arithmetic()
        ),
    )
}

async fn allocation_check(
    client: &kube::Client,
    cfg: &SidecarConfig,
    fleet: String,
    timeout: Duration,
) -> Check {
    let reply = cfg.producer.session.command_timeout;
    match game::round_trip(
        client,
        &cfg.producer.namespace,
        &fleet,
        &crate::producer::owner::Owner::new(&cfg.producer.reclaim.owner),
        reply,
        timeout,
        &cfg.producer.address_types,
    )
    .await
    {
        Ok(t) => Check::pass(
            "allocation",
            format!(
                "{} from {fleet} answered GAMESERVER at {} ({}), released {:.1}s after EXIT",
                t.gameserver,
                t.addr,
                t.reply,
                t.released_after.as_secs_f64()
            ),
        ),
        Err(e) => Check::fail(
            "allocation",
            e,
            "check that the Fleet runs simple-game-server (or a server speaking its UDP protocol) and that its address and port are reachable from here",
        ),
    }
}

/// The error a report with failures becomes: exit 1, naming them.
pub fn verdict(report: &Report) -> Result<()> {
    let failed = report.failed();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Error::Preflight(failed.join(", ")))
    }
}
