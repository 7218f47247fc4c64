//! The Producer as a matchmaker: allocations through `agones-allocator`'s mTLS REST endpoint
//! (`POST /gameserverallocation`, Agones `proto/allocation/allocation.proto` through its
//! gateway) at a rate of their own, each result counted and timed.
//!
//! The CA and the client certificate and key are read ONCE, when the Producer starts, the way
//! a deployed matchmaker holds the `allocator-client.default` Secret it was started with. With
//! the chart's defaults (`generateTLS`/`generateClientTLS`), every `helm upgrade` issues new
//! ones (`install/helm/agones/templates/service/allocation.yaml`: `genCA`, no `lookup`), so a
//! rotation shows here as `error_tls` after the transition, as it would for the matchmaker.
//!
//! An allocated server carries the owner's labels ([`super::owner`]) and is told to `EXIT`
//! over the game protocol at once; if that fails, the owner's sweep reclaims it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use upsoak_agones::allocation::GameServerAllocationStatus;
use upsoak_agones::gameserver::{GameServerStatusPort, NodeAddress};
use upsoak_agones::metrics::ALLOCATION_DURATION_BUCKETS;
use upsoak_agones::{AllocationState, FLEET_LABEL};
use upsoak_common::names::producer as names;
use upsoak_common::problems::Problems;

use super::events::ProducerMetrics;
use super::owner::{Owner, Role};
use super::{Arrivals, gaps};

/// `producer.allocator_service`: where and how the matchmaker allocates.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AllocatorServiceConfig {
    /// The allocator's base URL, `https://host:port` (the `agones-allocator` Service).
    pub endpoint: String,
    /// The CA the server's certificate is checked against (`allocator-tls-ca`'s `tls-ca.crt`).
    pub ca_file: PathBuf,
    /// The client certificate (`allocator-client.default`'s `tls.crt`).
    pub cert_file: PathBuf,
    /// Its key (`allocator-client.default`'s `tls.key`).
    pub key_file: PathBuf,
    /// Namespace to allocate in; default: the Producer's.
    #[serde(default)]
    pub namespace: Option<String>,
    /// The Fleet to allocate from (its `agones.dev/fleet` label).
    pub fleet: String,
    /// Allocations started per second.
    pub rate: f64,
    /// How starts are spaced (`poisson`, the default, or `fixed`), as the main Producer's.
    #[serde(default = "poisson")]
    pub arrivals: Arrivals,
    /// Per-request timeout.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Requests in flight at most; a start beyond it is counted `dropped`.
    #[serde(default = "default_in_flight")]
    pub max_in_flight: usize,
}

fn poisson() -> Arrivals {
    Arrivals::Poisson
}
fn default_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_in_flight() -> usize {
    64
}

impl AllocatorServiceConfig {
    /// Every problem, with its path below this section; the certificate files are read and
    /// parsed, so a bad one is refused before the soak starts.
    pub fn problems(&self) -> Problems {
        let mut p = Problems::new();
        match reqwest::Url::parse(&self.endpoint) {
            Ok(u) if u.scheme() == "https" && u.host().is_some() => {}
            _ => p.push(
                "endpoint",
                format!("`{}` is not an https://host:port URL", self.endpoint),
            ),
        }
        if !(self.rate.is_finite() && self.rate > 0.0) {
            p.push("rate", format!("{} is not a rate > 0", self.rate));
        }
        if self.fleet.is_empty() {
            p.push("fleet", "must not be empty");
        }
        if self.timeout.is_zero() {
            p.push("timeout", "must be above zero");
        }
        if self.max_in_flight == 0 {
            p.push("max_in_flight", "must be at least 1");
        }
        if let Err((field, e)) = Material::read(self) {
            p.push(field, e);
        }
        p
    }
}

/// The client's certificates as read at start.
struct Material {
    roots: rustls::RootCertStore,
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl Material {
    /// Reads the three files; an error names the field and the file.
    fn read(cfg: &AllocatorServiceConfig) -> Result<Material, (&'static str, String)> {
        fn certs(
            field: &'static str,
            p: &Path,
        ) -> Result<Vec<CertificateDer<'static>>, (&'static str, String)> {
            let found = CertificateDer::pem_file_iter(p)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| (field, format!("`{}`: {e}", p.display())))?;
            if found.is_empty() {
                return Err((field, format!("`{}`: no PEM certificate", p.display())));
            }
            Ok(found)
        }
        let mut roots = rustls::RootCertStore::empty();
        for c in certs("ca_file", &cfg.ca_file)? {
            roots
                .add(c)
                .map_err(|e| ("ca_file", format!("`{}`: {e}", cfg.ca_file.display())))?;
        }
        let key = PrivateKeyDer::from_pem_file(&cfg.key_file)
            .map_err(|e| ("key_file", format!("`{}`: {e}", cfg.key_file.display())))?;
        Ok(Material {
            roots,
            certs: certs("cert_file", &cfg.cert_file)?,
            key,
        })
    }

    /// An HTTPS client presenting the certificate, trusting only the CA (ring provider).
    fn client(self, timeout: Duration) -> Result<reqwest::Client, String> {
        // reqwest builds with the process-wide provider even when given a configuration.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(self.roots)
            .with_client_auth_cert(self.certs, self.key)
            .map_err(|e| format!("cert_file/key_file: {e}"))?;
        reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(timeout)
            .build()
            .map_err(|e| e.to_string())
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

/// The matchmaker path's metrics; only [`Finished`] touches them.
#[derive(Clone)]
pub struct AllocatorServiceMetrics {
    requests: Family<ResultLabels, Counter>,
    duration: Family<ResultLabels, Histogram, fn() -> Histogram>,
    /// 1 when `producer.allocator_service` is configured, else 0: the SLOs tell "not
    /// configured here" (judged as met) from "not scraped" (no data).
    configured: Gauge,
}

fn histogram() -> Histogram {
    Histogram::new(ALLOCATION_DURATION_BUCKETS)
}

impl Default for AllocatorServiceMetrics {
    fn default() -> Self {
        AllocatorServiceMetrics {
            requests: Family::default(),
            duration: Family::new_with_constructor(histogram),
            configured: Gauge::default(),
        }
    }
}

impl AllocatorServiceMetrics {
    pub fn register(&self, r: &mut Registry) {
        r.register(
            names::ALLOCATOR_SERVICE_REQUESTS,
            "Allocations through the allocator service's mTLS endpoint, by result (Allocated, UnAllocated, Contention, dropped, error_tls, error_unavailable, error_timeout, error_other)",
            self.requests.clone(),
        );
        r.register(
            names::ALLOCATOR_SERVICE_DURATION_SECONDS,
            "Latency of allocator-service allocations from the scheduled start, by result",
            self.duration.clone(),
        );
        r.register(
            names::ALLOCATOR_SERVICE_CONFIGURED,
            "1 when the producer allocates through the allocator service (producer.allocator_service), else 0",
            self.configured.clone(),
        );
    }
}

/// One allocator-service allocation ended with `result`, `latency` after its scheduled start.
#[derive(Debug)]
pub struct Finished {
    pub result: &'static str,
    pub latency: Duration,
    pub error: Option<String>,
}

impl Finished {
    pub fn emit(&self, m: &AllocatorServiceMetrics) {
        match &self.error {
            Some(e) => {
                tracing::debug!(result = self.result, error = %e, "allocator service allocation")
            }
            None => tracing::debug!(result = self.result, "allocator service allocation"),
        }
        let labels = ResultLabels {
            result: self.result,
        };
        m.requests.get_or_create(&labels).inc();
        if self.result != "dropped" {
            m.duration
                .get_or_create(&labels)
                .observe(self.latency.as_secs_f64());
        }
    }
}

/// The result label of a failed request: a TLS failure anywhere in its causes is `error_tls`
/// (the server refused our certificate, or we refused its), a refused or cut connection
/// `error_unavailable`.
fn classify(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        return "error_timeout";
    }
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if c.downcast_ref::<rustls::Error>().is_some() {
            return "error_tls";
        }
        if let Some(io) = c.downcast_ref::<std::io::Error>()
            && io
                .get_ref()
                .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
        {
            return "error_tls";
        }
        cause = c.source();
    }
    if e.is_connect() || e.is_request() {
        return "error_unavailable";
    }
    "error_other"
}

/// The result label of an answer: the allocator's gRPC code as the gateway maps it.
fn answer_result(status: u16, body: &Value) -> &'static str {
    match (status, body.get("code").and_then(Value::as_i64)) {
        (200, _) => "Allocated",
        (_, Some(8)) | (429, None) => "UnAllocated",
        (_, Some(10)) | (409, None) => "Contention",
        (_, Some(14)) | (503, None) => "error_unavailable",
        _ => "error_other",
    }
}

/// The request body: the Fleet's Ready servers, with the owner's labels and annotations.
fn request(cfg: &AllocatorServiceConfig, namespace: &str, owner: &Owner) -> Value {
    let meta = owner
        .allocation(&cfg.fleet, Role::Session)
        .spec
        .metadata
        .unwrap_or_default();
    json!({
        "namespace": namespace,
        "gameServerSelectors": [{"matchLabels": {FLEET_LABEL: cfg.fleet}}],
        "metadata": {
            "labels": meta.labels.unwrap_or_default(),
            "annotations": meta.annotations.unwrap_or_default(),
        },
    })
}

/// Where the allocated server listens, from an `AllocationResponse`.
fn status_of(body: &Value) -> GameServerAllocationStatus {
    let s = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let ports = body
        .get("ports")
        .and_then(Value::as_array)
        .map(|ps| {
            ps.iter()
                .filter_map(|p| {
                    Some(GameServerStatusPort {
                        name: p
                            .get("name")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_owned(),
                        port: i32::try_from(p.get("port")?.as_i64()?).ok()?,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let addresses = body
        .get("addresses")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| {
                    Some(NodeAddress {
                        address: x.get("address")?.as_str()?.to_owned(),
                        type_: x
                            .get("type")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_owned(),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    GameServerAllocationStatus {
        state: AllocationState::Allocated,
        game_server_name: s("gameServerName"),
        ports,
        address: s("address"),
        addresses,
        node_name: s("nodeName"),
        source: s("source"),
    }
}

/// Allocates through the allocator service until `shutdown`. The certificates are read here,
/// once; if they cannot be (they were checked at start), the loop logs why and stops.
/// `producer` is the Producer's own configuration: its namespace (the default), session,
/// seed and the address order the allocated servers are reached by.
pub async fn run(
    cfg: AllocatorServiceConfig,
    producer: super::ProducerConfig,
    owner: Owner,
    metrics: ProducerMetrics,
    shutdown: CancellationToken,
) {
    let super::ProducerConfig {
        namespace: default_namespace,
        session,
        seed,
        address_types,
        ..
    } = producer;
    let address_types: Arc<[super::address::AddressType]> = address_types.into();
    metrics.allocator_service().configured.set(1);
    let client = match Material::read(&cfg)
        .map_err(|(f, e)| format!("producer.allocator_service.{f}: {e}"))
        .and_then(|m| m.client(cfg.timeout))
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "allocator service client not started");
            return;
        }
    };
    let m = metrics.allocator_service().clone();
    let url = format!(
        "{}/gameserverallocation",
        cfg.endpoint.trim_end_matches('/')
    );
    let namespace = cfg.namespace.clone().unwrap_or(default_namespace);
    let body = Arc::new(request(&cfg, &namespace, &owner));
    let permits = Arc::new(Semaphore::new(cfg.max_in_flight));
    let mut gap = gaps(cfg.arrivals, cfg.rate, seed ^ 0xa110_ca70);
    let mut next = Instant::now();
    let mut in_flight = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep_until(next) => {}
        }
        let now = Instant::now();
        while next <= now {
            let scheduled = next;
            next += gap();
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                Finished {
                    result: "dropped",
                    latency: Duration::ZERO,
                    error: None,
                }
                .emit(&m);
                continue;
            };
            let (client, url, body, m, metrics) = (
                client.clone(),
                url.clone(),
                body.clone(),
                m.clone(),
                metrics.clone(),
            );
            let (session, shutdown) = (session.clone(), shutdown.clone());
            let address_types = address_types.clone();
            in_flight.spawn(async move {
                let answer = async {
                    let r = client.post(&url).json(&*body).send().await?;
                    let status = r.status().as_u16();
                    let v: Value = r.json().await.unwrap_or(Value::Null);
                    Ok::<_, reqwest::Error>((status, v))
                }
                .await;
                let latency = scheduled.elapsed();
                let (result, allocated, error) = match answer {
                    Ok((status, v)) => {
                        let result = answer_result(status, &v);
                        let error = (result != "Allocated").then(|| v.to_string());
                        (result, (result == "Allocated").then_some(v), error)
                    }
                    Err(e) => (classify(&e), None, Some(format!("{e:?}"))),
                };
                Finished {
                    result,
                    latency,
                    error,
                }
                .emit(&m);
                if let Some(v) = allocated
                    && let Some(addr) = super::resolve(&status_of(&v), &address_types).await
                {
                    super::session::play(
                        addr,
                        &session,
                        &[super::script::Step::Exit],
                        0,
                        seed,
                        &metrics,
                        &shutdown,
                    )
                    .await;
                }
                drop(permit);
            });
        }
        while in_flight.try_join_next().is_some() {}
    }
    while in_flight.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_counted_by_the_allocators_grpc_code() {
        assert_eq!(
            answer_result(200, &json!({"gameServerName": "a"})),
            "Allocated"
        );
        assert_eq!(
            answer_result(
                429,
                &json!({"code": 8, "message": "there is no available GameServer to allocate"})
            ),
            "UnAllocated"
        );
        assert_eq!(answer_result(409, &json!({"code": 10})), "Contention");
        assert_eq!(
            answer_result(503, &json!({"code": 14})),
            "error_unavailable"
        );
        assert_eq!(answer_result(503, &Value::Null), "error_unavailable");
        assert_eq!(answer_result(500, &json!({"code": 13})), "error_other");
    }

    #[test]
    fn the_request_selects_the_fleet_and_carries_the_owner() {
        let owner = Owner::new("soak");
        let cfg: AllocatorServiceConfig = serde_yaml::from_str(
            "{ endpoint: \"https://localhost:1\", ca_file: a, cert_file: b, key_file: c, fleet: f, rate: 1 }",
        )
        .unwrap();
        let v = request(&cfg, "games", &owner);
        assert_eq!(v["namespace"], "games");
        assert_eq!(v["gameServerSelectors"][0]["matchLabels"][FLEET_LABEL], "f");
        assert_eq!(
            v["metadata"]["labels"][super::super::owner::OWNER_LABEL],
            "soak"
        );
        assert_eq!(cfg.arrivals, Arrivals::Poisson);
        assert_eq!(cfg.timeout, Duration::from_secs(10));
    }

    #[test]
    fn missing_files_and_a_plain_url_are_refused_with_their_fields() {
        let cfg: AllocatorServiceConfig = serde_yaml::from_str(
            "{ endpoint: \"http://localhost:1\", ca_file: /nonexistent/ca, cert_file: b, key_file: c, fleet: f, rate: 0 }",
        )
        .unwrap();
        let p = cfg.problems().to_string();
        assert!(p.contains("endpoint"), "{p}");
        assert!(p.contains("rate"), "{p}");
        assert!(
            p.contains("ca_file") && p.contains("/nonexistent/ca"),
            "{p}"
        );
    }

    #[test]
    fn a_response_becomes_the_servers_address() {
        let st = status_of(&json!({
            "gameServerName": "g", "ports": [{"name": "default", "port": 7001}],
            "address": "127.0.0.1", "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
            "nodeName": "n", "source": "local"
        }));
        assert_eq!(st.game_server_name, "g");
        assert_eq!(st.ports[0].port, 7001);
        assert_eq!(st.addresses[0].address, "127.0.0.1");
    }
}
