//! The end-to-end harness: the whole loop as real processes on loopback. The simulator, the
//! sidecar (`upsoak-chaos run`), Prometheus, Alertmanager and the agent, each started from its
//! binary with generated configuration in a temporary directory, stopped when dropped.
//!
//! The binaries are the workspace's own build (`cargo build --bins`, which `make test` runs
//! first), found next to the test executable. Prometheus and Alertmanager are Debian's.
//!
//! Test support only: a failure to set up is a test failure, so it panics with the reason.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A built binary of the workspace: `target/<profile>/<name>`, beside the test's `deps/`.
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

/// A free port on loopback (bound, read, released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Percent-encodes a query parameter's value.
pub fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Unix seconds, now.
pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

/// A directory removed on drop unless `KEEP_E2E_DIRS` is set (then its path is printed).
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!(
            "upsoak-e2e-{tag}-{}-{}",
            std::process::id(),
            (now() * 1000.0) as u64
        ));
        fs::create_dir_all(&p).expect("temp dir");
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("KEEP_E2E_DIRS").is_some() {
            eprintln!("kept {}", self.0.display());
        } else {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}

/// A child process, killed when dropped; its stdout and stderr go to files in the run directory.
pub struct Proc {
    pub name: String,
    child: Option<Child>,
    pub out: PathBuf,
    pub err: PathBuf,
}

impl Proc {
    pub fn spawn(name: &str, program: &Path, args: &[String], dir: &Path) -> Proc {
        let out = dir.join(format!("{name}.out"));
        let err = dir.join(format!("{name}.log"));
        let o = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&out)
            .expect("stdout file");
        let e = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&err)
            .expect("stderr file");
        let mut cmd = Command::new(program);
        // The binaries read UPSOAK_* overrides; the soak's configuration is only what it writes.
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("UPSOAK_") {
                cmd.env_remove(k);
            }
        }
        let child = cmd
            .args(args)
            .stdin(Stdio::null())
            .stdout(o)
            .stderr(e)
            .env("RUST_LOG", "info")
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        Proc {
            name: name.to_owned(),
            child: Some(child),
            out,
            err,
        }
    }

    /// Everything it logged, for failure messages.
    pub fn logs(&self) -> String {
        let tail = |p: &Path| {
            let t = fs::read_to_string(p).unwrap_or_default();
            let lines: Vec<&str> = t.lines().collect();
            lines[lines.len().saturating_sub(40)..].join("\n")
        };
        format!(
            "--- {} stdout\n{}\n--- {} stderr (last 40 lines)\n{}",
            self.name,
            tail(&self.out),
            self.name,
            tail(&self.err)
        )
    }

    /// SIGKILL: no chance to clean up.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then waits up to `secs` for the exit.
    pub fn terminate(&mut self, secs: u64) -> Option<ExitStatus> {
        let mut c = self.child.take()?;
        let _ = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            if let Ok(Some(s)) = c.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = c.kill();
        c.wait().ok()
    }

    /// Waits up to `secs` for the process to exit by itself.
    pub async fn exit(&mut self, secs: u64) -> Option<ExitStatus> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(s)) = c.try_wait()
            {
                self.child = None;
                return Some(s);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        None
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Polls `f` every 200 ms until it gives `Some`, for at most `secs`.
pub async fn eventually<T, F, Fut>(secs: u64, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {secs}s: {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// How a soak runs: short periods so that a test takes about a minute.
#[derive(Clone, Debug)]
pub struct Soak {
    /// Fault profiles (YAML list items for the simulator's `faults:`), e.g. tied to 1.59.0.
    pub faults: String,
    /// Time between transitions.
    pub period_s: u64,
    pub settle_s: u64,
    pub judge_s: u64,
    /// Evaluation interval of every SLO group (and the probes').
    pub interval_s: u64,
    pub allocation_rate: f64,
}

impl Default for Soak {
    fn default() -> Soak {
        Soak {
            faults: String::new(),
            period_s: 20,
            settle_s: 6,
            judge_s: 10,
            interval_s: 2,
            allocation_rate: 8.0,
        }
    }
}

/// The walk goes 1.58.0 → 1.59.0 → 1.58.0 → …: two versions and no gates, so a fault tied
/// to 1.59.0 comes in with every odd generation and leaves with every even one.
pub const SPACE: &str = "\
versions:
  - { version: 1.58.0, gates: {} }
  - { version: 1.59.0, gates: {} }
hops: { max_up: 1, max_down: 1, allow_downgrade: true }
";

/// A fault profile of kind `kind` (with its `params`, YAML flow fields, maybe none) that the
/// simulator applies while 1.59.0 is installed, as an item of [`Soak::faults`].
pub fn fault_on_1_59(kind: &str, params: &str) -> String {
    let sep = if params.is_empty() { "" } else { ", " };
    format!("  - {{ name: {kind}, kind: {kind}, {params}{sep}when: {{ version: 1.59.0 }} }}")
}

/// The SLOs of the end-to-end soaks: one or more for every fault kind the simulator has.
pub fn slos(interval_s: u64) -> String {
    format!(
        r#"groups:
  - name: control-plane
    interval: {interval_s}s
    slos:
      - name: controller-ready
        expr: min(upsoak_agent_probe_success{{probe="agones-controller"}})
        objective: ">= 1"
        severity: critical
      - name: controller-memory-growth
        description: MiB per hour.
        expr: sum(deriv(upsoak_sim_controller_resident_memory_bytes[5s])) * 3600 / 2^20
        baseline: "<= +64"
        severity: warning
  - name: fleets
    interval: {interval_s}s
    slos:
      - name: fleet-converged
        expr: sum(agones_fleets_replicas_count{{type="total"}}) / clamp_min(sum(agones_fleets_replicas_count{{type="desired"}}), 1)
        objective: ">= 0.8"
        severity: critical
      - name: gameservers-failed
        expr: sum(agones_gameservers_count{{type=~"Error|Unhealthy"}}) or vector(0)
        baseline: "<= +2"
        severity: critical
  - name: allocation
    interval: {interval_s}s
    slos:
      - name: allocation-success
        expr: (sum(rate(upsoak_producer_allocations_total{{result="Allocated"}}[5s])) or vector(0)) / clamp_min(sum(rate(upsoak_producer_allocations_total[5s])), 1e-9)
        objective: ">= 0.9"
        baseline: ">= -5%"
        severity: critical
      - name: allocation-latency-p99
        expr: histogram_quantile(0.99, sum by (le) (rate(upsoak_producer_allocation_duration_seconds_bucket{{result="Allocated"}}[5s])))
        description: An absolute margin (20 ms) over the baseline; a relative one judges noise at a few ms.
        baseline: "<= +0.02"
        severity: critical
"#
    )
}

/// The whole loop, running.
pub struct Stack {
    pub soak: Soak,
    pub dir: PathBuf,
    pub sim: Proc,
    pub sim_url: String,
    pub chaos: Option<Proc>,
    pub chaos_port: u16,
    pub prom: Option<Proc>,
    pub prom_port: u16,
    pub am: Proc,
    pub am_url: String,
    pub agent: Option<Proc>,
    pub agent_port: u16,
    http: reqwest::Client,
    _tmp: TempDir,
}

fn write(p: &Path, text: &str) {
    let mut f = fs::File::create(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    f.write_all(text.as_bytes()).expect("write");
}

/// Waits for a "listening on URL" line in `p`.
async fn listening(p: &Proc) -> String {
    eventually(
        20,
        &format!("{} to listen\n{}", p.name, p.logs()),
        || async {
            fs::read_to_string(&p.out)
                .ok()?
                .lines()
                .find_map(|l| l.strip_prefix("listening on ").map(str::to_owned))
        },
    )
    .await
}

async fn wait_ready(http: &reqwest::Client, url: &str) {
    eventually(20, &format!("{url} ready"), || async {
        http.get(url)
            .send()
            .await
            .ok()
            .filter(|r| r.status().is_success())
            .map(|_| ())
    })
    .await
}

/// Prometheus on `port` with the run's configuration and storage, once ready.
async fn spawn_prometheus(dir: &Path, port: u16, http: &reqwest::Client) -> Proc {
    let p = Proc::spawn(
        "prometheus",
        Path::new("prometheus"),
        &[
            format!("--config.file={}", dir.join("prometheus.yml").display()),
            format!("--storage.tsdb.path={}", dir.join("tsdb").display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
        ],
        dir,
    );
    wait_ready(http, &format!("http://127.0.0.1:{port}/-/ready")).await;
    p
}

impl Stack {
    /// Starts Prometheus first (its discovery sends targets ~5 s after start), then
    /// Alertmanager, the simulator and the sidecar. The agent starts with [`Stack::start_agent`]
    /// once a baseline is recorded.
    pub async fn start(tag: &str, soak: Soak) -> Stack {
        let tmp = TempDir::new(tag);
        let dir = tmp.0.clone();
        let (sim_port, chaos_port, prom_port, am_port, agent_port) = (
            free_port(),
            free_port(),
            free_port(),
            free_port(),
            free_port(),
        );
        write(
            &dir.join("prometheus.yml"),
            &format!(
                "global: {{ scrape_interval: 1s, evaluation_interval: 1s }}\nscrape_configs:\n  - job_name: agones\n    static_configs: [ {{ targets: ['127.0.0.1:{sim_port}'] }} ]\n  - job_name: upsoak-chaos\n    static_configs: [ {{ targets: ['127.0.0.1:{chaos_port}'] }} ]\n  - job_name: upsoak-agent\n    static_configs: [ {{ targets: ['127.0.0.1:{agent_port}'] }} ]\n"
            ),
        );
        write(
            &dir.join("alertmanager.yml"),
            &format!(
                "route:\n  receiver: upsoak\n  group_by: [alertname, slo]\n  group_wait: 1s\n  group_interval: 2s\nreceivers:\n  - name: upsoak\n    webhook_configs:\n      - url: http://127.0.0.1:{agent_port}/api/v1/alertmanager\n"
            ),
        );
        let http = reqwest::Client::new();
        let am = Proc::spawn(
            "alertmanager",
            Path::new("prometheus-alertmanager"),
            &[
                format!("--config.file={}", dir.join("alertmanager.yml").display()),
                format!("--storage.path={}", dir.join("alertmanager").display()),
                format!("--web.listen-address=127.0.0.1:{am_port}"),
                "--cluster.listen-address=".into(),
            ],
            &dir,
        );
        let prom = spawn_prometheus(&dir, prom_port, &http).await;
        // The simulator: Agones 1.58.0 installed, a quick lifecycle, one Fleet, the faults.
        let default = fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../sim/config/default.yaml"),
        )
        .expect("sim/config/default.yaml");
        let faults = if soak.faults.trim().is_empty() {
            "faults: []\n".to_owned()
        } else {
            format!("faults:\n{}\n", soak.faults)
        };
        write(
            &dir.join("sim.yaml"),
            &format!(
                "{}\nlifecycle:\n  scheduled_after: 100ms\n  request_ready_after: 200ms\n  ready_after: 100ms\n  delete_after_shutdown: 200ms\n  delete_after_failure: 5s\n  tick: 50ms\nallocation:\n  latency: 5ms\nupgrade_window: 1s\nfleets:\n  - name: simple-game-server\n    replicas: 40\n{faults}",
                default.replace("  version: 1.60.0\n", "  version: 1.58.0\n")
            ),
        );
        let sim = Proc::spawn(
            "sim",
            &bin("upsoak-sim"),
            &[
                "--listen".into(),
                format!("127.0.0.1:{sim_port}"),
                "--config".into(),
                dir.join("sim.yaml").display().to_string(),
            ],
            &dir,
        );
        listening(&sim).await;
        let sim_url = format!("http://127.0.0.1:{sim_port}");
        write(&dir.join("space.yaml"), SPACE);
        write(
            &dir.join("sidecar.yaml"),
            &format!(
                "listen: 127.0.0.1:{chaos_port}\nstate_dir: {}\nkube_server: {}\nwanderer:\n  space: {}\n  seed: 7\n  strategy: random\n  schedule: {{ period: {}s, jitter: 0 }}\n  apply_timeout: 30s\n  applier: {{ kind: sim, url: \"{}\" }}\nproducer:\n  fleets: [ {{ name: simple-game-server, min_replicas: 38, max_replicas: 42, scale_every_min: 10s, scale_every_max: 20s }} ]\n  allocation_rate: {}\n  session: {{ min_length: 1s, max_length: 3s, max_players: 4 }}\n  window: 10s\n",
                dir.join("chaos").display(),
                sim_url,
                dir.join("space.yaml").display(),
                soak.period_s,
                sim_url,
                soak.allocation_rate,
            ),
        );
        write(&dir.join("slos.yaml"), &slos(soak.interval_s));
        let am_url = format!("http://127.0.0.1:{am_port}");
        wait_ready(&http, &format!("{am_url}/-/ready")).await;
        let mut stack = Stack {
            soak,
            dir,
            sim,
            sim_url,
            chaos: None,
            chaos_port,
            prom: Some(prom),
            prom_port,
            am,
            am_url,
            agent: None,
            agent_port,
            http,
            _tmp: tmp,
        };
        stack.start_sidecar().await;
        stack
    }

    pub fn prom_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.prom_port)
    }

    /// Starts Prometheus on its port and storage (again, after [`Stack::stop_prometheus`]).
    pub async fn start_prometheus(&mut self) {
        self.prom = Some(spawn_prometheus(&self.dir, self.prom_port, &self.http).await);
    }

    pub fn stop_prometheus(&mut self) {
        if let Some(mut p) = self.prom.take() {
            p.terminate(10);
        }
    }

    /// Starts (or restarts) the sidecar with its configuration and journal.
    pub async fn start_sidecar(&mut self) {
        let p = Proc::spawn(
            "chaos",
            &bin("upsoak-chaos"),
            &[
                "run".into(),
                "--config".into(),
                self.dir.join("sidecar.yaml").display().to_string(),
            ],
            &self.dir,
        );
        wait_ready(
            &self.http,
            &format!("http://127.0.0.1:{}/healthz", self.chaos_port),
        )
        .await;
        self.chaos = Some(p);
    }

    /// An instant query: the value of the first series, if any.
    pub async fn query(&self, promql: &str) -> Option<f64> {
        let v: Value = self
            .http
            .get(format!(
                "{}/api/v1/query?query={}",
                self.prom_url(),
                url_encode(promql)
            ))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
    }

    /// Waits until the sidecar has exported `generation` to Prometheus.
    pub async fn wait_generation(&self, generation: u64, secs: u64) {
        eventually(
            secs,
            &format!("generation {generation} in Prometheus"),
            || async {
                self.query("max(upsoak_wanderer_generation)")
                    .await
                    .filter(|g| *g >= generation as f64)
                    .map(|_| ())
            },
        )
        .await
    }

    /// Records the baseline over the last `secs` seconds (the walk must not have moved yet).
    pub fn record_baseline(&self, secs: u64) {
        let out = Command::new(bin("upsoak-agent"))
            .args(["baseline", "record", "--prometheus", &self.prom_url()])
            .args([
                "--from",
                &format!("-{secs}s"),
                "--to",
                "now",
                "--step",
                "1s",
            ])
            .arg("--specs")
            .arg(self.dir.join("slos.yaml"))
            .arg("--out")
            .arg(self.dir.join("baseline.json"))
            .output()
            .expect("upsoak-agent baseline record");
        assert!(
            out.status.success(),
            "baseline record failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts (or restarts) the agent on its port and state directory.
    pub async fn start_agent(&mut self, max_transitions: Option<usize>) {
        let s = &self.soak;
        let mut args: Vec<String> = [
            "run",
            "--prometheus",
            &self.prom_url(),
            "--specs",
            &self.dir.join("slos.yaml").display().to_string(),
            "--baseline",
            &self.dir.join("baseline.json").display().to_string(),
            "--state-dir",
            &self.dir.join("agent").display().to_string(),
            "--listen",
            &format!("127.0.0.1:{}", self.agent_port),
            "--alertmanager",
            &self.am_url,
            "--kube-server",
            &self.sim_url,
            "--annotations-file",
            &self.dir.join("annotations.jsonl").display().to_string(),
            "--settle",
            &format!("{}s", s.settle_s),
            "--judge-window",
            &format!("{}s", s.judge_s),
            "--probe-interval",
            &format!("{}s", s.interval_s),
        ]
        .iter()
        .map(|x| x.to_string())
        .collect();
        if let Some(m) = max_transitions {
            args.extend(["--max-transitions".into(), m.to_string()]);
        }
        let p = Proc::spawn("agent", &bin("upsoak-agent"), &args, &self.dir);
        listening(&p).await;
        self.agent = Some(p);
    }

    /// The agent's verdict history (`history.json`), or `Null` before its first write.
    pub fn history(&self) -> Value {
        fs::read_to_string(self.dir.join("agent/history.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(Value::Null)
    }

    /// The judged transitions of the history.
    pub fn judged(&self) -> Vec<Value> {
        self.history()["transitions"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|t| !t["judged"].is_null())
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Waits until the agent has judged `n` transitions.
    pub async fn wait_judged(&self, n: usize, secs: u64) -> Vec<Value> {
        let what = format!("{n} transitions judged\n{}", self.logs());
        eventually(secs, &what, || async {
            let j = self.judged();
            (j.len() >= n).then_some(j)
        })
        .await
    }

    /// `upsoak-agent report` on the state directory: (exit code, stdout).
    pub fn report(&self, format: &str) -> (i32, String) {
        let out = Command::new(bin("upsoak-agent"))
            .args(["report", "--format", format, "--state-dir"])
            .arg(self.dir.join("agent"))
            .output()
            .expect("upsoak-agent report");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    /// The alerts Alertmanager holds (API v2).
    pub async fn alerts(&self) -> Vec<Value> {
        let r = self
            .http
            .get(format!("{}/api/v2/alerts", self.am_url))
            .send()
            .await
            .expect("alertmanager reachable");
        r.json::<Vec<Value>>().await.expect("alerts JSON")
    }

    /// One metric of a process's `/metrics` (the sum over its series).
    pub async fn scrape(&self, port: u16, metric: &str) -> Option<f64> {
        let text = self
            .http
            .get(format!("http://127.0.0.1:{port}/metrics"))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        let values: Vec<f64> = text
            .lines()
            .filter(|l| {
                l.starts_with(metric)
                    && matches!(l.as_bytes().get(metric.len()), Some(b' ') | Some(b'{'))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
            .collect();
        (!values.is_empty()).then(|| values.iter().sum())
    }

    /// The sidecar's journal, one JSON value per line.
    pub fn journal(&self) -> Vec<Value> {
        fs::read_to_string(self.dir.join("chaos/journal.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Logs of every process, for failure messages.
    pub fn logs(&self) -> String {
        let mut s = self.sim.logs();
        for p in [&self.chaos, &self.agent, &self.prom].into_iter().flatten() {
            s.push('\n');
            s.push_str(&p.logs());
        }
        s
    }
}

/// Seconds from the start of a transition's judged window to its verdict.
pub fn detection_latency(t: &Value) -> f64 {
    let j = &t["judged"];
    (j["judged_at"].as_i64().unwrap_or(0) - j["window_start"].as_i64().unwrap_or(0)) as f64
}

/// Starts a stack, records the baseline from the steady window before the first transition,
/// and starts the agent.
pub async fn soak(tag: &str, soak: Soak, max_transitions: Option<usize>) -> Stack {
    let mut s = Stack::start(tag, soak).await;
    // The first transition comes one period after the sidecar started; the baseline is the
    // 9 s before it, once Prometheus has a few scrapes of the producer's rates.
    let next = eventually(30, "the sidecar's next transition time", || async {
        s.query("upsoak_wanderer_next_transition_timestamp_seconds")
            .await
    })
    .await;
    let wait = next - 3.0 - now();
    assert!(
        wait > 5.0,
        "too little time before the first transition ({wait:.1}s)"
    );
    tokio::time::sleep(std::time::Duration::from_secs_f64(wait)).await;
    s.record_baseline(9);
    s.start_agent(max_transitions).await;
    s
}

pub fn version(t: &Value, side: &str) -> String {
    t[side]["version"].as_str().unwrap_or("").to_owned()
}

pub fn verdict(t: &Value) -> String {
    t["judged"]["verdict"].as_str().unwrap_or("").to_owned()
}

/// The SLOs of a judged transition with the verdict `v`, as `group/slo`.
pub fn slos_with(t: &Value, v: &str) -> Vec<String> {
    t["judged"]["slos"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(_, s)| s["evidence"]["verdict"] == v)
                .map(|(k, _)| k.clone())
                .collect()
        })
        .unwrap_or_default()
}

pub fn summary(t: &Value) -> String {
    let mut s = format!(
        "generation {} {}→{}: {}",
        t["generation"],
        version(t, "from"),
        version(t, "to"),
        verdict(t)
    );
    if let Some(m) = t["judged"]["slos"].as_object() {
        for (k, v) in m {
            s.push_str(&format!(
                "\n  {k}: {} ({})",
                v["evidence"]["verdict"], v["evidence"]["reason"]
            ));
        }
    }
    s
}
