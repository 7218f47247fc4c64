//! Recording baselines from a real Prometheus: statistics and configuration, SLOs without
//! enough samples left out and listed with why, refusal of a window with a transition in it or
//! with no SLO recorded, and a clear error when Prometheus is down.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};

use common::{TempDir, eventually, now, serve_metrics};
use upsoak_agent::Error;
use upsoak_agent::baseline::{self, Baseline};
use upsoak_agent::prom::{PromQuerier, Querier};
use upsoak_agent::spec::Specs;
use upsoak_common::names::wanderer;

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
      - name: missing
        expr: sum(upsoak_test_not_exported)
        baseline: "<= +20%"
        min_samples: 3
"#;

fn exposition(generation: u32, latency: f64) -> String {
    format!(
        "# TYPE {gen} gauge\n{gen} {generation}\n# TYPE {info} gauge\n{info}{{version=\"1.59.0\",feature_gates=\"PlayerTracking=true\"}} 1\n# TYPE upsoak_test_latency_seconds gauge\nupsoak_test_latency_seconds {latency}\n",
        gen = wanderer::GENERATION,
        info = wanderer::CONFIG_INFO,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_a_steady_window_and_refuses_a_window_with_a_transition() {
    let exp = Arc::new(Mutex::new(exposition(1, 0.25)));
    let served = exp.clone();
    let target = serve_metrics(move || served.lock().unwrap().clone()).await;
    let dir = TempDir::new("agent-baseline");
    let mut prom = common::prometheus(dir.path(), &target.addr()).await;
    let specs = Specs::parse(SPECS, "specs").unwrap();
    let q = PromQuerier::new(prom.url(), None).unwrap();
    common::wait_for_samples(&prom, 6).await;

    let to = now();
    let recorded = baseline::record(&q, &specs, to - 4, to, 1.0).await.unwrap();
    let b = recorded.baseline.clone();
    // The SLO without data is left out, with why; the others are recorded.
    assert_eq!(
        b.slos.keys().collect::<Vec<_>>(),
        vec!["test/health", "test/latency"]
    );
    assert_eq!(recorded.left_out.len(), 1, "{:?}", recorded.left_out);
    let missing = &recorded.left_out[0];
    assert_eq!(missing.key, "test/missing");
    assert!(missing.needed);
    assert!(
        missing.why.starts_with("no series in the window"),
        "{missing:?}"
    );
    let lat = &b.slos["test/latency"];
    assert!(lat.count >= 3, "{lat:?}");
    assert!((lat.mean - 0.25).abs() < 1e-9, "{lat:?}");
    assert_eq!(lat.stddev, 0.0);
    // The Wanderer's labels, not the scrape target's (the same rule as a transition's).
    assert_eq!(
        b.configuration.keys().collect::<Vec<_>>(),
        vec!["feature_gates", "version"]
    );
    assert_eq!(b.configuration["version"], "1.59.0");
    assert_eq!(b.configuration["feature_gates"], "PlayerTracking=true");
    assert_eq!(b.spec_hash, specs.hash);
    // Saved and loaded unchanged.
    let path = dir.path().join("baseline.json");
    b.save(&path).unwrap();
    assert_eq!(Baseline::load(&path).unwrap(), b);

    // A transition inside the window: refused, once Prometheus has scraped it.
    *exp.lock().unwrap() = exposition(2, 0.25);
    // The window ends at the first whole second whose evaluation shows generation 2.
    let to = eventually(30, "generation 2 in Prometheus", || async {
        let to = now();
        let g = q.range(wanderer::GENERATION, to, to, 1.0).await.ok()?;
        (g.last()?.1 == 2.0).then_some(to)
    })
    .await;
    let err = baseline::record(&q, &specs, to - 6, to, 1.0)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::TransitionInWindow { .. }), "{err}");

    // Too short a window for min_samples (two seconds of the steady generation 1): no SLO is
    // recorded, and each is named with why.
    let err = baseline::record(&q, &specs, b.to - 1, b.to, 1.0)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NothingRecorded { .. }), "{err}");
    assert!(
        err.to_string().contains(
            "test/latency: 2 of 3 samples; min_samples 3 needs at least 2s of data at a 1s step"
        ),
        "{err}"
    );

    // The binary, on the steady window: a baseline it cannot write is a runtime failure (4),
    // not a regression.
    let specs_file = dir.write("slos.yaml", SPECS);
    let url = prom.url().to_owned();
    let (from_s, to_s) = (b.from.to_string(), b.to.to_string());
    let record_over = |from: &str, to: &str, out: &std::path::Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_upsoak-agent"))
            .args(["baseline", "record", "--prometheus", &url])
            .args(["--from", from, "--to", to, "--step", "1s", "--specs"])
            .arg(&specs_file)
            .arg("--out")
            .arg(out)
            .output()
            .unwrap()
    };
    let record = |out: &std::path::Path| record_over(&from_s, &to_s, out);

    // What has data is recorded (exit 0), and what has not is listed with why.
    let written = dir.path().join("recorded.json");
    let ok = record(&written);
    let text = String::from_utf8_lossy(&ok.stdout);
    assert_eq!(
        ok.status.code(),
        Some(i32::from(upsoak_agent::exit::PASS)),
        "{text}{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(text.contains("baseline of 2 SLOs"), "{text}");
    assert!(
        text.contains("left out (1)") && text.contains("  test/missing: no series in the window"),
        "{text}"
    );
    assert_eq!(Baseline::load(&written).unwrap().slos.len(), 2);
    // Nothing with enough samples: inconclusive (3), each SLO named, nothing written.
    let short = dir.path().join("short.json");
    let none = record_over(&(b.to - 1).to_string(), &to_s, &short);
    let err = String::from_utf8_lossy(&none.stderr);
    assert_eq!(
        none.status.code(),
        Some(i32::from(upsoak_agent::exit::INCONCLUSIVE)),
        "{err}"
    );
    assert!(
        err.contains("no SLO has enough samples") && err.contains("test/latency: 2 of 3 samples"),
        "{err}"
    );
    assert!(!short.exists());
    let unwritable = record(&dir.path().join("missing/dir/baseline.json"));
    let err = String::from_utf8_lossy(&unwritable.stderr);
    assert_eq!(
        unwritable.status.code(),
        Some(i32::from(upsoak_agent::exit::RUNTIME_FAILURE)),
        "{err}"
    );
    assert!(
        err.contains("error: cannot write `") && err.contains("caused by:"),
        "{err}"
    );

    // Prometheus down: a query error, never a baseline; the binary says inconclusive (3).
    let _ = prom.stop();
    let down = record(&dir.path().join("never.json"));
    assert_eq!(
        down.status.code(),
        Some(i32::from(upsoak_agent::exit::INCONCLUSIVE)),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    let err = baseline::record(&q, &specs, to - 4, to, 1.0)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Query { .. }), "{err}");
}
