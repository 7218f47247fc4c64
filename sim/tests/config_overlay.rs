//! `upsoak-sim --config F` overlays the built-in default: a file with only `faults:` starts
//! with the default versions and that fault (what the README's simulator examples do).
// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{SimProcess, get_json};
use upsoak_testkit::scrape;

#[tokio::test]
async fn a_faults_only_file_starts_the_default_versions_with_its_fault() {
    let sim = SimProcess::start(Some(
        "faults:\n  - { name: slow-1.59, kind: allocation_latency, multiplier: 4, when: { version: 1.59.0 } }\n",
    ));
    let installed = get_json(
        &reqwest::Client::new(),
        &format!("{}{}", sim.url, upsoak_sim::server::INSTALLED_PATH),
    )
    .await;
    let default = upsoak_sim::config::SimConfig::default_config().unwrap();
    assert_eq!(
        installed["version"].as_str(),
        Some(default.initial.version.as_str()),
        "{installed}"
    );
    assert_eq!(installed["faults"][0]["name"], "slow-1.59", "{installed}");
    let t = scrape(&sim.url).await.unwrap();
    assert!(
        t.contains("upsoak_sim_fault_active{fault=\"slow-1.59\"} 0"),
        "{t}"
    );
}
