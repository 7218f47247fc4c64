//! Capacity sized to the load: the shipped configuration holds what its Producer needs, and the
//! real binary refuses (exit 2) a configuration whose Fleet cannot, naming the numbers and the
//! fix, for `run` and `preflight` alike.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use upsoak_chaos::config::SidecarConfig;
use upsoak_chaos::preflight::FLEET_CONVERGED_OBJECTIVE;
use upsoak_chaos::producer::OnShort;
use upsoak_chaos::producer::capacity::{needs, short_fleets};
use upsoak_testkit::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_upsoak-chaos");

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(p)
}

#[test]
fn the_shipped_sidecar_configuration_holds_its_load() {
    let cfg = SidecarConfig::load(&repo("deploy/base/sidecar.yaml")).unwrap();
    let p = &cfg.producer;
    assert_eq!(p.capacity.on_short, OnShort::Refuse);
    let n = needs(p).unwrap();
    assert_eq!(n.len(), 1, "{n:?}");
    let (need, fleet) = (&n[0], &p.fleets[0]);
    assert!(short_fleets(p).is_empty());
    // Twice the need at the Producer's floor: a Fleet of min_replicas never runs full.
    assert!(
        i64::from(fleet.min_replicas) >= 2 * need.need,
        "{fleet:?} against {}",
        need.arithmetic()
    );
    // The replacements the load keeps starting leave fleet-converged above its objective at
    // the floor, with the sidecar's own replace_time.
    let converged = 1.0 - need.starting() / f64::from(fleet.min_replicas);
    assert!(
        converged >= FLEET_CONVERGED_OBJECTIVE + 0.05,
        "{converged} at {fleet:?}"
    );
}

#[test]
fn the_converged_share_is_the_same_in_the_slos_and_in_preflight() {
    let text = std::fs::read_to_string(repo("rules/slos.yaml")).unwrap();
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    assert_eq!(
        doc["vars"]["fleet_converged"].as_f64(),
        Some(FLEET_CONVERGED_OBJECTIVE)
    );
    let objective = doc["groups"]
        .as_sequence()
        .unwrap()
        .iter()
        .flat_map(|g| g["slos"].as_sequence().unwrap())
        .find(|s| s["name"] == "fleet-converged")
        .map(|s| s["objective"].as_str().unwrap().to_owned());
    assert_eq!(
        objective,
        Some(format!(">= {FLEET_CONVERGED_OBJECTIVE}")),
        "rules/slos.yaml"
    );
}

/// A configuration with the load the sidecar shipped before it was sized: 2/s, default
/// sessions (2-20 s) and 4 canaries on a Fleet of 5-20, plus `extra` producer lines.
fn undersized(dir: &TempDir, extra: &str) -> PathBuf {
    dir.write(
        "sidecar.yaml",
        &format!(
            "state_dir: {}\nwanderer:\n  space: {}\n  seed: 1\n  applier: {{ kind: sim, url: \"http://127.0.0.1:9\" }}\nproducer:\n  fleets: [ {{ name: simple-game-server, min_replicas: 5, max_replicas: 20, scale_every_min: 20s, scale_every_max: 60s }} ]\n  allocation_rate: 2\n{extra}",
            dir.join("state").display(),
            repo("chaos/spaces/agones.yaml").display()
        ),
    )
}

#[test]
fn an_undersized_load_is_refused_with_exit_2_naming_the_numbers_and_the_fix() {
    let dir = TempDir::new("chaos-capacity-short");
    let config = undersized(&dir, "");
    for command in ["run", "preflight"] {
        let out = Command::new(BIN)
            .args([command, "--config"])
            .arg(&config)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{command}: {err}");
        for want in [
            "producer.fleets[0].min_replicas: 5 cannot hold the load: Fleet `simple-game-server` needs 67 servers (4 canaries + ⌈2/s × (11 s mean session + 10 s replace_time) × 1.5 headroom⌉ = 67)",
            "raise min_replicas (and the Fleet's replicas) to at least 67, or lower allocation_rate",
        ] {
            assert!(err.contains(want), "{command}: missing {want:?} in:\n{err}");
        }
        // Nothing was started: the state directory was never made.
        assert!(!dir.join("state").exists(), "{command}");
    }
    // The terms are configuration: a quicker replacement and sessions of 1-3 s still need 4 +
    // ⌈2 × (2 + 2) × 1.5⌉ = 16 servers; `headroom` below 1 is refused on its own.
    let quick = undersized(
        &dir,
        "  session: { min_length: 1s, max_length: 3s }\n  capacity: { replace_time: 2s, headroom: 0.9 }\n",
    );
    let out = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&quick)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("producer.capacity.headroom: 0.9 is not a factor >= 1"),
        "{err}"
    );
    let quick = undersized(
        &dir,
        "  session: { min_length: 1s, max_length: 3s }\n  capacity: { replace_time: 2s }\n",
    );
    let cfg = SidecarConfig::load(&quick).unwrap_err().to_string();
    assert!(cfg.contains("needs 16 servers"), "{cfg}");
}

#[test]
fn on_short_warn_starts_with_the_fleet_too_small() {
    let dir = TempDir::new("chaos-capacity-warn");
    let config = undersized(&dir, "  capacity: { on_short: warn }\n");
    let cfg = SidecarConfig::load(&config).unwrap();
    // Still computed, for the log line the sidecar writes at start.
    let short = short_fleets(&cfg.producer);
    assert_eq!(short.len(), 1);
    assert_eq!(short[0].0.need, 67);
}

/// rules/upsoak-rules.test.yaml tests fleet-recovery-seconds through a copy of its expression
/// (the agent judges it per transition; no rule holds it): the copy is the shipped one, vars
/// substituted and `${window}` = 300s.
#[test]
fn the_promtool_test_of_fleet_recovery_holds_the_shipped_expression() {
    let text = std::fs::read_to_string(repo("rules/slos.yaml")).unwrap();
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let vars: Vec<(String, String)> = doc["vars"]
        .as_mapping()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            let v = match v {
                serde_yaml::Value::String(s) => s.clone(),
                other => serde_yaml::to_string(other).unwrap().trim().to_owned(),
            };
            (format!("${{{}}}", k.as_str().unwrap()), v)
        })
        .collect();
    let mut expr = doc["groups"]
        .as_sequence()
        .unwrap()
        .iter()
        .flat_map(|g| g["slos"].as_sequence().unwrap())
        .find(|s| s["name"] == "fleet-recovery-seconds")
        .and_then(|s| s["expr"].as_str())
        .unwrap()
        .replace("${window}", "300s");
    for (k, v) in &vars {
        expr = expr.replace(k, v);
    }
    let expr = expr.split_whitespace().collect::<Vec<_>>().join(" ");
    let tests = std::fs::read_to_string(repo("rules/upsoak-rules.test.yaml")).unwrap();
    assert_eq!(
        tests.matches(&format!("- expr: '{expr}'")).count(),
        3,
        "rules/upsoak-rules.test.yaml does not test the shipped fleet-recovery-seconds:\n{expr}"
    );
}
