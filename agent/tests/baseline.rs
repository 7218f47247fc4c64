//! Recording baselines from a real Prometheus: statistics and configuration, refusal of a
//! window with a transition in it, and a clear error when Prometheus is down.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Exposition, Prometheus, metrics_server, now};
use tokio_util::sync::CancellationToken;
use upsoak_agent::Error;
use upsoak_agent::baseline::{self, Baseline};
use upsoak_agent::prom::PromQuerier;
use upsoak_agent::spec::Specs;

const SPECS: &str = r#"
groups:
  - name: test
    interval: 15s
    slos:
      - name: latency
        expr: sum(upsoak_test_latency_seconds)
        baseline: "<= +20%"
        min_samples: 3
      - name: health
        expr: min(up)
        objective: ">= 1"
        min_samples: 3
"#;

fn exposition(generation: u32, latency: f64) -> String {
    format!(
        "# TYPE upsoak_wanderer_generation gauge\nupsoak_wanderer_generation {generation}\n# TYPE upsoak_wanderer_config_info gauge\nupsoak_wanderer_config_info{{version=\"1.59.0\",feature_gates=\"PlayerTracking=true\"}} 1\n# TYPE upsoak_test_latency_seconds gauge\nupsoak_test_latency_seconds {latency}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_a_steady_window_and_refuses_a_window_with_a_transition() {
    let exp = Exposition::default();
    exp.set(&exposition(1, 0.25));
    let stop = CancellationToken::new();
    let target = metrics_server(exp.clone(), stop.clone()).await;
    let mut prom = Prometheus::start(&target, "baseline").await;
    let specs = Specs::parse(SPECS, "specs").unwrap();
    let q = PromQuerier::new(&prom.url).unwrap();
    prom.wait_for_samples(6).await;

    let to = now();
    let b = baseline::record(&q, &specs, to - 4, to, 1.0).await.unwrap();
    let lat = &b.slos["test/latency"];
    assert!(lat.count >= 3, "{lat:?}");
    assert!((lat.mean - 0.25).abs() < 1e-9, "{lat:?}");
    assert_eq!(lat.stddev, 0.0);
    assert_eq!(b.configuration["version"], "1.59.0");
    assert_eq!(b.configuration["feature_gates"], "PlayerTracking=true");
    assert_eq!(b.spec_hash, specs.hash);
    // Saved and loaded unchanged.
    let path = std::env::temp_dir().join(format!("upsoak-baseline-{}.json", std::process::id()));
    b.save(&path).unwrap();
    assert_eq!(Baseline::load(&path).unwrap(), b);
    let _ = std::fs::remove_file(&path);

    // A transition inside the window: refused.
    exp.set(&exposition(2, 0.25));
    tokio::time::sleep(Duration::from_secs(3)).await;
    let to = now();
    let err = baseline::record(&q, &specs, to - 6, to, 1.0)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::TransitionInWindow { .. }), "{err}");

    // Too short a window for min_samples: refused, naming the SLO.
    let to = now();
    let err = baseline::record(&q, &specs, to - 1, to, 1.0)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("test/latency"), "{err}");

    // Prometheus down: a query error, never a baseline.
    prom.stop();
    let err = baseline::record(&q, &specs, to - 4, to, 1.0)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Query { .. }), "{err}");
    stop.cancel();
}
