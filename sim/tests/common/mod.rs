//! Starts the real `upsoak-sim` binary on a free loopback port and stops it on drop.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

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

/// Fast lifecycle timings for tests, on a port range of their own (`base`..`base`+999).
pub fn test_config(base: u16, extra: &str) -> String {
    let default = upsoak_sim::config::DEFAULT_CONFIG_YAML;
    format!(
        "{default}\nlifecycle: {{ scheduled_after: 50ms, request_ready_after: 50ms, ready_after: 50ms, delete_after_shutdown: 100ms, delete_after_failure: 2s, tick: 20ms }}\ngame: {{ port_min: {base}, port_max: {} }}\n{extra}\n",
        base + 999
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

    /// Sends SIGTERM and waits for the exit status.
    pub fn stop(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        for _ in 0..100 {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("upsoak-sim did not stop within 5 s of SIGTERM");
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
