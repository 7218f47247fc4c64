//! The Producer against a real simulator over HTTP (kube-rs) and UDP: open-model scheduling,
//! errors by kind through an upgrade window, sessions that end in EXIT, Fleet scaling, and
//! `UnAllocated` from a full Fleet counted `FleetFull`.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;
use upsoak_chaos::producer::events::ProducerMetrics;
use upsoak_chaos::producer::{self, FleetLoad, ProducerConfig, SessionConfig, SessionMode};
use upsoak_testkit::{POLL, eventually};

async fn start_sim(extra: &str) -> (String, CancellationToken) {
    let yaml = format!(
        "lifecycle: {{ scheduled_after: 20ms, request_ready_after: 20ms, ready_after: 20ms, delete_after_shutdown: 50ms, tick: 20ms }}\n{extra}"
    );
    common::start_sim(&yaml, 3).await
}

fn count(m: &ProducerMetrics, result: &str) -> u64 {
    m.allocations(result)
}

/// Asserts that `n` slots were scheduled at `rate` per second over `elapsed` (measured, not the
/// nominal sleep), within 15 % either way.
fn assert_rate(n: u64, rate: f64, elapsed: Duration, what: &str) {
    let want = rate * elapsed.as_secs_f64();
    assert!(
        (n as f64 - want).abs() <= 0.15 * want + 1.0,
        "{what}: {n} over {elapsed:?} at {rate}/s (expected about {want:.0})"
    );
}

fn started(m: &ProducerMetrics) -> u64 {
    [
        "Allocated",
        "FleetFull",
        "UnAllocated",
        "Contention",
        "error_unavailable",
        "error_server",
        "error_timeout",
        "error_connection",
        "error_rejected",
    ]
    .iter()
    .map(|r| count(m, r))
    .sum()
}

fn text(m: &ProducerMetrics) -> String {
    let mut r = Registry::default();
    m.register(&mut r);
    upsoak_common::exposition::encode(&r, upsoak_common::exposition::Format::PrometheusText)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keeps_its_schedule_through_an_upgrade_window_and_plays_sessions() {
    let (url, sim_stop) =
        start_sim("upgrade_window: 1500ms\nfleets: [ { name: p1, replicas: 30 } ]").await;
    let client = producer::client(Some(&url)).await.unwrap();
    let cfg = ProducerConfig {
        fleets: vec![FleetLoad {
            name: "p1".into(),
            min_replicas: 20,
            max_replicas: 40,
            scale_every_min: Duration::from_millis(300),
            scale_every_max: Duration::from_millis(600),
        }],
        allocation_rate: 40.0,
        max_in_flight: 64,
        session: SessionConfig {
            min_length: Duration::from_millis(100),
            max_length: Duration::from_millis(300),
            ..SessionConfig::default()
        },
        window: Duration::from_secs(1),
        ..ProducerConfig::default()
    };
    let metrics = ProducerMetrics::default();
    let stop = CancellationToken::new();
    let began = Instant::now();
    let run = tokio::spawn(producer::run(client, cfg, metrics.clone(), stop.clone()));

    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before_window = count(&metrics, "Allocated");
    assert!(before_window > 10, "{}", text(&metrics));
    let r = reqwest::Client::new()
        .post(format!("{url}/upsoak/v1/install"))
        .json(&serde_json::json!({"version": "1.59.0"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let in_window = count(&metrics, "error_unavailable");
    tokio::time::sleep(Duration::from_millis(2000)).await;
    stop.cancel();
    let elapsed = began.elapsed();
    tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let t = text(&metrics);

    // The window shows as errors; allocation resumes after it.
    // Allocations go to the aggregated API, down in the window: 503, `error_unavailable`.
    assert!(in_window >= 20, "expected 503s during the window:\n{t}");
    assert!(count(&metrics, "Allocated") > before_window + 20, "{t}");
    // Open model: 40/s for as long as it ran were started or dropped, whatever happened in
    // between.
    let total = started(&metrics) + metrics.dropped();
    assert_rate(total, 40.0, elapsed, &format!("started+dropped\n{t}"));
    // Sessions were played and ended with EXIT; the Fleet was scaled.
    assert!(
        t.contains("upsoak_producer_session_ops_total{op=\"exit\",result=\"ok\"}"),
        "{t}"
    );
    for op in ["echo", "gameserver", "label", "annotation"] {
        assert!(
            t.contains(&format!(
                "upsoak_producer_session_ops_total{{op=\"{op}\",result=\"ok\"}}"
            )),
            "{op}: {t}"
        );
    }
    // Player tracking is off by default: no player command reached a server.
    assert!(!t.contains("op=\"player_"), "{t}");
    assert!(
        t.contains("upsoak_producer_fleet_scale_total{result=\"ok\"}"),
        "{t}"
    );
    // Scaling every 300-600 ms, at least two requests fell in the 1.5 s window, and none
    // failed: Agones' webhooks do not cover the scale subresource.
    assert!(
        !t.contains("upsoak_producer_fleet_scale_total{result=\"error"),
        "{t}"
    );
    assert!(
        t.contains("upsoak_producer_allocation_window_latency_seconds{quantile=\"0.99\"}"),
        "{t}"
    );
    sim_stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_server_shows_as_latency_and_drops_not_as_a_slower_client() {
    // Every allocation takes 300 ms; 10 in flight sustain ~33/s, the schedule asks for 100/s.
    let (url, sim_stop) = start_sim(
        "allocation: { latency: 300ms, batch_wait: 0ms }\nfleets: [ { name: p2, replicas: 400 } ]",
    )
    .await;
    wait_ready(&url, "p2", 400).await;
    let client = producer::client(Some(&url)).await.unwrap();
    let cfg = ProducerConfig {
        fleets: vec![FleetLoad {
            name: "p2".into(),
            scale_every_max: Duration::ZERO,
            scale_every_min: Duration::ZERO,
            ..FleetLoad::default()
        }],
        allocation_rate: 100.0,
        max_in_flight: 10,
        sessions: SessionMode::Keep,
        window: Duration::from_secs(10),
        ..ProducerConfig::default()
    };
    let metrics = ProducerMetrics::default();
    let stop = CancellationToken::new();
    let began = Instant::now();
    let run = tokio::spawn(producer::run(client, cfg, metrics.clone(), stop.clone()));
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.cancel();
    let elapsed = began.elapsed();
    tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let dropped = metrics.dropped();
    let done = started(&metrics);
    // 10 in flight at 300 ms each sustain about a third of the schedule: the rest is dropped.
    assert!(dropped >= 100, "dropped {dropped}, done {done}");
    assert_rate(dropped + done, 100.0, elapsed, "dropped+done");
    let w = metrics.rotate_window();
    assert!(
        w.p50 >= 0.29,
        "latency is measured from the scheduled start: {w:?}"
    );
    sim_stop.cancel();
}

/// Runs a Producer that keeps every server it allocates (`sessions: keep`, no canaries, no
/// scaling) at 10/s on `fleet` for `secs`; returns its metrics.
async fn keep_allocating(url: &str, fleet: &str, secs: f64) -> ProducerMetrics {
    let client = producer::client(Some(url)).await.unwrap();
    let cfg = ProducerConfig {
        fleets: vec![FleetLoad {
            name: fleet.into(),
            scale_every_max: Duration::ZERO,
            scale_every_min: Duration::ZERO,
            ..FleetLoad::default()
        }],
        allocation_rate: 10.0,
        sessions: SessionMode::Keep,
        canaries: upsoak_chaos::producer::CanaryConfig {
            count: 0,
            ..Default::default()
        },
        ..ProducerConfig::default()
    };
    let metrics = ProducerMetrics::default();
    let stop = CancellationToken::new();
    let run = tokio::spawn(producer::run(client, cfg, metrics.clone(), stop.clone()));
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    metrics
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unallocated_from_a_full_fleet_counts_as_fleet_full_and_from_a_starting_one_does_not() {
    // Two servers, both kept Allocated: every later answer is UnAllocated with the Fleet full.
    let (url, sim_stop) = start_sim("fleets: [ { name: full, replicas: 2 } ]").await;
    wait_ready(&url, "full", 2).await;
    let m = keep_allocating(&url, "full", 1.5).await;
    let t = text(&m);
    assert_eq!(count(&m, "Allocated"), 2, "{t}");
    assert!(count(&m, "FleetFull") >= 8, "{t}");
    // The Fleet's status follows its servers a controller pass late (20 ms here, 100 ms
    // between requests): at most the first answer after the last server went may still read
    // a free replica.
    assert!(count(&m, "UnAllocated") <= 1, "{t}");
    assert!(
        t.contains("upsoak_producer_allocation_duration_seconds_count{result=\"FleetFull\"}"),
        "the latency histogram has it too: {t}"
    );
    sim_stop.cancel();

    // Servers that are never Ready: UnAllocated though none is busy, which is Agones' to judge.
    let (url, sim_stop) = common::start_sim(
        "lifecycle: { scheduled_after: 1h, request_ready_after: 1h, ready_after: 1h, delete_after_shutdown: 50ms, tick: 20ms }\nfleets: [ { name: starting, replicas: 2 } ]",
        4,
    )
    .await;
    let m = keep_allocating(&url, "starting", 1.0).await;
    let t = text(&m);
    assert!(count(&m, "UnAllocated") >= 5, "{t}");
    assert_eq!(count(&m, "FleetFull"), 0, "{t}");
    sim_stop.cancel();
}

/// Waits until Fleet `fleet` has `n` Ready replicas, polling the simulator's API.
async fn wait_ready(url: &str, fleet: &str, n: i64) {
    let at = format!("{url}/apis/agones.dev/v1/namespaces/default/fleets/{fleet}");
    eventually(Duration::from_secs(20), POLL, || async {
        let doc: serde_json::Value = reqwest::get(&at).await.ok()?.json().await.ok()?;
        (doc["status"]["readyReplicas"].as_i64() == Some(n)).then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{fleet} not {n} Ready: {e}"));
}

/// Session ops counted `ok`, and all of them, from the exposition text.
fn session_ops(t: &str) -> (f64, f64) {
    let mut ok = 0.0;
    let mut all = 0.0;
    for line in t.lines() {
        if let Some(rest) = line.strip_prefix("upsoak_producer_session_ops_total{") {
            let v: f64 = rest.rsplit(' ').next().unwrap().parse().unwrap();
            all += v;
            if rest.contains("result=\"ok\"") {
                ok += v;
            }
        }
    }
    (ok, all)
}

/// Runs the Producer with `session` on Fleet `fleet` for `secs`, then stops it; returns its
/// metrics' text and the simulator's `agones_gameservers_total` text.
async fn sessions_on(
    url: &str,
    fleet: &str,
    session: SessionConfig,
    secs: u64,
) -> (String, String) {
    let client = producer::client(Some(url)).await.unwrap();
    let cfg = ProducerConfig {
        fleets: vec![FleetLoad {
            name: fleet.into(),
            scale_every_max: Duration::ZERO,
            scale_every_min: Duration::ZERO,
            ..FleetLoad::default()
        }],
        allocation_rate: 20.0,
        session,
        window: Duration::from_secs(1),
        ..ProducerConfig::default()
    };
    let metrics = ProducerMetrics::default();
    let stop = CancellationToken::new();
    let run = tokio::spawn(producer::run(client, cfg, metrics.clone(), stop.clone()));
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let sim_metrics = upsoak_testkit::scrape(url).await.unwrap();
    (text(&metrics), sim_metrics)
}

fn short_sessions() -> SessionConfig {
    SessionConfig {
        min_length: Duration::from_millis(100),
        max_length: Duration::from_millis(200),
        ..SessionConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_sessions_never_crash_a_server_with_player_tracking_off() {
    let (url, sim_stop) = start_sim("fleets: [ { name: p3, replicas: 20 } ]").await;
    wait_ready(&url, "p3", 20).await;
    let (t, sim) = sessions_on(&url, "p3", short_sessions(), 3).await;
    let (ok, all) = session_ops(&t);
    assert!(all >= 50.0, "{t}");
    assert!(ok / all >= 0.99, "session success {ok}/{all}\n{t}");
    assert!(!t.contains("op=\"player_"), "{t}");
    assert!(!sim.contains("type=\"Unhealthy\""), "{sim}");
    sim_stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn player_sessions_pass_with_the_gate_on_and_a_fleet_with_player_capacity() {
    let (url, sim_stop) = start_sim("upgrade_window: 100ms").await;
    let http = reqwest::Client::new();
    // The sim's install wire type is the Helm values' camelCase: `featureGates`.
    let r = http
        .post(format!("{url}/upsoak/v1/install"))
        .json(&serde_json::json!({"version": "1.60.0", "featureGates": "PlayerTracking=true"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202, "{}", r.text().await.unwrap());
    // The window closes; then Fleet writes are admitted again.
    let fleets = format!("{url}/apis/agones.dev/v1/namespaces/default/fleets");
    let fleet = serde_json::json!({
        "apiVersion": "agones.dev/v1", "kind": "Fleet",
        "metadata": {"name": "pt"},
        "spec": {"replicas": 20, "template": {"spec": {
            "players": {"initialCapacity": 10},
            "ports": [{"name": "default", "containerPort": 7654}],
            "template": {"spec": {"containers": [{"name": "simple-game-server",
                "image": "us-docker.pkg.dev/agones-images/examples/simple-game-server:0.43"}]}}
        }}}
    });
    eventually(Duration::from_secs(10), POLL, || async {
        let r = http.post(&fleets).json(&fleet).send().await.ok()?;
        r.status().is_success().then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("Fleet pt not created: {e}"));
    wait_ready(&url, "pt", 20).await;
    // Its servers carry the capacity the Producer reads before sending player commands.
    let gs: serde_json::Value = reqwest::get(format!(
        "{url}/apis/agones.dev/v1/namespaces/default/gameservers?labelSelector=agones.dev/fleet=pt"
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(gs["items"][0]["status"]["players"]["capacity"], 10, "{gs}");
    // And, as on Agones with the gate on, no player ids yet: `null`, which the Producer's
    // capacity read must accept for the player steps below to run.
    assert!(
        gs["items"][0]["status"]["players"]
            .get("ids")
            .is_some_and(serde_json::Value::is_null),
        "{gs}"
    );

    let session = SessionConfig {
        player_tracking: true,
        ..short_sessions()
    };
    let (t, sim) = sessions_on(&url, "pt", session, 3).await;
    let (ok, all) = session_ops(&t);
    assert!(all >= 50.0, "{t}");
    assert!(ok / all >= 0.99, "session success {ok}/{all}\n{t}");
    for op in ["player_connect", "player_count"] {
        assert!(
            t.contains(&format!(
                "upsoak_producer_session_ops_total{{op=\"{op}\",result=\"ok\"}}"
            )),
            "{op}: {t}"
        );
    }
    assert!(!sim.contains("type=\"Unhealthy\""), "{sim}");
    sim_stop.cancel();
}
