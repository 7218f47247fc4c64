//! The launchers against the real Prometheus and Alertmanager: each starts on a port of its
//! own, a restart keeps the address, Prometheus scrapes a test's `/metrics` servers, a reload
//! adds one.
#![allow(clippy::expect_used)]

use std::time::Duration;

use upsoak_testkit::{
    Alertmanager, POLL, Prometheus, TempDir, eventually, scrape_config, serve_metrics,
};

#[tokio::test]
async fn prometheus_scrapes_a_test_server_and_restarts_on_its_address() {
    let dir = TempDir::new("kit-prom");
    let server =
        serve_metrics(|| "# TYPE upsoak_kit_up gauge\nupsoak_kit_up 42\n".to_owned()).await;
    let config = scrape_config(&[("kit", &server.addr())]);
    let mut prom = Prometheus::start(&dir, &config).await;
    assert!(!prom.addr().ends_with(":0"), "{}", prom.addr());
    let v = eventually(Duration::from_secs(30), POLL, || async {
        prom.query("upsoak_kit_up").await
    })
    .await
    .expect("Prometheus scraped the test server");
    assert_eq!(v, 42.0);

    // A reload adds a second target.
    let other =
        serve_metrics(|| "# TYPE upsoak_kit_other gauge\nupsoak_kit_other 7\n".to_owned()).await;
    let config = scrape_config(&[("kit", &server.addr()), ("other", &other.addr())]);
    prom.reload(&config).await;
    let v = eventually(Duration::from_secs(30), POLL, || async {
        prom.query("upsoak_kit_other").await
    })
    .await
    .expect("Prometheus scraped the target added by the reload");
    assert_eq!(v, 7.0);

    let addr = prom.addr().to_owned();
    let status = prom.stop().expect("Prometheus stops on SIGTERM");
    assert!(status.success(), "{status}");
    assert_eq!(prom.query("up").await, None, "stopped");
    let again = Prometheus::start_on(&dir, &config, &addr).await;
    assert_eq!(again.addr(), addr);
    // The data of the first run is kept.
    let kept = again.query("count_over_time(upsoak_kit_up[10m])").await;
    assert!(kept.is_some_and(|n| n >= 1.0), "{kept:?}");
}

#[tokio::test]
async fn two_alertmanagers_run_side_by_side() {
    let dir = TempDir::new("kit-am");
    let (a, b) = (dir.join("a"), dir.join("b"));
    for d in [&a, &b] {
        std::fs::create_dir_all(d).expect("dir");
    }
    let config = Alertmanager::webhook_config("http://127.0.0.1:9/hook");
    let first = Alertmanager::start(&a, &config).await;
    let second = Alertmanager::start(&b, &config).await;
    assert_ne!(first.url(), second.url());
    assert!(first.alerts().await.is_empty());
    assert!(second.alerts().await.is_empty());
}
