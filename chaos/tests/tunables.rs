//! Tunables reach the chart: `plan` prints each shipped tunable with its chart paths, and the
//! helm applier's generated values file for a planned step holds them there, in their format;
//! installed through the fake helm (`common/fake_helm.py`) on a real simulator, they are read
//! back from `helm get values` as the walk's values.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;

use std::path::PathBuf;
use std::process::Command;

use common::fake_helm::FakeHelm;
use upsoak_agones::release::{Install, TunableValue, parse_query};
use upsoak_chaos::wanderer::apply::{Applier, HelmApplier, ReuseValues};
use upsoak_chaos::wanderer::space::Space;
use upsoak_chaos::wanderer::walk::{Planner, Strategy, Walk};
use upsoak_testkit::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_upsoak-chaos");
const BATCH_PATHS: [&str; 3] = [
    "agones.allocator.allocationBatchWaitTime",
    "agones.extensions.allocationBatchWaitTime",
    "agones.controller.allocationBatchWaitTime",
];

fn space() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("spaces/agones.yaml")
}

fn plan(format: &str) -> String {
    let o = Command::new(BIN)
        .args(["plan", "--space"])
        .arg(space())
        .args(["--seed", "7", "--steps", "30", "--format", format])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    String::from_utf8(o.stdout).unwrap()
}

fn at<'a>(v: &'a serde_yaml::Value, path: &str) -> &'a serde_yaml::Value {
    path.split('.').fold(v, |v, k| &v[k])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_prints_the_chart_paths_and_the_values_file_holds_each_tunable_there() {
    let text = plan("text");
    assert!(
        text.contains(&format!(
            "# tunable allocationBatchWaitTime: 100..=1000 step 100 → {} (duration_ms)\n",
            BATCH_PATHS.join(", ")
        )),
        "{text}"
    );
    assert!(
        text.contains("# tunable logLevel: info | debug → agones.controller.logLevel, agones.extensions.logLevel, agones.allocator.logLevel (string)\n"),
        "{text}"
    );
    // A planned step with a batch wait other than the start's.
    let json: serde_json::Value = serde_json::from_str(&plan("json")).unwrap();
    let step = json["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["tunables"]["allocationBatchWaitTime"] != 100)
        .expect("a step that changes the batch wait")
        .clone();
    let target = Install {
        version: step["version"].as_str().unwrap().into(),
        feature_gates: parse_query(step["featureGates"].as_str().unwrap()).unwrap(),
        tunables: serde_json::from_value(step["tunables"].clone()).unwrap(),
    };
    let TunableValue::Int(wait) = target.tunables["allocationBatchWaitTime"] else {
        panic!("{target:?}")
    };
    // The shipped space walks the batch wait in steps of 100 ms: every planned value is round.
    for s in json["steps"].as_array().unwrap() {
        let w = s["tunables"]["allocationBatchWaitTime"].as_i64().unwrap();
        assert!(w % 100 == 0 && (100..=1000).contains(&w), "{s}");
    }

    let (url, stop) = common::start_sim("upgrade_window: 200ms", 1).await;
    let dir = TempDir::new("chaos-tunables");
    // The simulator takes the batch wait in ms and the log level under the walk's names; its
    // batch wait serves the Kubernetes API's allocations, which the extensions run, so it is
    // read from the extensions' path.
    let fake = FakeHelm::new(
        &dir,
        &url,
        &[
            (BATCH_PATHS[1], "allocationBatchWaitTime"),
            ("agones.controller.logLevel", "logLevel"),
        ],
    );
    let mut a = HelmApplier::new(fake.path.clone(), dir.to_path_buf());
    a.reuse_values = ReuseValues::ResetThenReuse;
    a.tunables = Space::load(&space()).unwrap().chart;
    // Installed by a person with no tunables set: observed at the chart's defaults
    // (`helm get values --all`), the configuration the cluster runs.
    fake.seed("1.58.0", None);
    let before = a.observe_installed().await.unwrap();
    assert_eq!(
        before.tunables,
        BTreeMap::from([
            ("allocationBatchWaitTime".into(), TunableValue::Int(500)),
            ("allocatorReplicas".into(), TunableValue::Int(3)),
            ("logLevel".into(), TunableValue::Str("info".into())),
        ])
    );
    a.apply(&target).await.unwrap();
    let yaml: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(dir.join("agones-values.yaml")).unwrap())
            .unwrap();
    for path in BATCH_PATHS {
        assert_eq!(
            at(&yaml, path),
            &serde_yaml::Value::from(format!("{wait}ms")),
            "{path} in {yaml:?}"
        );
    }
    let level = target.tunables["logLevel"].to_string();
    for c in ["controller", "extensions", "allocator"] {
        assert_eq!(
            at(&yaml, &format!("agones.{c}.logLevel")),
            &serde_yaml::Value::from(level.as_str())
        );
    }
    assert!(
        at(&yaml, "upsoak").is_null(),
        "nothing under a key the chart ignores"
    );
    // Read back from the release, not from what was asked.
    let seen = a.observe_installed().await.unwrap();
    assert_eq!(seen.tunables, target.tunables);
    // And the simulator got them too.
    let installed: serde_json::Value = reqwest::get(format!("{url}/upsoak/v1/installed"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(installed["tunables"]["allocationBatchWaitTime"], wait);
    stop.cancel();
}

/// A release tuned on one component only, as Agones' own upgrade test does
/// (`agones.controller.logLevel: debug`), and one component's batch wait: the chart paths
/// disagree, which is observed as an off-space value (never an error that stops the start),
/// the walk goes on from it, and the next apply writes every path alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_with_one_component_tuned_alone_starts_and_walks() {
    let (url, stop) = common::start_sim("upgrade_window: 200ms", 1).await;
    let dir = TempDir::new("chaos-tunables-alone");
    let fake = FakeHelm::new(&dir, &url, &[(BATCH_PATHS[1], "allocationBatchWaitTime")]);
    let user = dir.write(
        "user.yaml",
        "agones:\n  controller:\n    logLevel: debug\n  allocator:\n    allocationBatchWaitTime: 200ms\n",
    );
    fake.seed("1.58.0", Some(&user));
    let space = Space::load(&space()).unwrap();
    let mut a = HelmApplier::new(fake.path.clone(), dir.to_path_buf());
    a.reuse_values = ReuseValues::ResetThenReuse;
    a.tunables = space.chart.clone();
    let seen = a.observe_installed().await.expect("observed, not refused");
    assert_eq!(
        seen.tunables["logLevel"],
        TunableValue::Str(
            "mixed: agones.controller.logLevel=debug, agones.extensions.logLevel=info, agones.allocator.logLevel=info".into()
        )
    );
    assert_eq!(
        seen.tunables["allocationBatchWaitTime"],
        TunableValue::Str(format!(
            "mixed: {}=200, {}=500, {}=500",
            BATCH_PATHS[0], BATCH_PATHS[1], BATCH_PATHS[2]
        ))
    );
    let mut walk = Walk::new(space.clone(), 7, Strategy::Random);
    let next = walk.next(1, &seen);
    assert!(
        space.tunables["logLevel"]
            .problem(&next.tunables["logLevel"])
            .is_none(),
        "{next:?}"
    );
    a.apply(&next).await.unwrap();
    let after = a.observe_installed().await.unwrap();
    assert_eq!(after.tunables, next.tunables, "every path written alike");
    stop.cancel();
}
