//! Active probes: the Agones control plane's readiness read through the Kubernetes API,
//! exported as `upsoak_agent_probe_success{probe}` so Prometheus keeps it and the SLOs judge it.

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use tokio_util::sync::CancellationToken;

use crate::events::{ProbeFinished, ProbeMetrics};

/// The Deployments probed, in Agones' namespace (`--agones-namespace`): the controller, the extensions (webhooks and the
/// Kubernetes API allocation path: `agones-controller-service` selects `agones.dev/role:
/// extensions`, Agones `install/helm/agones/templates/service.yaml`) and the allocator.
pub const DEPLOYMENTS: [&str; 3] = ["agones-controller", "agones-extensions", "agones-allocator"];
/// Where Agones' chart installs by default (`helm install --namespace agones-system`); the
/// agent's `--agones-namespace` overrides it.
pub const DEFAULT_NAMESPACE: &str = "agones-system";

/// Probes each Deployment once: ready when it has at least one ready replica and no
/// unavailable one.
pub async fn probe_once(api: &Api<Deployment>, m: &ProbeMetrics) {
    for name in DEPLOYMENTS {
        let start = Instant::now();
        let (ready, error) = match tokio::time::timeout(Duration::from_secs(5), api.get(name)).await
        {
            Ok(Ok(d)) => (
                d.status.is_some_and(|s| {
                    s.ready_replicas.unwrap_or(0) >= 1 && s.unavailable_replicas.unwrap_or(0) == 0
                }),
                None,
            ),
            Ok(Err(e)) => (false, Some(crate::error::chain(&e))),
            Err(_) => (false, Some("no answer within 5 s".to_owned())),
        };
        ProbeFinished {
            probe: name,
            ready,
            duration: start.elapsed(),
            error: error.as_deref(),
        }
        .emit(m);
    }
}

/// Probes every `every` until `shutdown`.
pub async fn run(
    client: kube::Client,
    namespace: String,
    every: Duration,
    m: ProbeMetrics,
    shutdown: CancellationToken,
) {
    let api: Api<Deployment> = Api::namespaced(client, &namespace);
    let mut tick = tokio::time::interval(every);
    loop {
        // The probe itself is inside the select, so a shutdown does not wait for its timeout.
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = async {
                tick.tick().await;
                probe_once(&api, &m).await;
            } => {}
        }
    }
}

/// A kube client from a URL, else kubeconfig or in-cluster; kube-rs' retry is off so a
/// failing API shows at once.
pub async fn client(server: Option<&str>, timeout: Duration) -> crate::Result<kube::Client> {
    // Two TLS stacks meet in this binary (kube with ring, the Prometheus client with aws-lc-rs);
    // rustls then needs the process-wide provider named. Installing twice is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    fn kube<E: std::error::Error + Send + Sync + 'static>(
        what: String,
    ) -> impl FnOnce(E) -> crate::Error {
        move |e| crate::Error::Kube {
            what,
            source: Box::new(e),
        }
    }
    let mut config = match server {
        Some(url) => kube::Config::new(url.parse().map_err(kube(format!("`{url}` is not a URL")))?),
        None => kube::Config::infer()
            .await
            .map_err(kube("no Kubernetes configuration".to_owned()))?,
    };
    config.default_retry = false;
    // kube leaves the read timeout unset (`Config::new`) and its connect timeout long: a hung
    // API server would hold a probe forever.
    config.connect_timeout = Some(timeout);
    config.read_timeout = Some(timeout);
    config.write_timeout = Some(timeout);
    kube::Client::try_from(config).map_err(kube("the client refused its configuration".to_owned()))
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
        let api: Api<Deployment> = Api::namespaced(
            client(Some(&url), Duration::from_secs(5)).await.unwrap(),
            DEFAULT_NAMESPACE,
        );
        let m = ProbeMetrics::default();
        let get = |m: &ProbeMetrics, p: &str| {
            let shown = crate::events::encoded(|r| m.register(r));
            let line = format!("upsoak_agent_probe_success{{probe=\"{p}\"}} ");
            shown
                .lines()
                .find_map(|l| l.strip_prefix(&line)?.parse::<i64>().ok())
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
        // Ready again once the 1.5 s upgrade window has passed.
        upsoak_testkit::eventually(Duration::from_secs(10), upsoak_testkit::POLL, || async {
            probe_once(&api, &m).await;
            (get(&m, "agones-allocator") == Some(1)).then_some(())
        })
        .await
        .expect("the allocator ready again after the upgrade window");
        // An API that is not there fails the probe, never passes it.
        let dead: Api<Deployment> = Api::namespaced(
            client(Some("http://127.0.0.1:1"), Duration::from_secs(5))
                .await
                .unwrap(),
            DEFAULT_NAMESPACE,
        );
        probe_once(&dead, &m).await;
        assert_eq!(get(&m, "agones-controller"), Some(0));
        stop.cancel();
    }
}
