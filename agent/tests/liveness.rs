//! The agent's liveness against a Prometheus that accepts connections and never answers (a
//! TCP listener in this test that holds every connection: the hung peer is the point, and no
//! real Prometheus can be made to hang on demand): within three intervals `/healthz` fails and
//! the failed-evaluation counter moves; once a real Prometheus answers at that address, the
//! agent recovers. And one agent per state directory: a second exits 2 naming the first's pid.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::time::{Duration, Instant};

use upsoak_testkit::{POLL, Proc, Prometheus, TempDir, eventually, sample, scrape};

const BIN: &str = env!("CARGO_BIN_EXE_upsoak-agent");
/// The group's interval: the slots and the watchdog's unit.
const INTERVAL_S: u64 = 2;
const SPECS: &str = "groups:\n  - name: g\n    interval: 2s\n    slos:\n      - { name: up, expr: 'vector(1)', objective: \">= 1\", min_samples: 1 }\n";

/// Accepts every connection on `listener` and holds it open without a byte in answer, until
/// the returned token is cancelled (then drops them all and the listener).
fn hang(listener: std::net::TcpListener) -> tokio_util::sync::CancellationToken {
    let stop = tokio_util::sync::CancellationToken::new();
    let stopped = stop.clone();
    listener.set_nonblocking(true).unwrap();
    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            tokio::select! {
                _ = stopped.cancelled() => return,
                a = listener.accept() => if let Ok((s, _)) = a { held.push(s) },
            }
        }
    });
    stop
}

async fn status(url: &str) -> Option<(u16, String)> {
    let r = reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .ok()?;
    Some((r.status().as_u16(), r.text().await.unwrap_or_default()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_prometheus_fails_healthz_within_three_intervals_and_a_real_one_recovers_it() {
    let dir = TempDir::new("liveness");
    let specs = dir.write("slos.yaml", SPECS);
    let hung = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let prom_addr = hung.local_addr().unwrap().to_string();
    let stop_hanging = hang(hung);
    let began = Instant::now();
    let agent = Proc::start(
        "agent",
        Command::new(BIN)
            .arg("run")
            .arg(format!("--prometheus=http://{prom_addr}"))
            .arg(format!("--specs={}", specs.display()))
            .arg(format!(
                "--state-dir={}",
                dir.path().join("state").display()
            ))
            .args(["--listen=127.0.0.1:0", "--no-probes"])
            .args(["--query-timeout=1s", "--unhealthy-after=3"]),
        dir.path(),
    )
    .await;
    let url = agent.url().unwrap();
    let healthz = format!("{url}/healthz");
    let (code, body) = eventually(Duration::from_secs(30), POLL, || async {
        status(&healthz).await.filter(|(c, _)| *c == 503)
    })
    .await
    .unwrap_or_else(|e| panic!("/healthz never failed ({e}):\n{}", agent.logs()));
    let took = began.elapsed();
    // Three intervals from the loop's start, plus the start itself and one poll: a margin for
    // a loaded machine, never a fourth interval's worth of slack.
    assert!(
        took < Duration::from_secs(3 * INTERVAL_S + INTERVAL_S / 2 + 3),
        "/healthz failed only after {took:?}"
    );
    assert_eq!(code, 503);
    assert!(
        body.starts_with("stalled: the evaluation loop") && body.contains("last query failed"),
        "{body}"
    );
    let failures = eventually(Duration::from_secs(10), POLL, || async {
        let m = scrape(&url).await.ok()?;
        sample(
            &m,
            "upsoak_agent_rule_evaluation_failures_total{group=\"g\"}",
        )
        .filter(|v| *v >= 1.0)
    })
    .await
    .unwrap_or_else(|e| panic!("no failed evaluation counted ({e}):\n{}", agent.logs()));
    assert!(failures >= 1.0);
    assert_eq!(status(&format!("{url}/readyz")).await.unwrap().0, 503);

    // A real Prometheus at the same address: the agent recovers without a restart.
    stop_hanging.cancel();
    let prom_dir = dir.path().join("prometheus");
    std::fs::create_dir_all(&prom_dir).unwrap();
    let _prom = Prometheus::start_on(&prom_dir, "global: {}\n", &prom_addr).await;
    eventually(Duration::from_secs(30), POLL, || async {
        status(&healthz).await.filter(|(c, _)| *c == 200)
    })
    .await
    .unwrap_or_else(|e| panic!("/healthz never recovered ({e}):\n{}", agent.logs()));
    eventually(Duration::from_secs(10), POLL, || async {
        status(&format!("{url}/readyz"))
            .await
            .filter(|(c, _)| *c == 200)
    })
    .await
    .unwrap_or_else(|e| panic!("/readyz never became ready ({e}):\n{}", agent.logs()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_agent_on_the_same_state_dir_exits_2_naming_the_first() {
    let dir = TempDir::new("lock");
    let specs = dir.write("slos.yaml", SPECS);
    let state = dir.path().join("state");
    let args = |cmd: &mut Command| {
        cmd.arg("run")
            .arg("--prometheus=http://127.0.0.1:1")
            .arg(format!("--specs={}", specs.display()))
            .arg(format!("--state-dir={}", state.display()))
            .args(["--listen=127.0.0.1:0", "--no-probes"]);
    };
    let mut first = Command::new(BIN);
    args(&mut first);
    let first = Proc::start("first", &mut first, dir.path()).await;
    let mut second = Command::new(BIN);
    args(&mut second);
    let out = second.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("in use by pid {}", first.id())),
        "{stderr}"
    );
}
