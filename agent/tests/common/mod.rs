//! Test harness: a real Prometheus and Alertmanager on loopback, a fake sidecar and a metrics
//! server the test controls, a Grafana stand-in, temporary directories and polling with a
//! deadline (never a fixed sleep).

#![allow(dead_code)]

use std::future::Future;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use tokio_util::sync::CancellationToken;
use upsoak_common::names::wanderer;

/// A fresh directory under the system's temporary directory, removed on drop.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("upsoak-agent-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    pub fn path(&self) -> &std::path::Path {
        &self.0
    }

    pub fn join(&self, name: &str) -> std::path::PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Polls `f` every 100 ms until it gives a value; panics with `what` after `secs` seconds.
pub async fn eventually<T, F, Fut>(secs: u64, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "not within {secs} s: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Serves `/metrics` with what `render` returns at each scrape, on a free loopback port, until
/// `stop`; returns its address.
pub async fn serve_metrics(
    render: impl Fn() -> String + Clone + Send + Sync + 'static,
    stop: CancellationToken,
) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let render = render.clone();
            async move { render() }
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

/// The value of the sample `series` (name and labels exactly as encoded) in exposition `text`.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
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
        let mut s = self.0.lock().unwrap();
        s.generation = generation;
        s.version = version.to_owned();
        s.latency = latency;
    }

    fn render(&self) -> String {
        let mut s = self.0.lock().unwrap();
        s.scrapes += 1;
        let wobble = 1.0 + 0.05 * ((s.scrapes * 7919 % 13) as f64 / 6.0 - 1.0);
        format!(
            "# TYPE {gen} gauge\n{gen} {}\n# TYPE {info} gauge\n{info}{{{v}=\"{}\",{g}=\"PlayerTracking=true\"}} 1\n# TYPE upsoak_test_latency_seconds gauge\nupsoak_test_latency_seconds {}\n",
            s.generation,
            s.version,
            s.latency * wobble,
            gen = wanderer::GENERATION,
            info = wanderer::CONFIG_INFO,
            v = wanderer::VERSION_LABEL,
            g = wanderer::FEATURE_GATES_LABEL,
        )
    }

    /// Serves the fake sidecar's `/metrics`; returns its address.
    pub async fn serve(&self, stop: CancellationToken) -> String {
        let me = self.clone();
        serve_metrics(move || me.render(), stop).await
    }
}

/// Waits until `{url}/-/ready` answers 200 (Prometheus and Alertmanager alike).
async fn wait_ready(url: &str, what: &str) {
    let http = reqwest::Client::new();
    eventually(20, &format!("{what} ready at {url}"), || async {
        let r = http.get(format!("{url}/-/ready")).send().await.ok()?;
        r.status().is_success().then_some(())
    })
    .await
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A real Alertmanager on loopback, gossip off, stopped on drop.
pub struct Alertmanager {
    child: Child,
    pub url: String,
    dir: TempDir,
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
        let dir = TempDir::new(&format!("am-{tag}"));
        let config = dir.join("alertmanager.yml");
        std::fs::write(
            &config,
            format!(
                "route:\n  receiver: upsoak\n  group_by: [alertname, slo]\n  group_wait: 1s\n  routes:\n    - matchers: [ 'alertname=\"{}\"' ]\n      receiver: upsoak\n{receivers}",
                upsoak_agent::sinks::ALERT_NAME
            ),
        )
        .unwrap();
        let port = free_port();
        let child = Command::new("prometheus-alertmanager")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus-alertmanager must be installed (make test installs it)");
        let am = Alertmanager {
            child,
            url: format!("http://127.0.0.1:{port}"),
            dir,
        };
        wait_ready(&am.url, "alertmanager").await;
        am
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Prometheus process with its own data directory, stopped on drop.
pub struct Prometheus {
    child: Option<Child>,
    pub url: String,
    dir: TempDir,
}

impl Prometheus {
    /// Starts Prometheus scraping `target` every second and waits until it is ready.
    pub async fn start(target: &str, tag: &str) -> Prometheus {
        let dir = TempDir::new(&format!("prom-{tag}"));
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global: {{ scrape_interval: 1s, evaluation_interval: 1s }}\nscrape_configs:\n  - job_name: test\n    static_configs: [ {{ targets: ['{target}'] }} ]\n"
            ),
        )
        .unwrap();
        let port = free_port();
        let child = Command::new("prometheus")
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
        let prom = Prometheus {
            child: Some(child),
            url: format!("http://127.0.0.1:{port}"),
            dir,
        };
        wait_ready(&prom.url, "prometheus").await;
        prom
    }

    /// The value of the instant query `expr` now (the first series), if it has one.
    pub async fn value(&self, expr: &str) -> Option<f64> {
        let r: serde_json::Value = reqwest::Client::new()
            .get(format!("{}/api/v1/query", self.url))
            .query(&[("query", expr)])
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        r["data"]["result"][0]["value"][1].as_str()?.parse().ok()
    }

    /// Waits until `expr` is `want`.
    pub async fn wait_for_value(&self, expr: &str, want: f64) {
        eventually(30, &format!("`{expr}` == {want}"), || async {
            (self.value(expr).await == Some(want)).then_some(())
        })
        .await
    }

    /// Waits until `up` has at least `n` samples: Prometheus' service discovery sends its
    /// first targets about 5 s after start, so the first scrapes come late.
    pub async fn wait_for_samples(&self, n: u32) {
        eventually(30, &format!("{n} samples of `up`"), || async {
            let count = self.value("count_over_time(up[5m])").await?;
            (count >= f64::from(n)).then_some(())
        })
        .await
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
