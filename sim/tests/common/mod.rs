//! What the simulator's integration tests share: the real `upsoak-sim` binary on a free loopback
//! port (stopped on drop), a test configuration, waits on real state, and `/metrics` helpers.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use kube::api::{Api, ListParams};
use upsoak_agones::{GameServer, GameServerState};

/// A running `upsoak-sim` process.
pub struct SimProcess {
    child: Child,
    pub url: String,
    _dir: Option<TempDir>,
}

/// A directory removed on drop.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!(
            "upsoak-{tag}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The built-in configuration with fast lifecycle timings, game ports the OS picks (so tests
/// running at once never collide), and `extra` YAML appended.
pub fn test_config(extra: &str) -> String {
    let default = upsoak_sim::config::DEFAULT_CONFIG_YAML;
    format!(
        "{default}\nlifecycle: {{ scheduled_after: 50ms, request_ready_after: 50ms, ready_after: 50ms, delete_after_shutdown: 100ms, delete_after_failure: 2s, tick: 20ms }}\ngame: {{ port_min: 0 }}\n{extra}\n"
    )
}

impl SimProcess {
    /// Starts the simulator with `config` YAML (or the built-in default when `None`).
    pub fn start(config: Option<&str>) -> SimProcess {
        let dir = config.map(|c| {
            let d = TempDir::new("sim");
            std::fs::write(d.0.join("sim.yaml"), c).unwrap();
            d
        });
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_upsoak-sim"));
        cmd.args(["--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(d) = &dir {
            cmd.arg("--config").arg(d.0.join("sim.yaml"));
        }
        let mut child = cmd.spawn().expect("start upsoak-sim");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .to_owned();
        SimProcess {
            child,
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

    /// Sends SIGTERM and waits for the exit status.
    pub fn stop(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        eventually_blocking(5, "upsoak-sim to stop after SIGTERM", || {
            self.child.try_wait().ok().flatten()
        })
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `f` every 50 ms until it returns `Some`, or panics after `secs`.
pub async fn eventually<T, F, Fut>(secs: u64, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {secs} s waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// [`eventually`] without a runtime: blocks the thread between polls.
pub fn eventually_blocking<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        if std::time::Instant::now() > deadline {
            panic!("timed out after {secs} s waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
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

/// The text of `url`'s `/metrics`.
pub async fn scrape(url: &str) -> String {
    reqwest::get(format!("{url}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The value of the first series whose line starts with `prefix` (name and labels).
pub fn sample(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// The sum of every series whose line starts with `prefix`; 0 when there is none.
pub fn sum_series(text: &str, prefix: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Runs `promtool check metrics` on `text` and returns its findings, one per line, sorted.
pub fn promtool_findings(text: &str) -> Vec<String> {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool must be installed (make test installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .chain(String::from_utf8_lossy(&out.stderr).lines())
        .map(str::to_owned)
        .filter(|l| !l.trim().is_empty())
        .collect();
    lines.sort();
    lines
}
