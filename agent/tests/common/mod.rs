//! Test harness on top of the workspace's test kit ([`upsoak_testkit`]: Prometheus and
//! Alertmanager on loopback, temporary directories, polling with a deadline): a fake sidecar,
//! the agent's Alertmanager configuration, a Grafana stand-in, and a wait for a Prometheus value.

#![allow(dead_code)]

use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use tokio_util::sync::CancellationToken;
use upsoak_common::names::wanderer;
pub use upsoak_testkit::{Alertmanager, MetricsServer, Prometheus, TempDir, serve_metrics};

/// Polls `f` until it gives a value; panics with `what` after `secs` seconds.
pub async fn eventually<T, F, Fut>(secs: u64, what: &str, f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    upsoak_testkit::eventually(Duration::from_secs(secs), upsoak_testkit::POLL, f)
        .await
        .unwrap_or_else(|t| panic!("{what}: {t}"))
}

/// A Prometheus in `dir` scraping `target` (job `test`) every second.
pub async fn prometheus(dir: &Path, target: &str) -> Prometheus {
    Prometheus::start(dir, &upsoak_testkit::scrape_config(&[("test", target)])).await
}

/// Waits until Prometheus has scraped `n` samples of `up`.
pub async fn wait_for_samples(prom: &Prometheus, n: u32) {
    prom.wait_for_samples(n, Duration::from_secs(30)).await
}

/// An Alertmanager in `dir` that holds the agent's alerts, and posts every alert to
/// `webhook` (payload version 4) when given one.
pub async fn alertmanager(dir: &Path, webhook: Option<&str>) -> Alertmanager {
    alertmanager_with_http_config(dir, webhook, "").await
}

/// [`alertmanager`] whose webhook sends `http_config` (YAML lines indented under the webhook,
/// e.g. `"        http_config:\n          authorization: { credentials_file: … }\n"`).
pub async fn alertmanager_with_http_config(
    dir: &Path,
    webhook: Option<&str>,
    http_config: &str,
) -> Alertmanager {
    let receivers = match webhook {
        None => "receivers:\n  - name: upsoak\n".to_owned(),
        Some(url) => format!(
            "receivers:\n  - name: upsoak\n    webhook_configs:\n      - url: '{url}'\n        send_resolved: true\n{http_config}"
        ),
    };
    let config = format!(
        "route:\n  receiver: upsoak\n  group_by: [alertname, slo]\n  group_wait: 1s\n  routes:\n    - matchers: [ 'alertname=\"{}\"' ]\n      receiver: upsoak\n{receivers}",
        upsoak_agent::sinks::ALERT_NAME
    );
    Alertmanager::start(dir, &config).await
}

/// The OpenMetrics text of `register`'s metrics.
pub fn encoded(register: impl FnOnce(&mut prometheus_client::registry::Registry)) -> String {
    let mut r = prometheus_client::registry::Registry::default();
    register(&mut r);
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &r).unwrap();
    out
}

/// What the fake sidecar exports.
#[derive(Default)]
struct SidecarState {
    generation: u64,
    version: String,
    /// The `tunables` label (`a=1&b=2`); empty: none.
    tunables: String,
    /// The latency gauge wobbles around this value.
    latency: f64,
    scrapes: u64,
}

/// A fake sidecar: the Wanderer's generation and configuration, under the sidecar's real
/// metric names, and one latency gauge that wobbles around its centre (a different value at
/// each scrape, so windows have variance).
#[derive(Clone, Default)]
pub struct Sidecar(Arc<Mutex<SidecarState>>);

impl Sidecar {
    pub fn set(&self, generation: u64, version: &str, latency: f64) {
        self.set_with_tunables(generation, version, "", latency);
    }

    /// [`Sidecar::set`] with the `tunables` label too, all in one scrape.
    pub fn set_with_tunables(&self, generation: u64, version: &str, tunables: &str, latency: f64) {
        let mut s = self.0.lock().unwrap();
        s.generation = generation;
        s.version = version.to_owned();
        s.tunables = tunables.to_owned();
        s.latency = latency;
    }

    fn render(&self) -> String {
        let mut s = self.0.lock().unwrap();
        s.scrapes += 1;
        let wobble = 1.0 + 0.05 * ((s.scrapes * 7919 % 13) as f64 / 6.0 - 1.0);
        format!(
            "# TYPE {gen} gauge\n{gen} {}\n# TYPE {info} gauge\n{info}{{{v}=\"{}\",{g}=\"PlayerTracking=true\",{t}=\"{}\"}} 1\n# TYPE upsoak_test_latency_seconds gauge\nupsoak_test_latency_seconds {}\n",
            s.generation,
            s.version,
            s.tunables,
            s.latency * wobble,
            gen = wanderer::GENERATION,
            info = wanderer::CONFIG_INFO,
            v = wanderer::VERSION_LABEL,
            g = wanderer::FEATURE_GATES_LABEL,
            t = wanderer::TUNABLES_LABEL,
        )
    }

    /// Serves the fake sidecar's `/metrics` until the server is dropped.
    pub async fn serve(&self) -> MetricsServer {
        let me = self.clone();
        serve_metrics(move || me.render()).await
    }
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A stand-in for Grafana (which cannot run here): it accepts `POST /api/annotations` only in
/// the documented shape (bearer token; JSON with `text`; `time`/`timeEnd` as epoch
/// milliseconds; `tags` strings; no other fields than dashboardUID, panelId, time, timeEnd,
/// tags, text) and records what it accepted and what it refused.
#[derive(Clone, Default)]
pub struct FakeGrafana {
    pub accepted: Arc<Mutex<Vec<serde_json::Value>>>,
    pub refused: Arc<Mutex<Vec<String>>>,
}

impl FakeGrafana {
    fn check(token: Option<&str>, body: &serde_json::Value) -> Result<(), String> {
        if token != Some("Bearer secret-token") {
            return Err(format!("bad Authorization: {token:?}"));
        }
        let obj = body.as_object().ok_or("body is not an object")?;
        for k in obj.keys() {
            if !["dashboardUID", "panelId", "time", "timeEnd", "tags", "text"].contains(&k.as_str())
            {
                return Err(format!("unknown field {k}"));
            }
        }
        if !obj.get("text").is_some_and(|t| t.is_string()) {
            return Err("text is required".into());
        }
        let time = obj
            .get("time")
            .and_then(|t| t.as_i64())
            .ok_or("time must be epoch ms")?;
        if time < 1_000_000_000_000 {
            return Err("time is not in milliseconds".into());
        }
        if let Some(end) = obj.get("timeEnd")
            && end.as_i64().is_none_or(|e| e < time)
        {
            return Err("timeEnd must be epoch ms after time".into());
        }
        if let Some(tags) = obj.get("tags")
            && !tags
                .as_array()
                .is_some_and(|a| a.iter().all(|t| t.is_string()))
        {
            return Err("tags must be strings".into());
        }
        Ok(())
    }

    pub async fn start(&self, stop: CancellationToken) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let me = self.clone();
        let app = Router::new().route(
            "/api/annotations",
            axum::routing::post(
                move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                    let me = me.clone();
                    async move {
                        let token = headers.get("authorization").and_then(|v| v.to_str().ok());
                        let parsed: Result<serde_json::Value, _> = serde_json::from_slice(&body);
                        match parsed
                            .map_err(|e| e.to_string())
                            .and_then(|v| Self::check(token, &v).map(|_| v))
                        {
                            Ok(v) => {
                                me.accepted.lock().unwrap().push(v);
                                (
                                    axum::http::StatusCode::OK,
                                    "{\"message\":\"Annotation added\",\"id\":1}",
                                )
                            }
                            Err(e) => {
                                me.refused.lock().unwrap().push(e);
                                (
                                    axum::http::StatusCode::BAD_REQUEST,
                                    "{\"message\":\"bad request\"}",
                                )
                            }
                        }
                    }
                },
            ),
        );
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await
                .unwrap();
        });
        format!("http://{addr}")
    }
}
