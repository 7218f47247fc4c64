//! Active probes: the Agones control plane's readiness read through the Kubernetes API,
//! exported as `upsoak_agent_probe_success{probe}` so Prometheus keeps it and the SLOs judge it.

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

/// The Deployments probed, in `agones-system`.
pub const DEPLOYMENTS: [&str; 2] = ["agones-controller", "agones-allocator"];
pub const NAMESPACE: &str = "agones-system";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProbeLabel {
    pub probe: String,
}

/// Probe metrics.
#[derive(Clone, Default)]
pub struct ProbeMetrics {
    pub success: Family<ProbeLabel, Gauge>,
    pub duration: Family<ProbeLabel, Gauge<f64, std::sync::atomic::AtomicU64>>,
}

impl ProbeMetrics {
    pub fn register(&self, r: &mut Registry) {
        r.register(
            "upsoak_agent_probe_success",
            "1 when the last probe succeeded (Deployment ready through the Kubernetes API)",
            self.success.clone(),
        );
        r.register(
            "upsoak_agent_probe_duration_seconds",
            "Duration of the last probe",
            self.duration.clone(),
        );
    }
}

/// Probes each Deployment once: ready when it has at least one ready replica and no
/// unavailable one.
pub async fn probe_once(api: &Api<Deployment>, m: &ProbeMetrics) {
    for name in DEPLOYMENTS {
        let start = Instant::now();
        let ok = match tokio::time::timeout(Duration::from_secs(5), api.get(name)).await {
            Ok(Ok(d)) => d.status.is_some_and(|s| {
                s.ready_replicas.unwrap_or(0) >= 1 && s.unavailable_replicas.unwrap_or(0) == 0
            }),
            _ => false,
        };
        let l = ProbeLabel {
            probe: name.to_owned(),
        };
        m.success.get_or_create(&l).set(i64::from(ok));
        m.duration
            .get_or_create(&l)
            .set(start.elapsed().as_secs_f64());
    }
}

/// Probes every `every` until `shutdown`.
pub async fn run(
    client: kube::Client,
    every: Duration,
    m: ProbeMetrics,
    shutdown: CancellationToken,
) {
    let api: Api<Deployment> = Api::namespaced(client, NAMESPACE);
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => probe_once(&api, &m).await,
        }
    }
}

/// A kube client from a URL, else kubeconfig or in-cluster; kube-rs' retry is off so a
/// failing API shows at once.
pub async fn client(server: Option<&str>) -> Result<kube::Client, String> {
    // Two TLS stacks meet in this binary (kube with ring, the Prometheus client with aws-lc-rs);
    // rustls then needs the process-wide provider named. Installing twice is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut config = match server {
        Some(url) => kube::Config::new(url.parse().map_err(|_| format!("`{url}` is not a URL"))?),
        None => kube::Config::infer()
            .await
            .map_err(|e| format!("no Kubernetes configuration: {e}"))?,
    };
    config.default_retry = false;
    kube::Client::try_from(config).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn probes_follow_the_upgrade_window_of_the_simulator() {
        let yaml = format!(
            "{}\nupgrade_window: 1500ms\ngame: {{ port_min: 61000, port_max: 61099 }}\n",
            upsoak_sim::config::DEFAULT_CONFIG_YAML
        );
        let cfg = upsoak_sim::config::SimConfig::parse(&yaml, "t").unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let stop = CancellationToken::new();
        let (sim, _h) = upsoak_sim::server::Sim::start(cfg, listener, stop.clone(), 1).unwrap();
        let url = format!("http://{}", sim.addr);
        let api: Api<Deployment> = Api::namespaced(client(Some(&url)).await.unwrap(), NAMESPACE);
        let m = ProbeMetrics::default();
        let get = |m: &ProbeMetrics, p: &str| {
            m.success
                .get(&ProbeLabel { probe: p.into() })
                .map(|g| g.get())
        };
        probe_once(&api, &m).await;
        assert_eq!(get(&m, "agones-controller"), Some(1));
        reqwest::Client::new()
            .post(format!("{url}/upsoak/v1/install"))
            .json(&serde_json::json!({"version": "1.59.0"}))
            .send()
            .await
            .unwrap();
        probe_once(&api, &m).await;
        assert_eq!(get(&m, "agones-controller"), Some(0));
        assert_eq!(get(&m, "agones-allocator"), Some(0));
        tokio::time::sleep(Duration::from_millis(2000)).await;
        probe_once(&api, &m).await;
        assert_eq!(get(&m, "agones-allocator"), Some(1));
        // An API that is not there fails the probe, never passes it.
        let dead: Api<Deployment> =
            Api::namespaced(client(Some("http://127.0.0.1:1")).await.unwrap(), NAMESPACE);
        probe_once(&dead, &m).await;
        assert_eq!(get(&m, "agones-controller"), Some(0));
        stop.cancel();
    }
}
