//! The sidecar process: its configuration file (with `UPSOAK_` environment overrides), and the
//! HTTP server for `/metrics`, `/healthz` and `/readyz`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::producer::ProducerConfig;

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
    pub wanderer: WandererConfig,
    #[serde(default)]
    pub producer: ProducerConfig,
}

fn default_listen() -> String {
    "127.0.0.1:9464".to_owned()
}

/// The Wanderer's part of the configuration.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WandererConfig {
    /// Off: the sidecar only produces load.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The configuration space file.
    pub space: PathBuf,
    pub seed: u64,
    /// `random` or `coverage`.
    #[serde(default = "default_strategy")]
    pub strategy: String,
    #[serde(default)]
    pub schedule: ScheduleConfig,
    /// Stop after this many steps; unset runs until stopped.
    #[serde(default)]
    pub max_steps: Option<u64>,
    /// Longest an install may take before it is recorded as failed.
    #[serde(default = "default_apply_timeout", with = "humantime_serde")]
    pub apply_timeout: Duration,
    pub applier: ApplierConfig,
}

fn yes() -> bool {
    true
}
fn default_strategy() -> String {
    "coverage".to_owned()
}
fn default_apply_timeout() -> Duration {
    Duration::from_secs(900)
}

/// When transitions happen: a preset or a period, with jitter.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    /// `fast` (30 min) or `slow` (1 day); `period` overrides it.
    #[serde(default)]
    pub preset: Option<String>,
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
            preset: Some("fast".to_owned()),
            period: None,
            jitter: default_jitter(),
        }
    }
}

impl ScheduleConfig {
    /// The period this configuration means.
    pub fn period(&self) -> Result<Duration, String> {
        if let Some(p) = self.period {
            return Ok(p);
        }
        match self.preset.as_deref() {
            None | Some("fast") => Ok(Duration::from_secs(30 * 60)),
            Some("slow") => Ok(Duration::from_secs(24 * 3600)),
            Some(other) => Err(format!(
                "unknown preset `{other}` (fast: 30m, slow: 1d; or set `period`)"
            )),
        }
    }
}

/// How configurations are installed.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ApplierConfig {
    /// The simulator's control endpoint.
    Sim { url: String },
    /// `helm upgrade --install` of the Agones chart.
    Helm {
        #[serde(default = "default_helm")]
        helm: PathBuf,
        #[serde(default = "default_release")]
        release: String,
        #[serde(default = "default_chart")]
        chart: String,
        #[serde(default = "default_agones_ns")]
        namespace: String,
        #[serde(default = "default_helm_timeout", with = "humantime_serde")]
        timeout: Duration,
        #[serde(default)]
        values: Vec<PathBuf>,
    },
}

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

impl SidecarConfig {
    /// Reads `path`, applies `UPSOAK_…` environment overrides (`UPSOAK_WANDERER__SEED=7`:
    /// sections separated by `__`), rejects unknown keys, and checks every value.
    pub fn load(path: &Path) -> Result<SidecarConfig, Vec<String>> {
        if !path.exists() {
            return Err(vec![format!("{}: no such file", path.display())]);
        }
        let built = config::Config::builder()
            .add_source(config::File::from(path).format(config::FileFormat::Yaml))
            .add_source(
                config::Environment::with_prefix("UPSOAK")
                    .prefix_separator("_")
                    .separator("__")
                    .try_parsing(true),
            )
            .build()
            .map_err(|e| vec![format!("{}: {e}", path.display())])?;
        let cfg: SidecarConfig = built
            .try_deserialize()
            .map_err(|e| vec![format!("{}: {e}", path.display())])?;
        let problems = cfg.problems();
        if problems.is_empty() {
            Ok(cfg)
        } else {
            Err(problems
                .into_iter()
                .map(|p| format!("{}: {p}", path.display()))
                .collect())
        }
    }

    /// Every problem, with its path.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.listen.parse::<std::net::SocketAddr>().is_err() {
            p.push(format!("listen: `{}` is not HOST:PORT", self.listen));
        }
        if !matches!(self.wanderer.strategy.as_str(), "random" | "coverage") {
            p.push(format!(
                "wanderer.strategy: `{}` is not random or coverage",
                self.wanderer.strategy
            ));
        }
        if let Err(e) = self.wanderer.schedule.period() {
            p.push(format!("wanderer.schedule.preset: {e}"));
        }
        if !(0.0..=1.0).contains(&self.wanderer.schedule.jitter) {
            p.push(format!(
                "wanderer.schedule.jitter: {} is not within 0..1",
                self.wanderer.schedule.jitter
            ));
        }
        if let ApplierConfig::Sim { url } = &self.wanderer.applier
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            p.push(format!(
                "wanderer.applier.url: `{url}` is not an http(s) URL"
            ));
        }
        p.extend(self.producer.problems("producer"));
        p
    }
}

/// Readiness: set once the sidecar has observed what is installed and built its clients.
#[derive(Clone, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    pub fn set(&self) {
        self.0.store(true, Ordering::Release);
    }
    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

#[derive(Clone)]
struct ServerState {
    registry: Arc<Registry>,
    ready: Readiness,
}

/// Serves `/metrics`, `/healthz`, `/readyz` on `listener` until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    registry: Registry,
    ready: Readiness,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(ServerState {
            registry: Arc::new(registry),
            ready,
        });
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

async fn metrics(State(s): State<ServerState>, headers: HeaderMap) -> Response {
    upsoak_common::exposition::response(&s.registry, &headers)
}

async fn readyz(State(s): State<ServerState>) -> Response {
    if s.ready.is_ready() {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, text: &str) -> PathBuf {
        let p =
            std::env::temp_dir().join(format!("upsoak-sidecar-{}-{name}.yaml", std::process::id()));
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
        assert_eq!(
            c.wanderer.schedule.period().unwrap(),
            Duration::from_secs(86_400)
        );
        assert_eq!(c.wanderer.strategy, "coverage");
        assert_eq!(c.producer, ProducerConfig::default());
        let _ = std::fs::remove_file(p);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_reported_with_their_path() {
        let p = write(
            "bad",
            "state_dir: /tmp/x\nwanderer:\n  space: s.yaml\n  seed: 4\n  sed: 5\n  applier: { kind: sim, url: \"x\" }\n",
        );
        let e = SidecarConfig::load(&p).unwrap_err().join("\n");
        assert!(e.contains("unknown field `sed`"), "{e}");
        let p2 = write(
            "bad2",
            "listen: nowhere\nstate_dir: /tmp/x\nwanderer:\n  space: s.yaml\n  seed: 4\n  strategy: greedy\n  schedule: { period: 1w, jitter: 3 }\n  applier: { kind: sim, url: \"ftp://x\" }\nproducer: { allocation_rate: -1 }\n",
        );
        let e = SidecarConfig::load(&p2).unwrap_err().join("\n");
        for want in [
            "listen: `nowhere`",
            "wanderer.strategy: `greedy`",
            "wanderer.schedule.jitter: 3",
            "wanderer.applier.url: `ftp://x`",
            "producer.allocation_rate: -1",
        ] {
            assert!(e.contains(want), "missing {want:?} in {e}");
        }
        let _ = std::fs::remove_file(p);
        let _ = std::fs::remove_file(p2);
    }
}
