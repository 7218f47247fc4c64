//! The YAML bombs of the reliability review (D2, D5) against the simulator's readers: its
//! configuration (`--config`) and an apply-patch body (`bounded_yaml`), each refused with the
//! file (or body) and the limit named; the binary exits 2.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../common/tests/fixtures/yaml-bombs/bombs.rs"]
mod bombs;

use upsoak_sim::api::bounded_yaml;
use upsoak_sim::config::SimConfig;
use upsoak_testkit::TempDir;

#[test]
fn every_bomb_is_refused_as_a_config_and_as_an_apply_body_with_the_limit() {
    let dir = TempDir::new("sim-yaml-bombs");
    for (name, path, limit) in bombs::bombs(dir.path()) {
        let file = path.display().to_string();
        let e = SimConfig::load(&path).err().unwrap().to_string();
        assert!(e.contains(&file) && e.contains(limit), "{name}: {e}");
        let body = std::fs::read(&path).unwrap();
        let e = bounded_yaml(&body).unwrap_err();
        assert!(
            e.starts_with("the body") && e.contains(limit),
            "{name}: {e}"
        );
    }
}

#[test]
fn every_bomb_makes_the_simulator_exit_2_naming_the_file_and_the_limit() {
    let dir = TempDir::new("sim-yaml-bombs-cli");
    for (name, path, limit) in bombs::bombs(dir.path()) {
        let file = path.display().to_string();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_upsoak-sim"))
            .args(["--listen", "127.0.0.1:0", "--config", &file])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert!(
            stderr.contains(&file) && stderr.contains(limit),
            "{name}: {stderr}"
        );
    }
}
