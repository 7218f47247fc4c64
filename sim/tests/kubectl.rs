//! An unmodified `kubectl --server URL` against the real `upsoak-sim` binary: get, list, watch,
//! scale, create an allocation. Fails (never skips) when kubectl is missing: `make test`
//! installs it.
// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;
use std::time::Duration;

use common::{SimProcess, TempDir, test_config};

fn kubectl(url: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new("kubectl")
        .arg(format!("--server={url}"))
        .args(["--request-timeout=10s", "--namespace=default"])
        .args(args)
        .env("KUBECONFIG", "/dev/null")
        .output()
        .expect("kubectl must be installed (make test installs it)");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(url: &str, args: &[&str]) -> String {
    let (success, out, err) = kubectl(url, args);
    assert!(success, "kubectl {args:?} failed:\n{err}\n{out}");
    out
}

fn wait_for(url: &str, args: &[&str], want: impl Fn(&str) -> bool) -> String {
    for _ in 0..200 {
        let (success, out, _) = kubectl(url, args);
        if success && want(&out) {
            return out;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("kubectl {args:?} never gave the expected output");
}

#[test]
fn kubectl_drives_the_simulator() {
    let cfg = test_config(46000, "fleets: [ { name: simple, replicas: 2 } ]");
    let sim = SimProcess::start(Some(&cfg));
    let url = sim.url.clone();

    // Table output with Agones' printer columns.
    let out = wait_for(&url, &["get", "fleets"], |o| {
        o.lines()
            .any(|l| l.starts_with("simple") && l.split_whitespace().nth(5) == Some("2"))
    });
    assert!(out.contains("SCHEDULING") && out.contains("READY"), "{out}");
    let out = ok(&url, &["get", "gameservers"]);
    assert_eq!(
        out.lines().filter(|l| l.contains(" Ready ")).count(),
        2,
        "{out}"
    );

    // Scale through the scale subresource.
    ok(&url, &["scale", "fleet", "simple", "--replicas=4"]);
    wait_for(
        &url,
        &[
            "get",
            "fleet",
            "simple",
            "-o",
            "jsonpath={.status.readyReplicas}",
        ],
        |o| o.trim() == "4",
    );

    // Create an allocation from a file.
    let dir = TempDir::new("kubectl");
    let gsa = dir.0.join("gsa.yaml");
    std::fs::write(
        &gsa,
        "apiVersion: allocation.agones.dev/v1\nkind: GameServerAllocation\nspec:\n  selectors:\n    - matchLabels:\n        agones.dev/fleet: simple\n",
    )
    .unwrap();
    let out = ok(
        &url,
        &[
            "create",
            "-f",
            gsa.to_str().unwrap(),
            "-o",
            "jsonpath={.status.state} {.status.gameServerName}",
        ],
    );
    let mut parts = out.split_whitespace();
    assert_eq!(parts.next(), Some("Allocated"), "{out}");
    let name = parts.next().unwrap().to_owned();
    let state = ok(
        &url,
        &["get", "gs", &name, "-o", "jsonpath={.status.state}"],
    );
    assert_eq!(state, "Allocated");

    // Watch: a scale change shows up on a running `kubectl get -w`.
    let mut watch = Command::new("kubectl")
        .args([
            &format!("--server={url}"),
            "--namespace=default",
            "get",
            "fleets",
            "-w",
            "--request-timeout=4s",
        ])
        .env("KUBECONFIG", "/dev/null")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(800));
    ok(&url, &["scale", "fleet", "simple", "--replicas=1"]);
    std::thread::sleep(Duration::from_millis(1500));
    let _ = watch.kill();
    let output = watch.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.lines().count() >= 2, "kubectl get -w printed:\n{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("simple") && l.split_whitespace().nth(2) == Some("1")),
        "{text}"
    );

    // Errors come back as kubectl prints a real API server's.
    let (success, _, err) = kubectl(&url, &["get", "fleet", "nope"]);
    assert!(!success);
    assert!(
        err.contains("NotFound") || err.contains("not found"),
        "{err}"
    );
    assert_eq!(sim.stop().code(), Some(0));
}
