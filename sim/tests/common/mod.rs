//! What the simulator's integration tests share beyond `upsoak-testkit`: the real `upsoak-sim`
//! binary on a free loopback port (a kit [`Proc`], killed on drop), the test configuration, and
//! waits that name what they wait for.

#![allow(dead_code)]

use std::future::Future;
use std::process::{Command, ExitStatus};
use std::time::Duration;

use kube::api::{Api, ListParams};
use upsoak_agones::{GameServer, GameServerState};
use upsoak_testkit::{POLL, Proc, TempDir};

/// GETs `url` and decodes its JSON body (a test fails on any error).
pub async fn get_json(http: &reqwest::Client, url: &str) -> serde_json::Value {
    http.get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
        .json()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: not JSON: {e}"))
}

/// POSTs `body` as JSON to `url` and decodes the JSON answer (a test fails on any error).
pub async fn post_json(
    http: &reqwest::Client,
    url: &str,
    body: &impl serde::Serialize,
) -> serde_json::Value {
    http.post(url)
        .json(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {url}: {e}"))
        .json()
        .await
        .unwrap_or_else(|e| panic!("POST {url}: not JSON: {e}"))
}

/// A running `upsoak-sim` process and its scratch directory (config, logs).
pub struct SimProcess {
    proc: Proc,
    pub url: String,
    _dir: TempDir,
}

/// The built-in configuration with fast lifecycle timings, game ports the OS picks (so tests
/// running at once never collide), no batch wait, and `extra` YAML appended.
pub fn test_config(extra: &str) -> String {
    let default = upsoak_sim::config::DEFAULT_CONFIG_YAML;
    // The allocator's batch wait (500ms, Agones' default) is off unless `extra` sets
    // `allocation`: tests allocate one after another, and `batch_wait.rs` tests the wait itself.
    let allocation = if extra.contains("allocation:") {
        ""
    } else {
        "allocation: { batch_wait: 0ms }"
    };
    format!(
        "{default}\nlifecycle: {{ scheduled_after: 50ms, request_ready_after: 50ms, ready_after: 50ms, delete_after_shutdown: 100ms, delete_after_failure: 2s, tick: 20ms }}\ngame: {{ port_min: 0 }}\n{allocation}\n{extra}\n"
    )
}

impl SimProcess {
    /// Starts the simulator with `config` YAML (or the built-in default when `None`) and waits
    /// for its `listening on` line.
    pub fn start(config: Option<&str>) -> SimProcess {
        let dir = TempDir::new("sim");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_upsoak-sim"));
        cmd.args(["--listen", "127.0.0.1:0"]);
        if let Some(c) = config {
            cmd.arg("--config").arg(dir.write("sim.yaml", c));
        }
        let proc = Proc::start_blocking("upsoak-sim", &mut cmd, &dir);
        let url = proc.url().expect("start_blocking waits for the URL");
        SimProcess {
            proc,
            url,
            _dir: dir,
        }
    }

    /// A kube client for the simulator, over plain HTTP.
    pub fn client(&self) -> kube::Client {
        // In a workspace build rustls has two crypto providers; name the process-wide one.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let config = kube::Config::new(self.url.parse().unwrap());
        kube::Client::try_from(config).unwrap()
    }

    /// The GameServers of the default namespace.
    pub fn gameservers(&self) -> Api<GameServer> {
        Api::namespaced(self.client(), "default")
    }

    /// Sends SIGTERM and waits up to 5 s for the exit status.
    pub fn stop(mut self) -> ExitStatus {
        self.proc
            .terminate(Duration::from_secs(5))
            .unwrap_or_else(|| {
                panic!(
                    "upsoak-sim did not stop within 5 s of SIGTERM\n{}",
                    self.proc.logs()
                )
            })
    }
}

/// Polls `f` until it returns `Some`, or panics naming `what` after `secs`.
pub async fn eventually<T, F, Fut>(secs: u64, what: &str, f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    upsoak_testkit::eventually(Duration::from_secs(secs), POLL, f)
        .await
        .unwrap_or_else(|t| panic!("waiting for {what}: {t}"))
}

/// [`eventually`] without a runtime: blocks the thread between polls.
pub fn eventually_blocking<T>(secs: u64, what: &str, f: impl FnMut() -> Option<T>) -> T {
    upsoak_testkit::eventually_blocking(Duration::from_secs(secs), POLL, f)
        .unwrap_or_else(|t| panic!("waiting for {what}: {t}"))
}

/// Waits until exactly `n` GameServers of `api` are Ready; returns the list then.
pub async fn wait_ready(api: &Api<GameServer>, n: usize) -> Vec<GameServer> {
    eventually(10, &format!("{n} Ready GameServers"), || async {
        let l = api.list(&ListParams::default()).await.unwrap();
        let ready = l
            .items
            .iter()
            .filter(|g| g.state() == Some(GameServerState::Ready))
            .count();
        (ready == n).then_some(l.items)
    })
    .await
}

/// POSTs `body` to `/upsoak/v1/install` (202 or the test fails with the answer) and waits for
/// the upgrade window to close.
pub async fn install(http: &reqwest::Client, url: &str, body: serde_json::Value) {
    let r = http
        .post(format!("{url}/upsoak/v1/install"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202, "{}", r.text().await.unwrap());
    eventually(10, "the install to finish", || async {
        let t = upsoak_testkit::scrape(url).await.unwrap();
        t.contains("upsoak_sim_upgrade_in_progress 0").then_some(())
    })
    .await;
}
