//! The Producer's canaries against a real simulator: held across a (stalled) transition, each
//! upgrade-time fault loses them with its reason and they are replaced, a process that marks
//! itself Ready again (as a restarted simple-game-server does) is `restarted`; and the sidecar
//! binary exports them, with the apply timestamps, in a `/metrics` that promtool accepts.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use kube::api::{Api, ListParams};
use prometheus_client::registry::Registry;
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;
use upsoak_agones::{GameServer, GameServerState};
use upsoak_chaos::producer::canary::LossReason;
use upsoak_chaos::producer::events::ProducerMetrics;
use upsoak_chaos::producer::{self, CanaryConfig, FleetLoad, Generation, ProducerConfig};
use upsoak_common::names::{producer as pnames, wanderer as wnames};
use upsoak_testkit::{POLL, Proc, TempDir, eventually, promtool_check, sample, scrape};

const COUNT: usize = 3;

/// A simulator with Fleet `c` of 6 and `faults`; a Producer that only keeps 3 canaries on it
/// (no open-model load, no scaling), with a transition counter it is told about.
struct Rig {
    url: String,
    sim_stop: CancellationToken,
    stop: CancellationToken,
    metrics: ProducerMetrics,
    run: tokio::task::JoinHandle<Result<(), tokio::task::JoinError>>,
}

async fn rig(extra: &str, timeout: Duration) -> Rig {
    rig_with(
        extra,
        timeout,
        Duration::from_secs(3600),
        std::sync::Arc::new(|| 0),
    )
    .await
}

async fn rig_with(
    extra: &str,
    timeout: Duration,
    max_age: Duration,
    generation: Generation,
) -> Rig {
    let (url, sim_stop) = common::start_sim(
        &format!("fleets: [ {{ name: c, replicas: 6 }} ]\n{extra}"),
        3,
    )
    .await;
    let client = producer::client(Some(&url)).await.unwrap();
    let cfg = ProducerConfig {
        fleets: vec![FleetLoad {
            name: "c".into(),
            min_replicas: 6,
            max_replicas: 6,
            scale_every_min: Duration::ZERO,
            scale_every_max: Duration::ZERO,
        }],
        allocation_rate: 0.0,
        canaries: CanaryConfig {
            count: COUNT,
            interval: Duration::from_millis(200),
            timeout,
            max_age,
        },
        ..ProducerConfig::default()
    };
    assert!(cfg.problems().iter().next().is_none());
    let metrics = ProducerMetrics::default();
    let stop = CancellationToken::new();
    let run = tokio::spawn(producer::run_with(
        client,
        cfg,
        metrics.clone(),
        Some(generation),
        stop.clone(),
    ));
    let rig = Rig {
        url,
        sim_stop,
        stop,
        metrics,
        run,
    };
    rig.wait_active("the canaries to be held").await;
    rig
}

impl Rig {
    fn text(&self) -> String {
        let mut r = Registry::default();
        self.metrics.register(&mut r);
        upsoak_common::exposition::encode(&r, upsoak_common::exposition::Format::PrometheusText)
            .unwrap()
    }

    fn gauge(&self, name: &str) -> f64 {
        sample(&self.text(), &format!("{name} ")).unwrap_or(-1.0)
    }

    fn lost(&self) -> Vec<(LossReason, u64)> {
        LossReason::ALL
            .iter()
            .map(|r| (*r, self.metrics.canaries_lost(*r)))
            .collect()
    }

    async fn wait_active(&self, what: &str) {
        eventually(Duration::from_secs(30), POLL, || async {
            (self.metrics.canaries_active() == COUNT as i64).then_some(())
        })
        .await
        .unwrap_or_else(|t| panic!("waiting for {what}: {t}\n{}", self.text()));
    }

    async fn wait_lost(&self, reason: LossReason, n: u64) {
        eventually(Duration::from_secs(30), POLL, || async {
            (self.metrics.canaries_lost(reason) >= n).then_some(())
        })
        .await
        .unwrap_or_else(|t| panic!("waiting for {n} lost {reason:?}: {t}\n{}", self.text()));
    }

    async fn install(&self, version: &str) {
        let r = reqwest::Client::new()
            .post(format!("{}/upsoak/v1/install", self.url))
            .json(&serde_json::json!({ "version": version }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 202);
    }

    async fn window_closed(&self) {
        eventually(Duration::from_secs(30), POLL, || async {
            let t = scrape(&self.url).await.unwrap();
            t.contains("upsoak_sim_upgrade_in_progress 0").then_some(())
        })
        .await
        .unwrap();
    }

    async fn stop(self) {
        self.stop.cancel();
        self.run.await.unwrap().unwrap();
        // Every canary was told to EXIT: none is left held.
        assert_eq!(self.metrics.canaries_active(), 0);
        self.sim_stop.cancel();
    }
}

/// The game ports of the Allocated servers (only canaries allocate here).
async fn canary_ports(url: &str) -> Vec<u16> {
    let api: Api<GameServer> =
        Api::namespaced(producer::client(Some(url)).await.unwrap(), "default");
    api.list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .filter(|g| g.state() == Some(GameServerState::Allocated))
        .filter_map(|g| g.status.as_ref()?.ports.first())
        .map(|p| u16::try_from(p.port).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canaries_live_through_a_stalled_transition_and_a_restart_is_seen() {
    let r = rig(
        "upgrade_window: 300ms\nfaults:\n  - { name: stall, kind: upgrade_stalls, factor: 4, when: { version: 1.59.0 } }",
        Duration::from_millis(1500),
    )
    .await;
    assert_eq!(canary_ports(&r.url).await.len(), COUNT);
    let gaps = format!("{}_count ", pnames::CANARY_HEARTBEAT_GAP_SECONDS);
    eventually(Duration::from_secs(10), POLL, || async {
        (sample(&r.text(), &gaps)? >= 3.0).then_some(())
    })
    .await
    .unwrap();
    // A stalled window (1.2 s) loses nothing: the canaries outlive it.
    r.install("1.59.0").await;
    r.window_closed().await;
    assert!(r.lost().iter().all(|(_, n)| *n == 0), "{}", r.text());
    assert_eq!(r.metrics.canaries_active(), COUNT as i64);
    assert!(
        r.gauge(pnames::CANARY_OLDEST_AGE_SECONDS) >= 1.2,
        "{}",
        r.text()
    );
    assert!(r.gauge(pnames::CANARY_LONGEST_SILENCE_SECONDS) < 1.5);

    // A restarted simple-game-server calls SDK Ready as it starts: the canary is `restarted`.
    let port = canary_ports(&r.url).await[0];
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sock.send_to(b"READY", ("127.0.0.1", port)).await.unwrap();
    r.wait_lost(LossReason::Restarted, 1).await;
    r.wait_active("a replacement").await;
    let lost = r.lost();
    assert_eq!(
        lost.iter().map(|(_, n)| n).sum::<u64>(),
        1,
        "{lost:?}\n{}",
        r.text()
    );
    r.stop().await;
}

/// With PlayerTracking on, every GameServer Agones makes has `status.players.ids: null`
/// (`pkg/apis/agones/v1/gameserver.go`, `applyStatusDefaults`); the canaries still read their
/// servers' states and see one go back to Ready as `restarted`, not as a silent `timeout`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_player_tracking_on_canaries_read_ids_null_and_see_a_restart() {
    let r = rig(
        "initial: { version: 1.60.0, featureGates: PlayerTracking=true }",
        Duration::from_millis(1500),
    )
    .await;
    // The simulator serves the null, raw over HTTP, for the canaries' own servers.
    let body = reqwest::get(format!(
        "{}/apis/agones.dev/v1/namespaces/default/gameservers",
        r.url
    ))
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    let allocated: Vec<&serde_json::Value> = doc["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["status"]["state"] == "Allocated")
        .collect();
    assert_eq!(allocated.len(), COUNT, "{body}");
    for g in &allocated {
        assert!(
            g["status"]["players"]
                .get("ids")
                .is_some_and(serde_json::Value::is_null),
            "{g}"
        );
    }
    assert!(body.contains(r#""ids":null"#), "{body}");

    let port = canary_ports(&r.url).await[0];
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sock.send_to(b"READY", ("127.0.0.1", port)).await.unwrap();
    r.wait_lost(LossReason::Restarted, 1).await;
    r.wait_active("a replacement").await;
    assert_eq!(
        r.metrics.canaries_lost(LossReason::Timeout),
        0,
        "{}",
        r.text()
    );
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canaries_end_at_max_age_only_after_a_transition() {
    let transitions = std::sync::Arc::new(AtomicU64::new(0));
    let seen = transitions.clone();
    let r = rig_with(
        "",
        Duration::from_millis(1000),
        Duration::from_millis(1500),
        std::sync::Arc::new(move || seen.load(Ordering::SeqCst)),
    )
    .await;
    let allocated = |r: &Rig| {
        sample(
            &r.text(),
            &format!(
                "{}{{result=\"Allocated\"}}",
                pnames::CANARY_ALLOCATIONS_TOTAL
            ),
        )
        .unwrap_or(0.0)
    };
    // Past max_age without a transition: still the same canaries.
    eventually(Duration::from_secs(20), POLL, || async {
        (r.gauge(pnames::CANARY_OLDEST_AGE_SECONDS) > 2.5).then_some(())
    })
    .await
    .unwrap();
    assert_eq!(allocated(&r), COUNT as f64, "{}", r.text());
    // A transition went live: each ends (not lost) and is replaced by a younger one.
    transitions.store(1, Ordering::SeqCst);
    eventually(Duration::from_secs(20), POLL, || async {
        (allocated(&r) >= 2.0 * COUNT as f64).then_some(())
    })
    .await
    .unwrap_or_else(|t| panic!("replacements: {t}\n{}", r.text()));
    r.wait_active("the replacements").await;
    assert!(r.lost().iter().all(|(_, n)| *n == 0), "{}", r.text());
    // The gauge follows within an interval: the oldest canary is now a young replacement.
    eventually(Duration::from_secs(5), POLL, || async {
        (r.gauge(pnames::CANARY_OLDEST_AGE_SECONDS) < 1.0).then_some(())
    })
    .await
    .unwrap_or_else(|t| panic!("young replacements: {t}\n{}", r.text()));
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_that_kills_allocated_servers_loses_every_canary_as_deleted() {
    let r = rig(
        "upgrade_window: 1s\nfaults:\n  - { name: kill, kind: upgrade_kills_allocated, fraction: 1.0, when: { version: 1.59.0 } }",
        Duration::from_millis(1500),
    )
    .await;
    r.install("1.59.0").await;
    r.wait_lost(LossReason::Deleted, COUNT as u64).await;
    r.window_closed().await;
    r.wait_active("replacements").await;
    assert_eq!(
        r.metrics.canaries_lost(LossReason::Timeout),
        0,
        "{}",
        r.text()
    );
    assert_eq!(r.metrics.canaries_lost(LossReason::Restarted), 0);
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_that_drops_game_traffic_loses_canaries_by_timeout() {
    let r = rig(
        "upgrade_window: 300ms\nfaults:\n  - { name: mute, kind: upgrade_drops_game_traffic, duration: 3s, when: { version: 1.59.0 } }",
        Duration::from_millis(1200),
    )
    .await;
    r.install("1.59.0").await;
    // The silence shows while it lasts.
    eventually(Duration::from_secs(10), POLL, || async {
        (r.gauge(pnames::CANARY_LONGEST_SILENCE_SECONDS) > 1.0).then_some(())
    })
    .await
    .unwrap();
    r.wait_lost(LossReason::Timeout, 1).await;
    r.wait_active("replacements").await;
    let lost = r.lost();
    assert!(
        lost.iter()
            .all(|(reason, n)| *reason == LossReason::Timeout || *n == 0),
        "{lost:?}"
    );
    // Once traffic is back the replacements answer: the silence falls under the timeout.
    eventually(Duration::from_secs(15), POLL, || async {
        (r.gauge(pnames::CANARY_LONGEST_SILENCE_SECONDS) < 0.6).then_some(())
    })
    .await
    .unwrap();
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sidecar_exports_canaries_and_apply_timestamps_that_promtool_accepts() {
    let (sim, stop) = common::start_sim(
        "upgrade_window: 300ms\nfleets: [ { name: c, replicas: 6 } ]",
        4,
    )
    .await;
    let dir = TempDir::new("chaos-canaries");
    let config = dir.write(
        "sidecar.yaml",
        &format!(
            "listen: 127.0.0.1:0\nstate_dir: {}\nkube_server: {sim}\nwanderer:\n  space: {}\n  seed: 3\n  schedule: {{ period: 3s, jitter: 0 }}\n  applier: {{ kind: sim, url: \"{sim}\" }}\nproducer:\n  fleets: [ {{ name: c, min_replicas: 6, max_replicas: 6, scale_every_min: 0s, scale_every_max: 0s }} ]\n  allocation_rate: 0\n  canaries: {{ count: 2, interval: 500ms, timeout: 3s }}\n",
            dir.display(),
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("spaces/agones.yaml")
                .display(),
        ),
    );
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_upsoak-chaos"));
    cmd.args(["run", "--config"]).arg(&config);
    let mut proc = Proc::start("sidecar", &mut cmd, &dir).await;
    let url = proc.url().unwrap();
    let get = |n: &'static str| {
        let url = url.clone();
        async move { sample(&scrape(&url).await.ok()?, &format!("{n} ")) }
    };
    eventually(Duration::from_secs(30), POLL, || async {
        (get(pnames::CANARIES_ACTIVE).await? > 0.0).then_some(())
    })
    .await
    .unwrap_or_else(|t| panic!("canaries within 30 s: {t}\n{}", proc.logs()));
    // After the first transition: which generation the timestamps describe, and both of them.
    eventually(Duration::from_secs(30), POLL, || async {
        (get(wnames::GENERATION).await? >= 1.0).then_some(())
    })
    .await
    .unwrap_or_else(|t| panic!("a transition: {t}\n{}", proc.logs()));
    let text = scrape(&url).await.unwrap();
    let g = sample(&text, &format!("{} ", wnames::APPLY_GENERATION)).unwrap();
    let started = sample(
        &text,
        &format!("{} ", wnames::APPLY_STARTED_TIMESTAMP_SECONDS),
    )
    .unwrap();
    let finished = sample(
        &text,
        &format!("{} ", wnames::APPLY_FINISHED_TIMESTAMP_SECONDS),
    )
    .unwrap();
    assert!(g >= 1.0 && started > 1.7e9 && finished > 1.7e9, "{text}");
    for reason in pnames::LOSS_REASONS {
        let series = format!(
            "{}{{{}=\"{reason}\"}}",
            pnames::CANARIES_LOST_TOTAL,
            pnames::REASON_LABEL
        );
        assert!(text.contains(&series), "{series} in {text}");
    }
    if let Err(findings) = promtool_check(&text) {
        panic!("promtool: {findings:?}\n{text}");
    }
    let status = proc.terminate(Duration::from_secs(15)).unwrap();
    assert!(status.success(), "{}", proc.logs());
    stop.cancel();
}

#[test]
fn an_unmeetable_canary_configuration_exits_2_with_its_keys() {
    let dir = TempDir::new("chaos-canaries-bad");
    let config = dir.write(
        "sidecar.yaml",
        "state_dir: /tmp/unused\nwanderer:\n  space: s.yaml\n  seed: 1\n  applier: { kind: sim, url: \"http://127.0.0.1:1\" }\nproducer:\n  fleets: [ { name: c, min_replicas: 1, max_replicas: 3 } ]\n  canaries: { count: 4, interval: 5s, timeout: 2s }\n",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_upsoak-chaos"))
        .args(["run", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    for want in [
        "producer.canaries.count: 4 canaries cannot be held",
        "producer.canaries.interval: 5s is not below timeout 2s",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
    // A misspelt key is refused too.
    let typo = dir.write(
        "typo.yaml",
        "state_dir: /tmp/unused\nwanderer:\n  space: s.yaml\n  seed: 1\n  applier: { kind: sim, url: \"http://127.0.0.1:1\" }\nproducer:\n  canaries: { cuont: 2 }\n",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_upsoak-chaos"))
        .args(["run", "--config"])
        .arg(&typo)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("unknown field `cuont`"), "{err}");
}
