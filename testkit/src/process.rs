//! Child processes for tests: the workspace's binaries, Prometheus, Alertmanager.
//!
//! A [`Proc`]'s stdout and stderr are copied line by line to `<dir>/<name>.out` and
//! `<dir>/<name>.log` (so a failure message can quote them and nothing blocks on a full pipe),
//! and watched for the line that announces its address. Servers are started on port 0 and
//! tell where they listen, so no port is picked by binding and releasing it (which races with
//! every other test on the machine).
// Set-up failures are test failures: this module panics with the reason and the logs.
#![allow(clippy::panic, clippy::expect_used)]

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::wait::{POLL, eventually, eventually_blocking};

/// How long a process may take to announce its address.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Which output line announces the address a process listens on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Announce {
    /// The upsoak binaries: `listening on http://ADDR` on stdout (other lines may come first).
    ListeningOn,
    /// Prometheus and Alertmanager (their exporter-toolkit web server): a log line on stderr
    /// with `msg="Listening on" address=ADDR`, which has the real port when started on `:0`.
    ExporterToolkit,
}

impl Announce {
    /// The URL a line announces, if it is the announcing line.
    pub fn url(self, line: &str) -> Option<String> {
        match self {
            Announce::ListeningOn => line
                .trim()
                .strip_prefix("listening on ")
                .map(|u| u.trim().to_owned()),
            Announce::ExporterToolkit => {
                if !line.contains("msg=\"Listening on\"") {
                    return None;
                }
                let addr = line
                    .split_whitespace()
                    .find_map(|w| w.strip_prefix("address="))?;
                Some(format!("http://{}", addr.trim_matches('"')))
            }
        }
    }
}

/// What the output threads have seen.
#[derive(Debug, Default)]
struct Seen {
    url: Option<String>,
    /// The announcing stream ended: the process exited (or closed it) without announcing.
    announcer_closed: bool,
}

/// A child process, killed (SIGKILL) when dropped.
#[derive(Debug)]
pub struct Proc {
    name: String,
    child: Child,
    status: Option<ExitStatus>,
    out: PathBuf,
    err: PathBuf,
    seen: Arc<Mutex<Seen>>,
}

/// Copies `from` to `to` line by line, looking for the announcing line when `announce` is set.
fn pump(from: impl Read, mut to: File, announce: Option<Announce>, seen: Arc<Mutex<Seen>>) {
    let mut reader = BufReader::new(from);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                // The log file is for people; a write failure must not stop the draining.
                let _ = to.write_all(&line);
                let _ = to.flush();
                if let Some(a) = announce
                    && let Some(url) = a.url(&String::from_utf8_lossy(&line))
                {
                    let mut s = seen.lock().unwrap_or_else(|e| e.into_inner());
                    s.url.get_or_insert(url);
                }
            }
        }
    }
    if announce.is_some() {
        seen.lock()
            .unwrap_or_else(|e| e.into_inner())
            .announcer_closed = true;
    }
}

impl Proc {
    /// Starts `cmd` as `name`, its output in `dir`, without waiting for anything.
    ///
    /// The child gets no stdin, `RUST_LOG=info` unless `cmd` sets it, and none of this
    /// process' `UPSOAK_*` variables unless `cmd` sets them: a test's configuration is only
    /// what it passes.
    pub fn spawn(name: &str, cmd: &mut Command, dir: &Path, announce: Announce) -> Proc {
        let set_by_caller: Vec<String> = cmd
            .get_envs()
            .map(|(k, _)| k.to_string_lossy().into_owned())
            .collect();
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy().into_owned();
            if k.starts_with("UPSOAK_") && !set_by_caller.contains(&k) {
                cmd.env_remove(&k);
            }
        }
        if !set_by_caller.iter().any(|k| k == "RUST_LOG") {
            cmd.env("RUST_LOG", "info");
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({cmd:?}): {e}"));
        let out = dir.join(format!("{name}.out"));
        let err = dir.join(format!("{name}.log"));
        let open = |p: &Path| {
            File::options()
                .create(true)
                .append(true)
                .open(p)
                .unwrap_or_else(|e| panic!("cannot open {}: {e}", p.display()))
        };
        let seen = Arc::new(Mutex::new(Seen::default()));
        let (out_file, err_file) = (open(&out), open(&err));
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (on_out, on_err) = match announce {
            Announce::ListeningOn => (Some(announce), None),
            Announce::ExporterToolkit => (None, Some(announce)),
        };
        let s = seen.clone();
        std::thread::spawn(move || pump(stdout, out_file, on_out, s));
        let s = seen.clone();
        std::thread::spawn(move || pump(stderr, err_file, on_err, s));
        Proc {
            name: name.to_owned(),
            child,
            status: None,
            out,
            err,
            seen,
        }
    }

    /// Starts an upsoak binary and waits for its `listening on URL` line.
    pub async fn start(name: &str, cmd: &mut Command, dir: &Path) -> Proc {
        let p = Proc::spawn(name, cmd, dir, Announce::ListeningOn);
        p.wait_url(START_TIMEOUT).await;
        p
    }

    /// [`Proc::start`] for tests without an async runtime.
    pub fn start_blocking(name: &str, cmd: &mut Command, dir: &Path) -> Proc {
        let p = Proc::spawn(name, cmd, dir, Announce::ListeningOn);
        p.wait_url_blocking(START_TIMEOUT);
        p
    }

    /// The name given at spawn.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The announced URL (`http://127.0.0.1:PORT`), once announced.
    pub fn url(&self) -> Option<String> {
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .url
            .clone()
    }

    /// The announced URL, `Err` with the logs if the process stopped without announcing.
    fn announced(&self) -> Option<Result<String, String>> {
        let s = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        match (&s.url, s.announcer_closed) {
            (Some(u), _) => Some(Ok(u.clone())),
            (None, true) => Some(Err(format!(
                "{} exited without announcing its address\n{}",
                self.name,
                self.logs()
            ))),
            (None, false) => None,
        }
    }

    fn announced_or_panic(&self, r: Result<Result<String, String>, crate::TimedOut>) -> String {
        match r {
            Ok(Ok(url)) => url,
            Ok(Err(why)) => panic!("{why}"),
            Err(t) => panic!(
                "{} did not announce its address: {t}\n{}",
                self.name,
                self.logs()
            ),
        }
    }

    /// Waits up to `within` for the announced URL; panics with the logs otherwise.
    pub async fn wait_url(&self, within: Duration) -> String {
        let r = eventually(within, POLL, || async { self.announced() }).await;
        self.announced_or_panic(r)
    }

    /// [`Proc::wait_url`], blocking.
    pub fn wait_url_blocking(&self, within: Duration) -> String {
        let r = eventually_blocking(within, POLL, || self.announced());
        self.announced_or_panic(r)
    }

    /// The exit status if the process has exited.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status
    }

    /// Sends SIGTERM and waits up to `within` for the exit: its status, or `None` when the
    /// process did not stop in time (it is then killed).
    pub fn terminate(&mut self, within: Duration) -> Option<ExitStatus> {
        if let Some(s) = self.try_status() {
            return Some(s);
        }
        // `kill(1)` rather than a libc binding: the workspace forbids unsafe code.
        let _ = Command::new("kill")
            .args(["-TERM", &self.id().to_string()])
            .status();
        match eventually_blocking(within, Duration::from_millis(20), || self.try_status()) {
            Ok(s) => Some(s),
            Err(_) => {
                self.kill();
                None
            }
        }
    }

    /// SIGKILL: no chance to clean up. Waits for the exit.
    pub fn kill(&mut self) {
        if self.try_status().is_none() {
            let _ = self.child.kill();
            self.status = self.child.wait().ok();
        }
    }

    /// Waits up to `within` for the process to exit by itself.
    pub async fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        eventually(within, POLL, || {
            let s = self.try_status();
            async move { s }
        })
        .await
        .ok()
    }

    /// [`Proc::wait_exit`], blocking.
    pub fn wait_exit_blocking(&mut self, within: Duration) -> Option<ExitStatus> {
        eventually_blocking(within, POLL, || self.try_status()).ok()
    }

    /// Everything it wrote to stdout so far.
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    /// Everything it wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }

    /// The last 40 lines of stdout and of stderr, for failure messages.
    pub fn logs(&self) -> String {
        let tail = |t: String| {
            let lines: Vec<&str> = t.lines().collect();
            lines[lines.len().saturating_sub(40)..].join("\n")
        };
        format!(
            "--- {name} stdout ({out})\n{}\n--- {name} stderr, last 40 lines ({err})\n{}",
            tail(self.stdout()),
            tail(self.stderr()),
            name = self.name,
            out = self.out.display(),
            err = self.err.display(),
        )
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A binary of the workspace for tests that have no `CARGO_BIN_EXE_*` (the end-to-end crate
/// has no binaries): `target/<profile>/<name>`, beside the test executable's `deps/`.
///
/// Panics when it is missing: `cargo build --workspace --bins` (which `make test` runs) builds it.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let dir = exe
        .parent()
        .and_then(|d| {
            if d.ends_with("deps") {
                d.parent()
            } else {
                Some(d)
            }
        })
        .expect("target directory");
    let p = dir.join(name);
    assert!(
        p.exists(),
        "{} is missing: run `cargo build --workspace --bins` first (make test does)",
        p.display()
    );
    p
}

/// A port that was free a moment ago (bound, read, released). Another process can take it
/// before it is used, so prefer starting on port 0 and reading the announced address; this is
/// for a port that must be known before its server starts or kept across restarts.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on loopback")
}

/// Runs `kubectl` against `url` (no kubeconfig, a 10 s request timeout) in namespace `ns`:
/// (success, stdout, stderr). kubectl is a real client of the simulator's API; `make test`
/// installs it.
pub fn kubectl(url: &str, ns: &str, args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new("kubectl")
        .arg(format!("--server={url}"))
        .args(["--request-timeout=10s", "--namespace", ns])
        .args(args)
        .env("KUBECONFIG", "/dev/null")
        .output()
        .expect("kubectl must be installed (make test installs it)");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TempDir;

    #[test]
    fn reads_both_announcements() {
        assert_eq!(
            Announce::ListeningOn.url("listening on http://127.0.0.1:4000\n"),
            Some("http://127.0.0.1:4000".into())
        );
        assert_eq!(Announce::ListeningOn.url("no --grafana: …"), None);
        let prom = "ts=2026-11-29T22:42:20.067Z caller=tls_config.go:232 level=info component=web msg=\"Listening on\" address=127.0.0.1:35299";
        assert_eq!(
            Announce::ExporterToolkit.url(prom),
            Some("http://127.0.0.1:35299".into())
        );
        let configured =
            "level=info component=web msg=\"Start listening for connections\" address=127.0.0.1:0";
        assert_eq!(Announce::ExporterToolkit.url(configured), None);
    }

    fn sh(script: &str) -> Command {
        let mut c = Command::new("sh");
        c.args(["-c", script]);
        c
    }

    #[test]
    fn finds_the_address_after_other_lines_and_keeps_the_output() {
        let dir = TempDir::new("kit-proc");
        let mut p = Proc::start_blocking(
            "echo",
            &mut sh(
                "echo first; echo listening on http://127.0.0.1:9; echo oops >&2; exec sleep 30",
            ),
            &dir,
        );
        assert_eq!(p.url().as_deref(), Some("http://127.0.0.1:9"));
        eventually_blocking(Duration::from_secs(5), POLL, || {
            p.stderr().contains("oops").then_some(())
        })
        .expect("stderr copied to its file");
        assert!(p.stdout().starts_with("first\n"), "{}", p.logs());
        // `sleep` dies of SIGTERM: no exit code, but a status, well within the deadline.
        let status = p.terminate(Duration::from_secs(5)).expect("stopped");
        assert_eq!(status.code(), None);
    }

    #[test]
    fn terminate_reports_the_exit_code() {
        let dir = TempDir::new("kit-proc");
        let mut p = Proc::start_blocking(
            "trap",
            &mut sh("trap 'exit 7' TERM; echo listening on http://x; while :; do sleep 0.05; done"),
            &dir,
        );
        assert_eq!(
            p.terminate(Duration::from_secs(5)).and_then(|s| s.code()),
            Some(7)
        );
    }

    #[test]
    fn a_process_ignoring_sigterm_is_killed_at_the_deadline() {
        let dir = TempDir::new("kit-proc");
        let mut p = Proc::start_blocking(
            "stubborn",
            &mut sh("trap '' TERM; echo listening on http://x; while :; do sleep 0.05; done"),
            &dir,
        );
        assert_eq!(p.terminate(Duration::from_millis(300)), None);
        assert!(p.try_status().is_some(), "killed after the deadline");
    }

    #[test]
    #[should_panic(expected = "exited without announcing its address")]
    fn exiting_without_announcing_fails_fast() {
        let dir = TempDir::new("kit-proc");
        Proc::start_blocking("silent", &mut sh("echo nothing to see"), &dir);
    }

    #[tokio::test]
    async fn async_start_and_exit() {
        let dir = TempDir::new("kit-proc");
        let mut p = Proc::start(
            "quick",
            &mut sh("echo listening on http://127.0.0.1:1; sleep 0.2; exit 3"),
            &dir,
        )
        .await;
        let s = p.wait_exit(Duration::from_secs(5)).await;
        assert_eq!(s.and_then(|s| s.code()), Some(3));
    }

    #[test]
    fn a_callers_variables_pass_and_rust_log_defaults_to_info() {
        let dir = TempDir::new("kit-proc");
        let mut cmd =
            sh("echo listening on http://x; echo \"[$UPSOAK_KIT_SET][$RUST_LOG]\"; sleep 5");
        cmd.env("UPSOAK_KIT_SET", "mine");
        let p = Proc::start_blocking("env", &mut cmd, &dir);
        let line = eventually_blocking(Duration::from_secs(5), POLL, || {
            p.stdout().lines().nth(1).map(str::to_owned)
        })
        .expect("second line");
        assert_eq!(line, "[mine][info]");
    }
}
