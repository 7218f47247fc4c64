//! The simulator's configuration: known versions and gates, timings, the game port range and
//! fault profiles. Loaded from YAML; every problem is reported with its path.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use upsoak_agones::release::{
    GATE_NAME_RULE, Install, KubeRange, Stage, TunableSpec, is_gate_name, parse_version,
};
use upsoak_common::problems::{Invalid, Problems};

use crate::duration::config_duration;
use crate::validate::is_dns_label;

/// The configuration used when no `--config` is given: Agones 1.55–1.60, no faults.
pub const DEFAULT_CONFIG_YAML: &str = include_str!("../config/default.yaml");

/// The built-in default as a YAML mapping, merge keys applied: what a config file overlays.
fn default_document() -> Result<serde_yaml::Mapping, String> {
    let mut v: serde_yaml::Value =
        serde_yaml::from_str(DEFAULT_CONFIG_YAML).map_err(|e| e.to_string())?;
    v.apply_merge().map_err(|e| e.to_string())?;
    match v {
        serde_yaml::Value::Mapping(m) => Ok(m),
        _ => Err("not a mapping".to_owned()),
    }
}

/// Everything `upsoak-sim` can be told at start.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SimConfig {
    /// Namespace for Fleets created by `fleets` below and the default for requests.
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// Versions the simulator can install, each with its feature gates.
    pub versions: Vec<VersionSpec>,
    /// What is installed when the simulator starts.
    pub initial: Install,
    /// Tunables an install may set, with their allowed values.
    #[serde(default)]
    pub tunables: BTreeMap<String, TunableSpec>,
    /// GameServer lifecycle timings.
    #[serde(default)]
    pub lifecycle: Lifecycle,
    /// Allocation behaviour.
    #[serde(default)]
    pub allocation: AllocationSpec,
    /// How long an install keeps the control plane unavailable.
    #[serde(default = "default_upgrade_window", with = "config_duration")]
    pub upgrade_window: Duration,
    /// Where GameServers listen for the game protocol.
    #[serde(default)]
    pub game: GameSpec,
    /// Fleets that exist at start.
    #[serde(default)]
    pub fleets: Vec<FleetSeed>,
    /// Named regressions, active while their condition holds.
    #[serde(default)]
    pub faults: Vec<FaultProfile>,
    /// What a `SelfSubjectAccessReview` denies (default: nothing, a cluster admin's view).
    #[serde(default)]
    pub access: crate::api::access::AccessSpec,
    /// Whether the cluster has a load balancer that gives LoadBalancer Services an ingress
    /// (a cloud cluster: yes, the default; kind, minikube or bare metal: no).
    #[serde(default = "default_load_balancer")]
    pub load_balancer: bool,
    /// `agones-allocator`'s mTLS endpoint; absent: not served.
    #[serde(default)]
    pub allocator_service: Option<crate::allocator_service::AllocatorServiceSpec>,
}

fn default_load_balancer() -> bool {
    true
}

fn default_namespace() -> String {
    "default".to_owned()
}
fn default_upgrade_window() -> Duration {
    Duration::from_secs(20)
}

/// One Agones release the simulator knows.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VersionSpec {
    /// Release, e.g. `1.60.0`.
    pub version: String,
    /// Supported Kubernetes minor range, informational.
    #[serde(default)]
    pub kubernetes: Option<KubeRange>,
    /// Every gate of the release with its stage.
    pub gates: BTreeMap<String, Stage>,
}

/// How long each step of a GameServer's life takes.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Lifecycle {
    /// Creating → Scheduled (pod scheduled, port assigned).
    #[serde(with = "config_duration")]
    pub scheduled_after: Duration,
    /// Scheduled → RequestReady (the game server calls SDK Ready).
    #[serde(with = "config_duration")]
    pub request_ready_after: Duration,
    /// RequestReady → Ready (the controller sees it).
    #[serde(with = "config_duration")]
    pub ready_after: Duration,
    /// Shutdown → deleted.
    #[serde(with = "config_duration")]
    pub delete_after_shutdown: Duration,
    /// Unhealthy or Error → deleted (and replaced by its Fleet).
    #[serde(with = "config_duration")]
    pub delete_after_failure: Duration,
    /// How often controllers reconcile.
    #[serde(with = "config_duration")]
    pub tick: Duration,
}

/// Default Creating → Scheduled: the scheduler places the pod and the kubelet starts it. On a
/// real cluster this is seconds with the image cached and up to minutes without
/// (`shared/reference/reviews/real-agones-gaps.md` §12).
pub const DEFAULT_SCHEDULED_AFTER: Duration = Duration::from_secs(2);
/// Default Scheduled → RequestReady: the containers start and the game calls SDK `Ready`.
pub const DEFAULT_REQUEST_READY_AFTER: Duration = Duration::from_secs(3);
/// Default RequestReady → Ready: the GameServer controller's next sync.
pub const DEFAULT_READY_AFTER: Duration = Duration::from_millis(100);
/// Default Shutdown → deleted: the pod's termination.
pub const DEFAULT_DELETE_AFTER_SHUTDOWN: Duration = Duration::from_secs(3);
/// Default Unhealthy/Error → deleted: the GameServerSet controller deletes them on its next
/// sync (Agones `pkg/gameserversets/controller.go`, `syncGameServerSet`).
pub const DEFAULT_DELETE_AFTER_FAILURE: Duration = Duration::from_secs(1);
/// Default controller tick.
pub const DEFAULT_TICK: Duration = Duration::from_millis(50);

/// Realistic timings: about 5 s from creation to Ready, as on a cluster with the image cached.
/// Tests and the local demo set their own fast ones.
impl Default for Lifecycle {
    fn default() -> Self {
        Lifecycle {
            scheduled_after: DEFAULT_SCHEDULED_AFTER,
            request_ready_after: DEFAULT_REQUEST_READY_AFTER,
            ready_after: DEFAULT_READY_AFTER,
            delete_after_shutdown: DEFAULT_DELETE_AFTER_SHUTDOWN,
            delete_after_failure: DEFAULT_DELETE_AFTER_FAILURE,
            tick: DEFAULT_TICK,
        }
    }
}

/// Allocation timing and races.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AllocationSpec {
    /// Time between picking a GameServer and committing it; races happen inside it.
    #[serde(with = "config_duration")]
    pub latency: Duration,
    /// Packed picks at random among the first this many Ready candidates, as the Agones
    /// allocator spreads concurrent requests; 1 always picks the first.
    pub pick_window: usize,
    /// Retries after losing a race, before answering Contention.
    pub retries: u32,
    /// The allocator's batch wait when the installed release sets no
    /// `allocationBatchWaitTime` tunable: the chart's default, 500ms
    /// (`install/helm/agones/values.yaml`, `agones.extensions.allocationBatchWaitTime`). An
    /// idle allocator sleeps this long before it reads the next batch of requests
    /// (`world/allocation.rs`); 0 never sleeps.
    #[serde(with = "config_duration")]
    pub batch_wait: Duration,
}

/// Agones' chart default for `allocationBatchWaitTime` (`install/helm/agones/values.yaml`).
pub const DEFAULT_BATCH_WAIT: Duration = Duration::from_millis(500);

impl Default for AllocationSpec {
    fn default() -> Self {
        AllocationSpec {
            latency: Duration::from_millis(2),
            pick_window: 16,
            retries: 2,
            batch_wait: DEFAULT_BATCH_WAIT,
        }
    }
}

/// The game port range and the address put in `status.address`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct GameSpec {
    /// The address game ports bind to and `status.address` shows.
    pub ip: IpAddr,
    /// First port of the range GameServers get their UDP port from; 0 lets the OS pick any
    /// free port for each GameServer (then `port_max` is not used), as tests do.
    pub port_min: u16,
    /// Last port of the range, inclusive.
    pub port_max: u16,
}

impl GameSpec {
    /// The range's problems, under `game`.
    fn check(&self, p: &mut Problems) {
        if self.port_min != 0 && self.port_min > self.port_max {
            p.push(
                "game",
                format!("port range {}-{} is empty", self.port_min, self.port_max),
            );
        }
    }
}

impl Default for GameSpec {
    fn default() -> Self {
        GameSpec {
            ip: IpAddr::from([127, 0, 0, 1]),
            port_min: 20000,
            port_max: 39999,
        }
    }
}

/// A Fleet created at start.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FleetSeed {
    /// The Fleet's name, a DNS label.
    pub name: String,
    /// Its `spec.replicas`.
    pub replicas: i32,
}

/// A named regression, active while `when` holds for what is installed.
// No `deny_unknown_fields` here: serde cannot combine it with `flatten`. The flattened
// `FaultKind` denies unknown fields itself, so a misspelt key is still an error.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct FaultProfile {
    /// Its name in `upsoak_sim_fault_active{fault}` and in logs; unique.
    pub name: String,
    /// When it is active; always when left out.
    #[serde(default)]
    pub when: FaultCondition,
    /// What it does (`kind: …` and that kind's keys).
    #[serde(flatten)]
    pub kind: FaultKind,
}

/// When a fault is active: every given part must hold; an empty condition is always true.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FaultCondition {
    /// Active while this version is installed.
    #[serde(default)]
    pub version: Option<String>,
    /// Active while this gate has this value (`{ name: X, enabled: true }`).
    #[serde(default)]
    pub gate: Option<GateCondition>,
}

/// A feature gate and the value that makes a fault active.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GateCondition {
    /// The gate, as a version of `versions` names it.
    pub name: String,
    /// The value it must have (its effective value, defaults included).
    pub enabled: bool,
}

/// What a fault does.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum FaultKind {
    /// Allocations take `multiplier` × the normal latency plus `added`.
    AllocationLatency {
        /// Factor on `allocation.latency`, >= 0; 1 when left out.
        #[serde(default = "one")]
        multiplier: f64,
        /// Latency added after the factor; none when left out.
        #[serde(default, with = "config_duration")]
        added: Duration,
    },
    /// This fraction of allocations fails with a server error.
    AllocationFailures {
        /// Fraction of allocations, 0..1.
        rate: f64,
    },
    /// Ready or Allocated GameServers fall into `state` at `per_second` (fraction per second).
    GameServerFailures {
        /// Fraction of Ready and Allocated servers failing per second, 0..1.
        per_second: f64,
        /// The state they fall into; Error when left out.
        #[serde(default = "default_failure_state")]
        state: FailureState,
    },
    /// Fleet reconciliation stops: nothing is created or removed.
    ReconcileStall,
    /// The simulated controller's memory grows by `bytes_per_second`.
    MemoryGrowth {
        /// Growth per second, >= 0.
        bytes_per_second: f64,
    },
    /// Upgrade-time: inside an install window whose target matches `when`, this fraction of
    /// the Allocated GameServers (rounded up) is shut down, each at a random moment in the
    /// first half of the window; their games end and their Fleet replaces them.
    UpgradeKillsAllocated {
        /// Fraction of the Allocated GameServers at the window's start, 0..1.
        fraction: f64,
    },
    /// Upgrade-time: an install window whose target matches `when` lasts `factor` × longer.
    UpgradeStalls {
        /// Factor on `upgrade_window`, >= 1; with several, the largest applies.
        factor: f64,
    },
    /// Upgrade-time: every game port stops answering (datagrams are dropped unanswered) for
    /// `duration` from the start of an install window whose target matches `when`.
    UpgradeDropsGameTraffic {
        /// How long from the window's start; it may outlast the window.
        #[serde(with = "config_duration")]
        duration: Duration,
    },
}

fn one() -> f64 {
    1.0
}
fn default_failure_state() -> FailureState {
    FailureState::Error
}

/// The state a failing GameServer falls into.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub enum FailureState {
    Error,
    Unhealthy,
}

impl FaultKind {
    /// The kind's name, as in the config and in logs.
    pub fn name(&self) -> &'static str {
        match self {
            FaultKind::AllocationLatency { .. } => "allocation_latency",
            FaultKind::AllocationFailures { .. } => "allocation_failures",
            FaultKind::GameServerFailures { .. } => "game_server_failures",
            FaultKind::ReconcileStall => "reconcile_stall",
            FaultKind::MemoryGrowth { .. } => "memory_growth",
            FaultKind::UpgradeKillsAllocated { .. } => "upgrade_kills_allocated",
            FaultKind::UpgradeStalls { .. } => "upgrade_stalls",
            FaultKind::UpgradeDropsGameTraffic { .. } => "upgrade_drops_game_traffic",
        }
    }

    /// True for the upgrade-time kinds: active only inside an install window whose target
    /// matches the fault's `when`, never in steady state.
    pub fn during_upgrade(&self) -> bool {
        matches!(
            self,
            FaultKind::UpgradeKillsAllocated { .. }
                | FaultKind::UpgradeStalls { .. }
                | FaultKind::UpgradeDropsGameTraffic { .. }
        )
    }
}

/// What the configuration is called in errors: `invalid configuration `<source>` (N problems):`.
const WHAT: &str = "configuration";

impl SimConfig {
    /// Reads and validates a YAML file.
    /// A file overlays the built-in default ([`SimConfig::parse`]): one holding only `faults:`
    /// or `fleets:` runs the default versions with them.
    pub fn load(path: &Path) -> Result<SimConfig, Invalid> {
        let source = path.display().to_string();
        let text = upsoak_common::yaml::read(path)
            .map_err(|message| Invalid::single(WHAT, &source, message))?;
        SimConfig::parse(&text, &source)
    }

    /// The built-in default configuration.
    pub fn default_config() -> Result<SimConfig, Invalid> {
        SimConfig::parse_over(DEFAULT_CONFIG_YAML, "<built-in default>", None)
    }

    /// Parses and validates YAML text over the built-in default: each top-level key the text
    /// leaves out (`versions`, `initial`, `tunables`, `namespace`) is the default's, each it
    /// sets replaces the default's whole; `source` names the text in errors.
    pub fn parse(text: &str, source: &str) -> Result<SimConfig, Invalid> {
        let default =
            default_document().map_err(|e| Invalid::single(WHAT, "<built-in default>", e))?;
        SimConfig::parse_over(text, source, Some(default))
    }

    /// Parses and validates YAML text, its missing top-level keys taken from `base`.
    fn parse_over(
        text: &str,
        source: &str,
        base: Option<serde_yaml::Mapping>,
    ) -> Result<SimConfig, Invalid> {
        // Size, nesting and alias expansion are bounded before serde_yaml builds anything.
        upsoak_common::yaml::check(text, source).map_err(|e| {
            let mut p = Problems::new();
            p.push(e.at(), e.message);
            p.invalid(WHAT, source)
        })?;
        let mut value: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| {
            let at = e
                .location()
                .map(|l| format!("{source}:{}:{}", l.line(), l.column()))
                .unwrap_or_default();
            let mut p = Problems::new();
            p.push(at, e.to_string());
            p.invalid(WHAT, source)
        })?;
        // Merge keys (`<<: *anchor`) let the default config share gate tables between releases.
        value
            .apply_merge()
            .map_err(|e| Invalid::single(WHAT, source, format!("merge keys: {e}")))?;
        if let (Some(base), serde_yaml::Value::Mapping(m)) = (base, &mut value) {
            for (k, v) in base {
                if !m.contains_key(&k) {
                    m.insert(k, v);
                }
            }
        }
        let config: SimConfig = serde_path_to_error::deserialize(value).map_err(|e| {
            let mut p = Problems::new();
            p.push(e.path().to_string(), e.inner().to_string());
            p.invalid(WHAT, source)
        })?;
        config
            .problems()
            .into_result(())
            .map_err(|p| p.invalid(WHAT, source))?;
        Ok(config)
    }

    /// Every semantic problem, with its path.
    pub fn problems(&self) -> Problems {
        let mut p = Problems::new();
        if !is_dns_label(&self.namespace) {
            p.push(
                "namespace",
                format!(
                    "`{}` is not a DNS label (lowercase letters, digits, '-')",
                    self.namespace
                ),
            );
        }
        if self.versions.is_empty() {
            p.push("versions", "at least one version is required");
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, v) in self.versions.iter().enumerate() {
            let at = format!("versions[{i}]");
            if parse_version(&v.version).is_none() {
                p.push(
                    format!("{at}.version"),
                    format!("`{}` is not MAJOR.MINOR.PATCH", v.version),
                );
            }
            if !seen.insert(v.version.as_str()) {
                p.push(
                    format!("{at}.version"),
                    format!("`{}` is listed twice", v.version),
                );
            }
            for name in v.gates.keys() {
                if !is_gate_name(name) {
                    p.push(format!("{at}.gates.{name}"), GATE_NAME_RULE);
                }
            }
        }
        for (name, t) in &self.tunables {
            match t {
                TunableSpec::Range { min, max } if min > max => p.push(
                    format!("tunables.{name}"),
                    format!("min {min} is above max {max}"),
                ),
                TunableSpec::Enum { values } if values.is_empty() => p.push(
                    format!("tunables.{name}.values"),
                    "at least one value is required",
                ),
                _ => {}
            }
        }
        if let Err(errs) = self.check_install(&self.initial) {
            p.extend_under("initial", errs);
        }
        if self.lifecycle.tick.is_zero() {
            p.push("lifecycle.tick", "must be above zero");
        }
        if self.allocation.pick_window == 0 {
            p.push("allocation.pick_window", "must be at least 1");
        }
        self.game.check(&mut p);
        let mut fleet_names = std::collections::BTreeSet::new();
        for (i, f) in self.fleets.iter().enumerate() {
            let at = format!("fleets[{i}]");
            if !is_dns_label(&f.name) {
                p.push(
                    format!("{at}.name"),
                    format!("`{}` is not a DNS label", f.name),
                );
            }
            if !fleet_names.insert(f.name.as_str()) {
                p.push(
                    format!("{at}.name"),
                    format!("`{}` is listed twice", f.name),
                );
            }
            if f.replicas < 0 {
                p.push(
                    format!("{at}.replicas"),
                    format!("{} is negative", f.replicas),
                );
            }
        }
        let mut fault_names = std::collections::BTreeSet::new();
        for (i, f) in self.faults.iter().enumerate() {
            let at = format!("faults[{i}]");
            if f.name.is_empty() {
                p.push(format!("{at}.name"), "must not be empty");
            }
            if !fault_names.insert(f.name.as_str()) {
                p.push(
                    format!("{at}.name"),
                    format!("`{}` is listed twice", f.name),
                );
            }
            if let Some(v) = &f.when.version
                && self.version(v).is_none()
            {
                p.push(
                    format!("{at}.when.version"),
                    format!("unknown version `{v}`"),
                );
            }
            if let Some(g) = &f.when.gate
                && !self.versions.iter().any(|v| v.gates.contains_key(&g.name))
            {
                p.push(
                    format!("{at}.when.gate.name"),
                    format!("no version has a gate `{}`", g.name),
                );
            }
            match &f.kind {
                FaultKind::AllocationLatency { multiplier, .. }
                    if !(multiplier.is_finite() && *multiplier >= 0.0) =>
                {
                    p.push(
                        format!("{at}.multiplier"),
                        format!("{multiplier} is not a finite number >= 0"),
                    )
                }
                FaultKind::AllocationFailures { rate } if !(0.0..=1.0).contains(rate) => {
                    p.push(format!("{at}.rate"), format!("{rate} is not within 0..1"))
                }
                FaultKind::GameServerFailures { per_second, .. }
                    if !(0.0..=1.0).contains(per_second) =>
                {
                    p.push(
                        format!("{at}.per_second"),
                        format!("{per_second} is not within 0..1"),
                    )
                }
                FaultKind::MemoryGrowth { bytes_per_second }
                    if !(bytes_per_second.is_finite() && *bytes_per_second >= 0.0) =>
                {
                    p.push(
                        format!("{at}.bytes_per_second"),
                        format!("{bytes_per_second} is not >= 0"),
                    )
                }
                FaultKind::UpgradeKillsAllocated { fraction }
                    if !(0.0..=1.0).contains(fraction) =>
                {
                    p.push(
                        format!("{at}.fraction"),
                        format!("{fraction} is not within 0..1"),
                    )
                }
                FaultKind::UpgradeStalls { factor } if !(factor.is_finite() && *factor >= 1.0) => p
                    .push(
                        format!("{at}.factor"),
                        format!("{factor} is not a finite number >= 1"),
                    ),
                FaultKind::UpgradeDropsGameTraffic { duration } if duration.is_zero() => {
                    p.push(format!("{at}.duration"), "must be above zero")
                }
                _ => {}
            }
        }
        p
    }

    /// The known version named `v`.
    pub fn version(&self, v: &str) -> Option<&VersionSpec> {
        self.versions.iter().find(|s| s.version == v)
    }

    /// Validates an install the way the Agones chart and controller do; each problem names the
    /// field (`version`, `featureGates.X`, `tunables.Y`).
    pub fn check_install(&self, install: &Install) -> Result<(), Problems> {
        let mut p = Problems::new();
        let Some(spec) = self.version(&install.version) else {
            let known: Vec<&str> = self.versions.iter().map(|v| v.version.as_str()).collect();
            p.push(
                "version",
                format!(
                    "unknown version `{}` (known: {})",
                    install.version,
                    known.join(", ")
                ),
            );
            return Err(p);
        };
        for (gate, enabled) in &install.feature_gates {
            let at = format!("featureGates.{gate}");
            match spec.gates.get(gate) {
                None => p.push(
                    at,
                    format!("unknown feature gate for Agones {}", install.version),
                ),
                Some(stage) if !enabled && !stage.can_disable() => p.push(
                    at,
                    format!(
                        "gate is {stage} in Agones {} and cannot be disabled",
                        install.version
                    ),
                ),
                Some(_) => {}
            }
        }
        for (name, value) in &install.tunables {
            let at = format!("tunables.{name}");
            match self.tunables.get(name) {
                None => p.push(at, "unknown tunable"),
                Some(spec) => {
                    if let Some(problem) = spec.problem(value) {
                        p.push(at, problem);
                    }
                }
            }
        }
        p.into_result(())
    }

    /// The gate values an install results in: each gate of the version at its default, then
    /// the install's overrides.
    pub fn effective_gates(&self, install: &Install) -> BTreeMap<String, bool> {
        let mut gates: BTreeMap<String, bool> = self
            .version(&install.version)
            .map(|v| {
                v.gates
                    .iter()
                    .map(|(k, s)| (k.clone(), s.default_enabled()))
                    .collect()
            })
            .unwrap_or_default();
        for (k, v) in &install.feature_gates {
            gates.insert(k.clone(), *v);
        }
        gates
    }
}

#[cfg(test)]
mod tests;
