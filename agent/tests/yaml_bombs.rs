//! The YAML bombs of the reliability review (D2, D5) against the agent's spec reader: the
//! library's `Specs::load` (what `check-config`, `run` and the SIGHUP reload call) and the
//! `check-config` binary, each refused with the file and the limit named, exit 2.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../common/tests/fixtures/yaml-bombs/bombs.rs"]
mod bombs;

use upsoak_agent::spec::Specs;
use upsoak_testkit::TempDir;

#[test]
fn every_bomb_is_refused_by_the_spec_loader_with_the_file_and_the_limit() {
    let dir = TempDir::new("agent-yaml-bombs");
    for (name, path, limit) in bombs::bombs(dir.path()) {
        let e = Specs::load(&path).err().unwrap().to_string();
        assert!(e.contains(&path.display().to_string()), "{name}: {e}");
        assert!(e.contains(limit), "{name}: {e}");
    }
}

#[test]
fn every_bomb_makes_check_config_exit_2_naming_the_file_and_the_limit() {
    let dir = TempDir::new("agent-yaml-bombs-cli");
    for (name, path, limit) in bombs::bombs(dir.path()) {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_upsoak-agent"))
            .arg("check-config")
            .arg(&path)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert!(
            stderr.contains(&path.display().to_string()),
            "{name}: {stderr}"
        );
        assert!(stderr.contains(limit), "{name}: {stderr}");
    }
}
