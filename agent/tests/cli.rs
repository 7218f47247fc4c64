//! The `upsoak-agent` binary's exit codes for `check-config`.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_upsoak-agent");

#[test]
fn check_config_exits_0_on_the_default_specs_and_2_on_bad_ones() {
    let ok = Command::new(BIN)
        .arg("check-config")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../rules/slos.yaml"))
        .output()
        .unwrap();
    assert_eq!(
        ok.status.code(),
        Some(i32::from(upsoak_agent::exit::PASS)),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("allocation-latency-p99"));
    let dir = std::env::temp_dir().join(format!("upsoak-agent-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.yaml");
    std::fs::write(&bad, "groups:\n  - name: g\n    interval: 15s\n    slos:\n      - { name: s, expr: \"rate(x[\", objective: \">= 1\" }\n").unwrap();
    let out = Command::new(BIN)
        .arg("check-config")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(i32::from(upsoak_agent::exit::BAD_INPUT))
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("groups[0].slos[0].expr:"));
    let missing = Command::new(BIN)
        .args(["check-config", "/nonexistent.yaml"])
        .output()
        .unwrap();
    assert_eq!(
        missing.status.code(),
        Some(i32::from(upsoak_agent::exit::BAD_INPUT))
    );
    let _ = std::fs::remove_dir_all(&dir);
}
