//! The YAML bombs of the reliability review (D2, D5) against the sidecar's readers: the
//! sidecar configuration (`preflight --config`, `run --config`: read before the config crate's
//! parser, which has no alias limit) and the space file (`validate`), each refused with the
//! file and the limit named, exit 2.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../common/tests/fixtures/yaml-bombs/bombs.rs"]
mod bombs;

use upsoak_chaos::config::SidecarConfig;
use upsoak_chaos::wanderer::space::Space;
use upsoak_testkit::TempDir;

#[test]
fn every_bomb_is_refused_by_the_config_and_space_loaders_with_the_file_and_the_limit() {
    let dir = TempDir::new("chaos-yaml-bombs");
    for (name, path, limit) in bombs::bombs(dir.path()) {
        let file = path.display().to_string();
        let e = SidecarConfig::load(&path).err().unwrap().to_string();
        assert!(e.contains(&file) && e.contains(limit), "{name}: {e}");
        let e = Space::load(&path).err().unwrap().to_string();
        assert!(e.contains(&file) && e.contains(limit), "{name}: {e}");
    }
}

#[test]
fn every_bomb_makes_validate_preflight_and_run_exit_2_naming_the_file_and_the_limit() {
    let dir = TempDir::new("chaos-yaml-bombs-cli");
    for (name, path, limit) in bombs::bombs(dir.path()) {
        let file = path.display().to_string();
        let runs: [&[&str]; 3] = [
            &["validate", &file],
            &["preflight", "--config", &file],
            &["run", "--config", &file],
        ];
        for args in runs {
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_upsoak-chaos"))
                .args(args)
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{name} {args:?}: {stderr}");
            assert!(
                stderr.contains(&file) && stderr.contains(limit),
                "{name} {args:?}: {stderr}"
            );
        }
    }
}
