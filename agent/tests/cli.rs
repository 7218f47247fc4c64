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

#[test]
fn help_documents_the_exit_codes_of_the_library() {
    use upsoak_agent::exit;
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    for (code, what) in [
        (exit::PASS, "pass"),
        (exit::FAIL, "fail"),
        (exit::BAD_INPUT, "bad input"),
        (exit::INCONCLUSIVE, "inconclusive"),
    ] {
        assert!(
            help.contains(&format!("{code} {what}")),
            "{code} {what} not in:\n{help}"
        );
    }
    assert_eq!(
        (exit::PASS, exit::FAIL, exit::BAD_INPUT, exit::INCONCLUSIVE),
        (0, 1, 2, 3)
    );
    assert!(help.contains("check-config"), "{help}");
}

#[test]
fn check_config_prints_a_line_per_group_and_every_problem() {
    let ok = Command::new(BIN)
        .arg("check-config")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../rules/slos.yaml"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&ok.stdout);
    for group in [
        "control-plane",
        "fleets",
        "allocation",
        "sessions",
        "transitions",
    ] {
        assert_eq!(
            text.lines()
                .filter(|l| l.trim_start().starts_with(&format!("{group} every ")))
                .count(),
            1,
            "{group} in:\n{text}"
        );
    }
    assert!(
        ok.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );

    let dir = std::env::temp_dir().join(format!("upsoak-agent-cli-all-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.yaml");
    std::fs::write(
        &bad,
        "groups:\n  - name: g\n    interval: 1x\n    slos:\n      - { name: s, expr: \"up[5m]\", objective: \"0.9\", on_no_data: pass }\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .arg("check-config")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(i32::from(upsoak_agent::exit::BAD_INPUT))
    );
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    for want in [
        "4 problems",
        "groups[0].interval: invalid duration \"1x\"",
        "groups[0].slos[0].expr: evaluates to a range vector",
        "groups[0].slos[0].objective: `0.9` at column 1",
        "groups[0].slos[0].on_no_data: cannot be `pass`",
    ] {
        assert!(err.contains(want), "{want:?} not in:\n{err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn usage_errors_exit_2() {
    let out = Command::new(BIN).arg("check-config").output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(i32::from(upsoak_agent::exit::BAD_INPUT))
    );
}
