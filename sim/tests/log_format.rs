//! Log lines as a pipe or a log collector meets them: no colour codes when stderr is not a
//! terminal, and `--log-format json` one JSON object per line (the flag all three binaries
//! share, `upsoak_common::telemetry::LogArgs`).
// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The simulator's stderr lines until it logs `serving` (or 20 s), with `args`; then stopped.
fn start_lines(args: &[&str]) -> Vec<String> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_upsoak-sim"))
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        let done = line.contains("serving");
        lines.push(line);
        if done || Instant::now() > deadline {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        lines.iter().any(|l| l.contains("serving")),
        "the simulator never logged `serving`: {lines:?}"
    );
    lines
}

#[test]
fn text_lines_on_a_pipe_carry_no_escape_codes() {
    let lines = start_lines(&[]);
    for l in &lines {
        assert!(!l.contains('\u{1b}'), "escape code in {l:?}");
    }
}

#[test]
fn json_lines_are_one_object_each() {
    let lines = start_lines(&["--log-format", "json"]);
    for l in &lines {
        let v: serde_json::Value =
            serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?} is not JSON: {e}"));
        assert!(v["level"].is_string() && v["fields"].is_object(), "{v}");
        assert!(!l.contains('\u{1b}'), "escape code in {l:?}");
    }
}

#[test]
fn an_unknown_log_format_is_a_usage_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_upsoak-sim"))
        .args(["--log-format", "xml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--log-format"));
}
