//! The end-to-end harness: the whole loop as real processes on loopback. The simulator, the
//! sidecar (`upsoak-chaos run`), Prometheus, Alertmanager and the agent, each started from its
//! binary with generated configuration in a temporary directory, stopped when dropped.
//!
//! The binaries are the workspace's own build (`cargo build --bins`, which `make test` runs
//! first), found next to the test executable. Prometheus and Alertmanager are Debian's. The
//! generic parts (processes, launchers, waiting, scraping) are `upsoak-testkit`'s; this crate
//! keeps what is specific to a soak.
//!
//! Test support only: a failure to set up is a test failure, so it panics with the reason.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use upsoak_testkit::{
    Alertmanager, Proc, Prometheus, TempDir, bin, eventually, free_port, scrape, scrape_config,
    sum_series, unix_now,
};

pub mod conventions;
pub mod rehearse;

/// How often the harness polls a soak's state (Prometheus, the agent's history).
const POLL: Duration = Duration::from_millis(200);

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
    /// Judge the upgrades themselves too: the SLOs gain [`disruption_slos`].
    pub disruption: bool,
    /// Prometheus and the SLOs as on a real stack: Agones' ServiceMonitor job names and
    /// relabelling, the default `rules/slos.yaml` ([`conventions`]); the agent judges at
    /// `interval_s` steps.
    pub conventions: bool,
    /// The agent's `--steady-every`: chunks of the steady period after the first window;
    /// `None`: the agent's default (1 h, beyond any short soak).
    pub steady_every_s: Option<u64>,
    /// The Fleet's replicas; the Producer scales it within ±2 of them.
    pub fleet_replicas: u32,
    /// YAML appended to the simulator's config (top-level keys), e.g. `allocator_service:`.
    pub sim_extra: String,
    /// YAML appended to the sidecar's `producer:` section (lines indented two spaces).
    pub producer_extra: String,
    /// SLO groups appended to the spec (items of `groups:`).
    pub slos_extra: String,
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
            disruption: false,
            conventions: false,
            steady_every_s: None,
            fleet_replicas: 40,
            sim_extra: String::new(),
            producer_extra: String::new(),
            slos_extra: String::new(),
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

/// The disruption group of the soaks (1 s scrapes): each SLO judged once per transition from
/// its apply's start to its settle end. The simulator's upgrade window (1 s) refuses
/// allocations, so a clean upgrade has an outage of a few seconds; a clean heartbeat gap is the
/// 1 s interval, a dropped one is capped near the canaries' 5 s timeout. The objectives sit in
/// between with room for a loaded machine; the baselines (after 3 transitions) add an
/// absolute margin over the median of the earlier transitions.
pub fn disruption_slos(interval_s: u64) -> String {
    format!(
        r#"  - name: disruption
    interval: {interval_s}s
    slos:
      - name: canaries-lost
        window: disruption
        expr: sum(increase(upsoak_producer_canaries_lost_total[${{window}}]))
        objective: "<= 0"
        severity: critical
      - name: canary-longest-gap
        window: disruption
        expr: max(max_over_time(upsoak_producer_canary_longest_silence_seconds[${{window}}]))
        objective: "<= 3"
        baseline: "<= +2"
        min_transitions: 3
        severity: critical
      - name: allocation-outage-seconds
        window: disruption
        expr: sum_over_time(((sum(irate(upsoak_producer_allocations_total{{result!="Allocated"}}[5s])) or sum(irate(upsoak_producer_allocations_total[5s])) * 0) > bool 0)[${{window}}:1s])
        objective: "<= 6"
        baseline: "<= +4"
        min_transitions: 3
        severity: critical
"#
    )
}

/// The whole loop, running.
///
/// The simulator, Prometheus and Alertmanager start on port 0 and announce their address. The
/// sidecar's and the agent's ports are picked before they start: Prometheus scrapes them and
/// Alertmanager posts to the agent from the beginning, and a restart must come back on the
/// same port.
pub struct Stack {
    pub soak: Soak,
    pub dir: PathBuf,
    pub sim: Proc,
    pub sim_url: String,
    pub chaos: Option<Proc>,
    pub chaos_port: u16,
    pub prom: Option<Prometheus>,
    prom_addr: String,
    prom_config: String,
    pub am: Alertmanager,
    pub am_url: String,
    pub agent: Option<Proc>,
    pub agent_port: u16,
    _tmp: TempDir,
}

fn write(p: &Path, text: &str) {
    std::fs::write(p, text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
}

/// `host:port` of `http://host:port`.
fn host_port(url: &str) -> &str {
    url.trim_start_matches("http://")
}

impl Stack {
    /// Starts the simulator, Alertmanager, Prometheus (its discovery sends targets ~5 s after
    /// start, so it starts before the sidecar) and the sidecar. The agent starts with
    /// [`Stack::start_agent`] once a baseline is recorded.
    pub async fn start(tag: &str, soak: Soak) -> Stack {
        let tmp = TempDir::new(&format!("e2e-{tag}"));
        let dir = tmp.path().to_owned();
        let (chaos_port, agent_port) = (free_port(), free_port());
        // The simulator: Agones 1.58.0 installed, a quick lifecycle, one Fleet, the faults. No
        // batch wait: the soaks' faults are sized against the pick-to-commit latency, and their
        // space walks no tunable (the batch loop: `sim/tests/batch_wait.rs` and `make demo`).
        let default = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../sim/config/default.yaml"),
        )
        .expect("sim/config/default.yaml");
        let faults = if soak.faults.trim().is_empty() {
            "faults: []\n".to_owned()
        } else {
            format!("faults:\n{}\n", soak.faults)
        };
        let replicas = soak.fleet_replicas;
        let (min_replicas, max_replicas) = (replicas.saturating_sub(2), replicas + 2);
        write(
            &dir.join("sim.yaml"),
            &format!(
                "{}\nlifecycle:\n  scheduled_after: 100ms\n  request_ready_after: 200ms\n  ready_after: 100ms\n  delete_after_shutdown: 200ms\n  delete_after_failure: 5s\n  tick: 50ms\nallocation:\n  latency: 5ms\n  batch_wait: 0ms\nupgrade_window: 1s\nfleets:\n  - name: simple-game-server\n    replicas: {replicas}\n{faults}{}\n",
                default.replace("  version: 1.60.0\n", "  version: 1.58.0\n"),
                soak.sim_extra,
            ),
        );
        let sim = Proc::start(
            "sim",
            Command::new(bin("upsoak-sim"))
                .args(["--listen", "127.0.0.1:0", "--config"])
                .arg(dir.join("sim.yaml")),
            &dir,
        )
        .await;
        let sim_url = sim.url().expect("announced");
        let am = Alertmanager::start(
            &dir,
            &format!(
                "route:\n  receiver: upsoak\n  group_by: [alertname, slo]\n  group_wait: 1s\n  group_interval: 2s\nreceivers:\n  - name: upsoak\n    webhook_configs:\n      - url: http://127.0.0.1:{agent_port}/api/v1/alertmanager\n"
            ),
        )
        .await;
        let am_url = am.url().to_owned();
        let prom_config = if soak.conventions {
            conventions::prometheus_config(host_port(&sim_url), chaos_port, agent_port, true)
        } else {
            scrape_config(&[
                ("agones", host_port(&sim_url)),
                ("upsoak-chaos", &format!("127.0.0.1:{chaos_port}")),
                ("upsoak-agent", &format!("127.0.0.1:{agent_port}")),
            ])
        };
        let prom = Prometheus::start(&dir, &prom_config).await;
        write(&dir.join("space.yaml"), SPACE);
        write(
            &dir.join("sidecar.yaml"),
            &format!(
                "listen: 127.0.0.1:{chaos_port}\nstate_dir: {}\nkube_server: {}\nwanderer:\n  space: {}\n  seed: 7\n  strategy: random\n  schedule: {{ period: {}s, jitter: 0 }}\n  apply_timeout: 30s\n  applier: {{ kind: sim, url: \"{}\" }}\nproducer:\n  fleets: [ {{ name: simple-game-server, min_replicas: {min_replicas}, max_replicas: {max_replicas}, scale_every_min: 10s, scale_every_max: 20s }} ]\n  allocation_rate: {}\n  arrivals: fixed\n  session: {{ min_length: 1s, max_length: 3s, max_players: 4 }}\n  capacity: {{ replace_time: 500ms }}\n  window: 10s\n{}",
                dir.join("chaos").display(),
                sim_url,
                dir.join("space.yaml").display(),
                soak.period_s,
                sim_url,
                soak.allocation_rate,
                soak.producer_extra,
            ),
        );
        let specs = if soak.conventions {
            conventions::default_slos()
        } else {
            let mut specs = slos(soak.interval_s);
            if soak.disruption {
                specs.push_str(&disruption_slos(soak.interval_s));
            }
            specs.push_str(&soak.slos_extra);
            specs
        };
        write(&dir.join("slos.yaml"), &specs);
        let mut stack = Stack {
            soak,
            dir,
            sim,
            sim_url,
            chaos: None,
            chaos_port,
            prom_addr: prom.addr().to_owned(),
            prom: Some(prom),
            prom_config,
            am,
            am_url,
            agent: None,
            agent_port,
            _tmp: tmp,
        };
        stack.start_sidecar().await;
        stack
    }

    pub fn prom_url(&self) -> String {
        format!("http://{}", self.prom_addr)
    }

    pub fn chaos_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.chaos_port)
    }

    pub fn agent_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.agent_port)
    }

    /// Starts Prometheus on its address and storage (again, after [`Stack::stop_prometheus`]).
    pub async fn start_prometheus(&mut self) {
        let p = Prometheus::start_on(&self.dir, &self.prom_config, &self.prom_addr).await;
        self.prom = Some(p);
    }

    pub fn stop_prometheus(&mut self) {
        if let Some(mut p) = self.prom.take() {
            p.stop();
        }
    }

    /// Starts (or restarts) the sidecar with its configuration and journal.
    pub async fn start_sidecar(&mut self) {
        let p = Proc::start(
            "chaos",
            Command::new(bin("upsoak-chaos"))
                .args(["run", "--config"])
                .arg(self.dir.join("sidecar.yaml")),
            &self.dir,
        )
        .await;
        self.chaos = Some(p);
    }

    /// An instant query: the value of the first series, if any (none while Prometheus is down).
    pub async fn query(&self, promql: &str) -> Option<f64> {
        self.prom.as_ref()?.query(promql).await
    }

    /// Waits until the sidecar has exported `generation` to Prometheus.
    pub async fn wait_generation(&self, generation: u64, secs: u64) {
        eventually(Duration::from_secs(secs), POLL, || async {
            self.query("max(upsoak_wanderer_generation)")
                .await
                .filter(|g| *g >= generation as f64)
                .map(|_| ())
        })
        .await
        .unwrap_or_else(|e| {
            panic!(
                "generation {generation} in Prometheus: {e}\n{}",
                self.logs()
            )
        });
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
        let mut cmd = Command::new(bin("upsoak-agent"));
        cmd.args(["run", "--prometheus", &self.prom_url()])
            .arg("--specs")
            .arg(self.dir.join("slos.yaml"))
            .arg("--baseline")
            .arg(self.dir.join("baseline.json"))
            .arg("--state-dir")
            .arg(self.dir.join("agent"))
            .args(["--listen", &format!("127.0.0.1:{}", self.agent_port)])
            .args([
                "--alertmanager",
                &self.am_url,
                "--kube-server",
                &self.sim_url,
            ])
            .arg("--annotations-file")
            .arg(self.dir.join("annotations.jsonl"))
            .args(["--settle", &format!("{}s", s.settle_s)])
            .args(["--judge-window", &format!("{}s", s.judge_s)])
            .args(["--probe-interval", &format!("{}s", s.interval_s)]);
        if s.conventions {
            // The default specs evaluate every 15 s; a short soak judges at its own step.
            cmd.args(["--step", &format!("{}s", s.interval_s)]);
        }
        if let Some(e) = s.steady_every_s {
            cmd.args(["--steady-every", &format!("{e}s")]);
        }
        if let Some(m) = max_transitions {
            cmd.args(["--max-transitions", &m.to_string()]);
        }
        self.agent = Some(Proc::start("agent", &mut cmd, &self.dir).await);
    }

    /// The agent's verdict history (`history.json`), or `Null` before its first write.
    pub fn history(&self) -> Value {
        std::fs::read_to_string(self.dir.join("agent/history.json"))
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
        eventually(Duration::from_secs(secs), POLL, || async {
            let j = self.judged();
            (j.len() >= n).then_some(j)
        })
        .await
        .unwrap_or_else(|e| panic!("{n} transitions judged: {e}\n{}", self.logs()))
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
        self.am.alerts().await
    }

    /// One metric of a process's `/metrics` at `url` (the sum over its series); `metric` may
    /// carry labels to pick one series.
    pub async fn scrape(&self, url: &str, metric: &str) -> Option<f64> {
        sum_series(&scrape(url).await.ok()?, metric)
    }

    /// The sidecar's journal, one JSON value per line.
    pub fn journal(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.join("chaos/journal.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Logs of every process, for failure messages.
    pub fn logs(&self) -> String {
        let mut s = self.sim.logs();
        for p in [&self.chaos, &self.agent].into_iter().flatten() {
            s.push('\n');
            s.push_str(&p.logs());
        }
        if let Some(p) = &self.prom {
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
    let next = eventually(Duration::from_secs(30), POLL, || async {
        s.query("upsoak_wanderer_next_transition_timestamp_seconds")
            .await
    })
    .await
    .unwrap_or_else(|e| panic!("the sidecar's next transition time: {e}\n{}", s.logs()));
    let wait = next - 3.0 - unix_now();
    assert!(
        wait > 5.0,
        "too little time before the first transition ({wait:.1}s)"
    );
    // A wait for a moment on the clock (the steady window before the transition), not for a state.
    tokio::time::sleep(Duration::from_secs_f64(wait)).await;
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

/// The disruption verdict of a transition (`""` before it was judged).
pub fn disruption_verdict(t: &Value) -> String {
    t["disruption"]["verdict"].as_str().unwrap_or("").to_owned()
}

/// The SLOs of a transition's disruption window with the verdict `v`, as `group/slo`.
pub fn disrupted_with(t: &Value, v: &str) -> Vec<String> {
    t["disruption"]["slos"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(_, s)| s["evidence"]["verdict"] == v)
                .map(|(k, _)| k.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// The transition's disruption window in lines: window, phases, each SLO's value and reason.
pub fn disruption_summary(t: &Value) -> String {
    let d = &t["disruption"];
    let mut s = format!(
        "generation {} {}→{}: disruption {} (window {}..{}, {})",
        t["generation"],
        version(t, "from"),
        version(t, "to"),
        disruption_verdict(t),
        d["window_start"],
        d["window_end"],
        d["phases"]
    );
    if let Some(m) = d["slos"].as_object() {
        for (k, v) in m {
            s.push_str(&format!(
                "\n  {k}: {} = {} ({})",
                v["evidence"]["verdict"], v["evidence"]["value"], v["evidence"]["reason"]
            ));
        }
    }
    s
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
