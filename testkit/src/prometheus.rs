//! A real Prometheus and a real Alertmanager for tests, on loopback.
//!
//! Both start on `127.0.0.1:0` and announce the port they got in their log, so no port is
//! picked in advance; a restart can ask for the address of the previous run
//! ([`Prometheus::start_on`]). They are ready (`/-/ready` answers 200) when returned, write
//! their data under the directory given, and are killed on drop.
// Set-up failures are test failures: this module panics with the reason and the logs.
#![allow(clippy::panic, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::Duration;

use serde_json::Value;

use crate::process::{Announce, Proc, START_TIMEOUT};
use crate::wait::{POLL, eventually};

/// A Prometheus configuration scraping every second, one job per `(job, host:port)`.
pub fn scrape_config(jobs: &[(&str, &str)]) -> String {
    let mut s =
        "global: { scrape_interval: 1s, evaluation_interval: 1s }\nscrape_configs:\n".to_owned();
    for (job, target) in jobs {
        s.push_str(&format!(
            "  - job_name: {job}\n    static_configs: [ {{ targets: ['{target}'] }} ]\n"
        ));
    }
    s
}

/// `host:port` of an `http://host:port` URL.
fn host_port(url: &str) -> &str {
    url.trim_start_matches("http://").trim_end_matches('/')
}

/// Waits until `GET {url}/-/ready` answers 200; panics with `p`'s logs otherwise.
async fn wait_ready(p: &Proc, url: &str) {
    let http = reqwest::Client::new();
    let ready = format!("{url}/-/ready");
    let r = eventually(START_TIMEOUT, POLL, || async {
        let ok = http
            .get(&ready)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        ok.then_some(())
    })
    .await;
    if let Err(t) = r {
        panic!("{} did not become ready: {t}\n{}", p.name(), p.logs());
    }
}

/// A running Prometheus.
#[derive(Debug)]
pub struct Prometheus {
    proc: Proc,
    url: String,
    config: PathBuf,
    http: reqwest::Client,
}

impl Prometheus {
    /// Writes `config` to `dir/prometheus.yml` and starts Prometheus on a port of its own, its
    /// storage in `dir/prometheus-data`.
    pub async fn start(dir: &Path, config: &str) -> Prometheus {
        Prometheus::start_on(dir, config, "127.0.0.1:0").await
    }

    /// [`Prometheus::start`] on `listen` (`host:port`), e.g. the address of a previous run in
    /// the same `dir`, whose data it then keeps.
    pub async fn start_on(dir: &Path, config: &str, listen: &str) -> Prometheus {
        let file = dir.join("prometheus.yml");
        if let Err(e) = std::fs::write(&file, config) {
            panic!("cannot write {}: {e}", file.display());
        }
        let proc = Proc::spawn(
            "prometheus",
            Command::new("prometheus")
                .arg(format!("--config.file={}", file.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.join("prometheus-data").display()
                ))
                .arg(format!("--web.listen-address={listen}")),
            dir,
            Announce::ExporterToolkit,
        );
        let url = proc.wait_url(START_TIMEOUT).await;
        wait_ready(&proc, &url).await;
        Prometheus {
            proc,
            url,
            config: file,
            http: reqwest::Client::new(),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `127.0.0.1:PORT`, for [`Prometheus::start_on`].
    pub fn addr(&self) -> &str {
        host_port(&self.url)
    }

    /// The last lines of its output, for failure messages.
    pub fn logs(&self) -> String {
        self.proc.logs()
    }

    /// The configuration it runs, as it reports it (`/api/v1/status/config`).
    async fn loaded_config(&self) -> Option<String> {
        let v = self
            .http
            .get(format!("{}/api/v1/status/config", self.url))
            .send()
            .await
            .ok()?
            .json::<Value>()
            .await
            .ok()?;
        v["data"]["yaml"].as_str().map(str::to_owned)
    }

    /// Rewrites its configuration and makes it reload (SIGHUP), e.g. to add a target that
    /// could only start once Prometheus was running; returns once it runs the new one.
    pub async fn reload(&self, config: &str) {
        if std::fs::read_to_string(&self.config).is_ok_and(|old| old == config) {
            return;
        }
        let before = self.loaded_config().await;
        std::fs::write(&self.config, config)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", self.config.display()));
        let _ = Command::new("kill")
            .args(["-HUP", &self.proc.id().to_string()])
            .status();
        let r = eventually(START_TIMEOUT, POLL, || async {
            let now = self.loaded_config().await?;
            (Some(&now) != before.as_ref()).then_some(())
        })
        .await;
        if let Err(t) = r {
            panic!(
                "prometheus did not reload its configuration: {t}\n{}",
                self.logs()
            );
        }
    }

    /// SIGTERM, as an outage would stop it; its status, `None` if it had to be killed.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        self.proc.terminate(Duration::from_secs(10))
    }

    /// The JSON of an instant query, `None` if Prometheus cannot answer.
    pub async fn query_json(&self, promql: &str) -> Option<Value> {
        self.http
            .get(format!("{}/api/v1/query", self.url))
            .query(&[("query", promql)])
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()
    }

    /// An instant query's first sample value, if there is one.
    pub async fn query(&self, promql: &str) -> Option<f64> {
        self.query_json(promql).await?["data"]["result"][0]["value"][1]
            .as_str()?
            .parse()
            .ok()
    }

    /// Waits until `up` has at least `n` samples: Prometheus' service discovery sends its
    /// first targets about 5 s after start, so the first scrapes come late.
    pub async fn wait_for_samples(&self, n: u32, within: Duration) {
        let r = eventually(within, Duration::from_millis(100), || async {
            let count = self.query("count_over_time(up[5m])").await?;
            (count >= f64::from(n)).then_some(())
        })
        .await;
        if let Err(t) = r {
            panic!(
                "prometheus scraped fewer than {n} samples: {t}\n{}",
                self.proc.logs()
            );
        }
    }
}

/// A running Alertmanager, gossip off.
#[derive(Debug)]
pub struct Alertmanager {
    proc: Proc,
    url: String,
    http: reqwest::Client,
}

impl Alertmanager {
    /// Writes `config` to `dir/alertmanager.yml` and starts Alertmanager on a port of its own,
    /// its data in `dir/alertmanager-data`, clustering off (`--cluster.listen-address=`, or it
    /// binds the fixed gossip port 9094, and a second one on the machine fails).
    pub async fn start(dir: &Path, config: &str) -> Alertmanager {
        Alertmanager::start_on(dir, config, "127.0.0.1:0").await
    }

    /// [`Alertmanager::start`] on `listen` (`host:port`).
    pub async fn start_on(dir: &Path, config: &str, listen: &str) -> Alertmanager {
        let file = dir.join("alertmanager.yml");
        if let Err(e) = std::fs::write(&file, config) {
            panic!("cannot write {}: {e}", file.display());
        }
        let proc = Proc::spawn(
            "alertmanager",
            Command::new("prometheus-alertmanager")
                .arg(format!("--config.file={}", file.display()))
                .arg(format!(
                    "--storage.path={}",
                    dir.join("alertmanager-data").display()
                ))
                .arg(format!("--web.listen-address={listen}"))
                .arg("--cluster.listen-address="),
            dir,
            Announce::ExporterToolkit,
        );
        let url = proc.wait_url(START_TIMEOUT).await;
        wait_ready(&proc, &url).await;
        Alertmanager {
            proc,
            url,
            http: reqwest::Client::new(),
        }
    }

    /// A configuration whose one receiver posts every alert to `webhook` (payload version 4,
    /// resolved alerts too), grouped by `alertname` and `slo`, sent after 1 s.
    pub fn webhook_config(webhook: &str) -> String {
        format!(
            "route:\n  receiver: upsoak\n  group_by: [alertname, slo]\n  group_wait: 1s\n  group_interval: 2s\nreceivers:\n  - name: upsoak\n    webhook_configs:\n      - url: '{webhook}'\n        send_resolved: true\n"
        )
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The last lines of its output, for failure messages.
    pub fn logs(&self) -> String {
        self.proc.logs()
    }

    /// The alerts it holds (API v2). Panics when it cannot answer: "no alerts" must not be
    /// mistaken for "no Alertmanager".
    pub async fn alerts(&self) -> Vec<Value> {
        let url = format!("{}/api/v2/alerts", self.url);
        let r = self.http.get(&url).send().await;
        let r = r.unwrap_or_else(|e| panic!("GET {url}: {e}\n{}", self.logs()));
        r.json()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: not a list of alerts: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrape_config_lists_one_job_per_target() {
        assert_eq!(
            scrape_config(&[("agones", "127.0.0.1:1"), ("upsoak-agent", "127.0.0.1:2")]),
            "global: { scrape_interval: 1s, evaluation_interval: 1s }\nscrape_configs:\n  - job_name: agones\n    static_configs: [ { targets: ['127.0.0.1:1'] } ]\n  - job_name: upsoak-agent\n    static_configs: [ { targets: ['127.0.0.1:2'] } ]\n"
        );
        assert_eq!(host_port("http://127.0.0.1:9090"), "127.0.0.1:9090");
    }
}
