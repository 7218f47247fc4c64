//! Test harness: a real Prometheus on loopback scraping a metrics server the test controls.

#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use tokio_util::sync::CancellationToken;

/// Text the test's metrics server serves, changed by the test.
#[derive(Clone, Default)]
pub struct Exposition(pub Arc<Mutex<String>>);

impl Exposition {
    pub fn set(&self, text: &str) {
        *self.0.lock().unwrap() = text.to_owned();
    }
}

/// A fake sidecar: the Wanderer's generation and configuration and one latency gauge that
/// wobbles around `center` (a different value at each scrape, so windows have variance).
#[derive(Clone, Default)]
pub struct Sidecar(pub Arc<Mutex<(u64, String, f64, u64)>>);

impl Sidecar {
    pub fn set(&self, generation: u64, version: &str, center: f64) {
        let mut s = self.0.lock().unwrap();
        s.0 = generation;
        s.1 = version.to_owned();
        s.2 = center;
    }

    fn render(&self) -> String {
        let mut s = self.0.lock().unwrap();
        s.3 += 1;
        let wobble = 1.0 + 0.05 * ((s.3 * 7919 % 13) as f64 / 6.0 - 1.0);
        format!(
            "# TYPE upsoak_wanderer_generation gauge\nupsoak_wanderer_generation {}\n# TYPE upsoak_wanderer_config_info gauge\nupsoak_wanderer_config_info{{version=\"{}\",feature_gates=\"PlayerTracking=true\"}} 1\n# TYPE upsoak_test_latency_seconds gauge\nupsoak_test_latency_seconds {}\n",
            s.0,
            s.1,
            s.2 * wobble
        )
    }
}

/// Serves the fake sidecar's `/metrics`; returns its address.
pub async fn sidecar_server(sc: Sidecar, stop: CancellationToken) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let sc = sc.clone();
            async move { sc.render() }
        }),
    );
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await
            .unwrap();
    });
    addr.to_string()
}

/// A real Alertmanager on loopback, gossip off, stopped on drop.
pub struct Alertmanager {
    child: Child,
    pub url: String,
    dir: std::path::PathBuf,
}

impl Alertmanager {
    pub async fn start(tag: &str) -> Alertmanager {
        Alertmanager::start_with(tag, "receivers:\n  - name: upsoak\n").await
    }

    /// Alertmanager whose receiver posts every alert to `url` (webhook, payload version 4).
    pub async fn start_with_webhook(tag: &str, url: &str) -> Alertmanager {
        Alertmanager::start_with(
            tag,
            &format!("receivers:\n  - name: upsoak\n    webhook_configs:\n      - url: '{url}'\n        send_resolved: true\n"),
        )
        .await
    }

    async fn start_with(tag: &str, receivers: &str) -> Alertmanager {
        let dir = std::env::temp_dir().join(format!("upsoak-am-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("alertmanager.yml");
        std::fs::write(
            &config,
            format!("route:\n  receiver: upsoak\n  group_by: [alertname, slo]\n  group_wait: 1s\n  routes:\n    - matchers: [ 'alertname=\"UpsoakSloViolation\"' ]\n      receiver: upsoak\n{receivers}"),
        )
        .unwrap();
        let port = free_port();
        let mut child = Command::new("prometheus-alertmanager")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus-alertmanager must be installed (make test installs it)");
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        for _ in 0..200 {
            if let Ok(r) = http.get(format!("{url}/-/ready")).send().await
                && r.status().is_success()
            {
                return Alertmanager { child, url, dir };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("alertmanager did not become ready");
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Serves `/metrics` from `Exposition` on a free loopback port; returns its address.
pub async fn metrics_server(exp: Exposition, stop: CancellationToken) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let exp = exp.clone();
            async move { exp.0.lock().unwrap().clone() }
        }),
    );
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await
            .unwrap();
    });
    addr.to_string()
}

/// A Prometheus process with its own data directory, stopped on drop.
pub struct Prometheus {
    child: Option<Child>,
    pub url: String,
    dir: std::path::PathBuf,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Prometheus {
    /// Starts Prometheus scraping `target` every second and waits until it is ready.
    pub async fn start(target: &str, tag: &str) -> Prometheus {
        let dir = std::env::temp_dir().join(format!("upsoak-prom-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global: {{ scrape_interval: 1s, evaluation_interval: 1s }}\nscrape_configs:\n  - job_name: test\n    static_configs: [ {{ targets: ['{target}'] }} ]\n"
            ),
        )
        .unwrap();
        let port = free_port();
        let mut child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus must be installed (make test installs it)");
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        for _ in 0..200 {
            if let Ok(r) = http.get(format!("{url}/-/ready")).send().await
                && r.status().is_success()
            {
                return Prometheus {
                    child: Some(child),
                    url,
                    dir,
                };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("prometheus did not become ready");
    }

    /// Waits until `up` has at least `n` samples: Prometheus' service discovery sends its
    /// first targets about 5 s after start, so the first scrapes come late.
    pub async fn wait_for_samples(&self, n: u32) {
        let http = reqwest::Client::new();
        for _ in 0..300 {
            let r: serde_json::Value = http
                .get(format!("{}/api/v1/query", self.url))
                .query(&[("query", "count_over_time(up[5m])")])
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let count = r["data"]["result"][0]["value"][1]
                .as_str()
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0);
            if count >= f64::from(n) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("prometheus scraped fewer than {n} samples in 30 s");
    }

    /// Stops Prometheus (as an outage would).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
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
