//! The sidecar's configuration file: YAML with `UPSOAK_` environment overrides, unknown keys
//! refused, every value checked with its path.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use upsoak_common::problems::{Invalid, Problems};

use crate::producer::ProducerConfig;
use crate::wanderer::apply::{OnStuck, ReuseValues};
use crate::wanderer::walk::Strategy;

pub mod bounds;

/// What the configuration file is called in errors.
const WHAT: &str = "configuration";

/// The sidecar's configuration file.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SidecarConfig {
    /// Where `/metrics`, `/healthz` and `/readyz` are served.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Directory of the journal; must survive restarts.
    pub state_dir: PathBuf,
    /// Kubernetes API URL (e.g. the simulator's); without it, kubeconfig or in-cluster config.
    #[serde(default)]
    pub kube_server: Option<String>,
    /// Connect, read and write timeout of every Kubernetes API request (Fleet scaling,
    /// allocations, `/version`): a hung API server fails the request instead of holding a loop.
    #[serde(default = "default_kube_timeout", with = "humantime_serde")]
    pub kube_timeout: Duration,
    /// The Wanderer: the walk, its schedule and how it installs.
    pub wanderer: WandererConfig,
    /// The Producer: allocations, sessions and Fleet scaling.
    #[serde(default)]
    pub producer: ProducerConfig,
}

fn default_listen() -> String {
    "127.0.0.1:9464".to_owned()
}
fn default_kube_timeout() -> Duration {
    crate::producer::DEFAULT_KUBE_TIMEOUT
}

/// The Wanderer's part of the configuration.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WandererConfig {
    /// Off: the sidecar only produces load.
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    /// The configuration space file.
    pub space: PathBuf,
    /// The walk's seed: the same seed and space give the same walk and the same waits.
    pub seed: u64,
    /// How each next state is chosen: `random` or `coverage`.
    #[serde(default = "default_strategy")]
    pub strategy: Strategy,
    /// When transitions happen.
    #[serde(default)]
    pub schedule: ScheduleConfig,
    /// Stop after this many steps; unset runs until stopped.
    #[serde(default)]
    pub max_steps: Option<u64>,
    /// Longest an install may take before it is recorded as failed.
    #[serde(default = "default_apply_timeout", with = "humantime_serde")]
    pub apply_timeout: Duration,
    /// How configurations are installed: the simulator's endpoint or helm.
    pub applier: ApplierConfig,
}

fn default_enabled() -> bool {
    true
}
fn default_strategy() -> Strategy {
    Strategy::Coverage
}
fn default_apply_timeout() -> Duration {
    Duration::from_secs(900)
}

/// A named schedule period.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase", try_from = "String")]
pub enum Preset {
    /// A transition every 30 minutes.
    Fast,
    /// A transition a day.
    Slow,
}

impl TryFrom<String> for Preset {
    type Error = String;
    fn try_from(s: String) -> Result<Preset, String> {
        match s.as_str() {
            "fast" => Ok(Preset::Fast),
            "slow" => Ok(Preset::Slow),
            other => Err(format!(
                "unknown preset `{other}` (fast: 30m, slow: 1d; or set `period`)"
            )),
        }
    }
}

/// When transitions happen: a preset or a period, with jitter.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    /// `fast` (30 min) or `slow` (1 day); `period` overrides it.
    #[serde(default)]
    pub preset: Option<Preset>,
    /// Any duration: `20s`, `30m`, `1d`, `1w`.
    #[serde(default, with = "humantime_serde")]
    pub period: Option<Duration>,
    /// Fraction of the period added or taken at random.
    #[serde(default = "default_jitter")]
    pub jitter: f64,
}

fn default_jitter() -> f64 {
    0.1
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        ScheduleConfig {
            preset: Some(Preset::Fast),
            period: None,
            jitter: default_jitter(),
        }
    }
}

impl ScheduleConfig {
    /// The period this configuration means: `period`, else the preset's (`fast` if none).
    pub fn period(&self) -> Duration {
        match (self.period, self.preset) {
            (Some(p), _) => p,
            (None, None | Some(Preset::Fast)) => Duration::from_secs(30 * 60),
            (None, Some(Preset::Slow)) => Duration::from_secs(24 * 3600),
        }
    }
}

/// How configurations are installed.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ApplierConfig {
    /// The simulator's control endpoint.
    Sim {
        /// The simulator's base URL (`http://HOST:PORT`).
        url: String,
    },
    /// `helm upgrade --install` of the Agones chart.
    Helm {
        /// The helm executable.
        #[serde(default = "default_helm")]
        helm: PathBuf,
        /// The Helm release name.
        #[serde(default = "default_release")]
        release: String,
        /// The chart, `REPO/NAME`.
        #[serde(default = "default_chart")]
        chart: String,
        /// The namespace Agones is installed in.
        #[serde(default = "default_agones_ns")]
        namespace: String,
        /// helm's own `--timeout` for an install to become ready; shorter than
        /// `wanderer.apply_timeout`, so helm's `--atomic` rollback runs before helm is stopped.
        #[serde(default = "default_helm_timeout", with = "humantime_serde")]
        timeout: Duration,
        /// The user's values files for the Agones install (their ServiceMonitor switch,
        /// namespaces, registry, Service types …), passed to every upgrade before the generated
        /// one. `values` is the old name.
        #[serde(default, alias = "values")]
        values_files: Vec<PathBuf>,
        /// Which of the last release's values an upgrade keeps: `reset-then-reuse`
        /// (`--reset-then-reuse-values`, Helm ≥ 3.14), `reuse` (`--reuse-values`) or `none`.
        /// Unset with no `values_files` is refused: every upgrade would reset the install.
        #[serde(default)]
        reuse_values: Option<ReuseValues>,
        /// A release left `pending-*` (helm killed mid-operation): `rollback` to the revision
        /// before it, or `fail` (the Wanderer stops; the Producer goes on).
        #[serde(default = "default_on_stuck")]
        on_stuck: OnStuck,
        /// How long a pending release is waited for before `on_stuck` applies.
        #[serde(default = "default_stuck_wait", with = "humantime_serde")]
        stuck_wait: Duration,
        /// After `wanderer.apply_timeout`, helm's process group gets SIGTERM, and SIGKILL this
        /// much later.
        #[serde(default = "default_kill_grace", with = "humantime_serde")]
        kill_grace: Duration,
        /// `--atomic --wait` on every upgrade (default on: a failed upgrade is rolled back by
        /// helm to the last good release, leaving the cluster at a known configuration). Off,
        /// helm returns once the objects are applied and the Wanderer's rollout guard alone
        /// checks images and readiness: for clusters without a LoadBalancer (kind, minikube,
        /// bare metal), where `--wait` waits for the allocator and ping Services' ingress until
        /// the timeout (helm's pkg/kube/ready.go `serviceReady`).
        #[serde(default = "default_wait")]
        wait: bool,
    },
}

/// What `wanderer.apply_timeout` must leave helm beyond its two waits (upgrade, then the
/// `--atomic` rollback): rendering, the release records, and the first Kubernetes calls.
pub const HELM_MARGIN: Duration = Duration::from_secs(60);

fn default_helm() -> PathBuf {
    PathBuf::from("helm")
}
fn default_release() -> String {
    "agones".to_owned()
}
fn default_chart() -> String {
    "agones/agones".to_owned()
}
fn default_agones_ns() -> String {
    "agones-system".to_owned()
}
fn default_helm_timeout() -> Duration {
    Duration::from_secs(600)
}
fn default_on_stuck() -> OnStuck {
    OnStuck::Rollback
}
fn default_stuck_wait() -> Duration {
    Duration::from_secs(300)
}
fn default_wait() -> bool {
    true
}
fn default_kill_grace() -> Duration {
    Duration::from_secs(10)
}

impl SidecarConfig {
    /// Reads `path`, applies `UPSOAK_…` environment overrides (`UPSOAK_WANDERER__SEED=7`:
    /// sections separated by `__`), rejects unknown keys, and checks every value.
    pub fn load(path: &Path) -> Result<SidecarConfig, Invalid> {
        let name = path.display().to_string();
        let single = |message: String| Invalid::single(WHAT, &name, message);
        if !path.exists() {
            return Err(single("no such file".to_owned()));
        }
        // The file is bounded (size, nesting, alias expansion) before the config crate's YAML
        // parser, which has no alias limit, sees it; the environment overrides apply on top.
        let text = upsoak_common::yaml::read(path).map_err(single)?;
        upsoak_common::yaml::check(&text, &name).map_err(|e| {
            let mut p = Problems::new();
            p.push(e.at(), e.message);
            p.invalid(WHAT, &name)
        })?;
        let built = config::Config::builder()
            .add_source(config::File::from_str(&text, config::FileFormat::Yaml))
            .add_source(
                config::Environment::with_prefix("UPSOAK")
                    .prefix_separator("_")
                    .separator("__")
                    .try_parsing(true),
            )
            .build()
            .map_err(|e| single(e.to_string()))?;
        // The config crate stops at the first error it finds while deserializing; the checks
        // below then report every remaining problem at once.
        let cfg: SidecarConfig = built.try_deserialize().map_err(|e| single(e.to_string()))?;
        cfg.problems()
            .into_result(())
            .map_err(|p| p.invalid(WHAT, &name))?;
        Ok(cfg)
    }

    /// Every problem, with its path.
    pub fn problems(&self) -> Problems {
        let mut p = Problems::new();
        if self.listen.parse::<std::net::SocketAddr>().is_err() {
            p.push("listen", format!("`{}` is not HOST:PORT", self.listen));
        }
        if !(0.0..=1.0).contains(&self.wanderer.schedule.jitter) {
            p.push(
                "wanderer.schedule.jitter",
                format!("{} is not within 0..1", self.wanderer.schedule.jitter),
            );
        }
        if let ApplierConfig::Sim { url } = &self.wanderer.applier
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            p.push(
                "wanderer.applier.url",
                format!("`{url}` is not an http(s) URL"),
            );
        }
        if let ApplierConfig::Helm {
            timeout,
            values_files,
            reuse_values,
            ..
        } = &self.wanderer.applier
        {
            if reuse_values.is_none() && values_files.is_empty() {
                p.push(
                    "wanderer.applier.reuse_values",
                    "unset, and no `values_files`: `helm upgrade` would reset the install's values (ServiceMonitor, namespaces, registry, Service types) to the chart's defaults at the first transition; list your install's values files in `values_files`, or set `reuse_values: reset-then-reuse` (or `none` to accept the reset)",
                );
            }
            // helm's `--atomic` waits up to `--timeout` for the upgrade, then runs a rollback
            // that waits up to `--timeout` again (pkg/action/upgrade.go `failRelease`, which
            // calls the rollback with the upgrade's Timeout and Wait): helm may take twice its
            // timeout, and stopping it in the second wait leaves the release `pending-rollback`.
            let need = timeout.saturating_mul(2).saturating_add(HELM_MARGIN);
            if self.wanderer.apply_timeout < need {
                p.push(
                    "wanderer.apply_timeout",
                    format!(
                        "{:?} is shorter than 2 × helm's `wanderer.applier.timeout` ({timeout:?}) + {HELM_MARGIN:?} = {need:?}: a failed --atomic upgrade waits up to the timeout again for its rollback, and helm stopped then leaves the release pending-rollback; set apply_timeout to at least {need:?} (and the Deployment's terminationGracePeriodSeconds above it)",
                        self.wanderer.apply_timeout
                    ),
                );
            }
        }
        // The Producer's checks compute with its durations (the capacity check adds the session
        // lengths), so they see each one clamped into its bounds; `bounds` reports those outside.
        p.extend_under("producer", bounds::clamped(&self.producer).problems());
        p.extend_under("", bounds::problems(self));
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, text: &str) -> PathBuf {
        let p =
            std::env::temp_dir().join(format!("upsoak-config-{}-{name}.yaml", std::process::id()));
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn loads_with_defaults_and_presets() {
        let p = write(
            "ok",
            "state_dir: /tmp/x\nwanderer:\n  space: s.yaml\n  seed: 4\n  schedule: { preset: slow }\n  applier: { kind: sim, url: \"http://127.0.0.1:1\" }\n",
        );
        let c = SidecarConfig::load(&p).unwrap();
        assert_eq!(c.wanderer.schedule.period(), Duration::from_secs(86_400));
        assert_eq!(c.wanderer.strategy, Strategy::Coverage);
        assert_eq!(c.producer, ProducerConfig::default());
        let _ = std::fs::remove_file(p);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_reported_with_their_path() {
        let p = write(
            "bad",
            "state_dir: /tmp/x\nwanderer:\n  space: s.yaml\n  seed: 4\n  sed: 5\n  applier: { kind: sim, url: \"x\" }\n",
        );
        let e = SidecarConfig::load(&p).unwrap_err().to_string();
        assert!(e.contains("unknown field `sed`"), "{e}");
        let p2 = write(
            "bad2",
            "listen: nowhere\nstate_dir: /tmp/x\nwanderer:\n  space: s.yaml\n  seed: 4\n  schedule: { period: 1w, jitter: 3 }\n  applier: { kind: sim, url: \"ftp://x\" }\nproducer: { allocation_rate: -1, session: { script: [CRASH, EXIT] } }\n",
        );
        let e = SidecarConfig::load(&p2).unwrap_err().to_string();
        for want in [
            "listen: `nowhere`",
            "wanderer.schedule.jitter: 3",
            "wanderer.applier.url: `ftp://x`",
            "producer.allocation_rate: -1",
            "producer.session.script[0]: `CRASH`: unknown command",
        ] {
            assert!(e.contains(want), "missing {want:?} in {e}");
        }
        // Enumerations are typed: a wrong name is refused with the names allowed.
        let p3 = write(
            "bad3",
            "state_dir: /tmp/x\nwanderer:\n  space: s.yaml\n  seed: 4\n  strategy: greedy\n  applier: { kind: sim, url: \"http://x\" }\n",
        );
        let e = SidecarConfig::load(&p3).unwrap_err().to_string();
        assert!(
            e.contains("`greedy` is not random or coverage for key `wanderer.strategy`"),
            "{e}"
        );
        let p4 = write(
            "bad4",
            "state_dir: /tmp/x\nwanderer:\n  space: s.yaml\n  seed: 4\n  schedule: { preset: hourly }\n  applier: { kind: sim, url: \"http://x\" }\n",
        );
        let e = SidecarConfig::load(&p4).unwrap_err().to_string();
        assert!(e.contains("unknown preset `hourly`"), "{e}");
        for p in [p, p2, p3, p4] {
            let _ = std::fs::remove_file(p);
        }
    }

    #[test]
    fn a_helm_applier_that_would_reset_the_install_is_refused() {
        let p = write(
            "helm-reset",
            "state_dir: /tmp/x\nwanderer:\n  space: s.yaml\n  seed: 4\n  apply_timeout: 5m\n  applier: { kind: helm, timeout: 10m }\n",
        );
        let e = SidecarConfig::load(&p).unwrap_err().to_string();
        for want in [
            "wanderer.applier.reuse_values: unset, and no `values_files`: `helm upgrade` would reset the install's values",
            "wanderer.apply_timeout: 300s is shorter than 2 × helm's `wanderer.applier.timeout` (600s) + 60s = 1260s",
        ] {
            assert!(e.contains(want), "missing {want:?} in {e}");
        }
        let ok = write(
            "helm-ok",
            "state_dir: /tmp/x\nwanderer:\n  space: s.yaml\n  seed: 4\n  apply_timeout: 21m\n  applier: { kind: helm, timeout: 10m, values_files: [/etc/agones/values.yaml], on_stuck: fail }\n",
        );
        let c = SidecarConfig::load(&ok).unwrap();
        let ApplierConfig::Helm {
            values_files,
            reuse_values,
            on_stuck,
            stuck_wait,
            ..
        } = c.wanderer.applier
        else {
            panic!("helm")
        };
        assert_eq!(values_files, [PathBuf::from("/etc/agones/values.yaml")]);
        assert_eq!((reuse_values, on_stuck), (None, OnStuck::Fail));
        assert_eq!(stuck_wait, Duration::from_secs(300));
        for p in [p, ok] {
            let _ = std::fs::remove_file(p);
        }
        // The shipped deployment's configuration passes these checks.
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/base/sidecar.yaml");
        SidecarConfig::load(&shipped).unwrap();
    }
}
