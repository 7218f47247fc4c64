//! An unmodified `kubectl --server URL` against the real `upsoak-sim` binary: get, list, watch,
//! scale, create an allocation. Fails (never skips) when kubectl is missing: `make test`
//! installs it.
// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{SimProcess, eventually_blocking, test_config};
use upsoak_testkit::TempDir;

fn kubectl(url: &str, args: &[&str]) -> (bool, String, String) {
    upsoak_testkit::kubectl(url, "default", args)
}

fn ok(url: &str, args: &[&str]) -> String {
    let (success, out, err) = kubectl(url, args);
    assert!(success, "kubectl {args:?} failed:\n{err}\n{out}");
    out
}

fn wait_for(url: &str, args: &[&str], want: impl Fn(&str) -> bool) -> String {
    eventually_blocking(
        10,
        &format!("kubectl {args:?} to give the expected output"),
        || {
            let (success, out, _) = kubectl(url, args);
            (success && want(&out)).then_some(out)
        },
    )
}

/// The lines a running `kubectl get -w` prints, as they come.
struct Watch {
    child: std::process::Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Watch {
    fn start(url: &str, args: &[&str]) -> Watch {
        let mut child = Command::new("kubectl")
            .arg(format!("--server={url}"))
            .arg("--namespace=default")
            .args(args)
            .env("KUBECONFIG", "/dev/null")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Watch {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Reads lines until one satisfies `want`, failing after 10 s with everything printed.
    fn until(&mut self, what: &str, want: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if want(&line) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "kubectl get -w never printed {what}; it printed:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn kubectl_drives_the_simulator() {
    let cfg = test_config("fleets: [ { name: simple, replicas: 2 } ]");
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
    let gsa = dir.write(
        "gsa.yaml",
        "apiVersion: allocation.agones.dev/v1\nkind: GameServerAllocation\nspec:\n  selectors:\n    - matchLabels:\n        agones.dev/fleet: simple\n",
    );
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

    // Watch: a scale change shows up on a running `kubectl get -w`. Its first row is the
    // current Fleet (desired 4), printed once the watch is open; the change comes after it.
    let mut watch = Watch::start(&url, &["get", "fleets", "-w"]);
    let desired = |n: &'static str| {
        move |l: &str| l.starts_with("simple") && l.split_whitespace().nth(2) == Some(n)
    };
    watch.until("the Fleet's current row", desired("4"));
    ok(&url, &["scale", "fleet", "simple", "--replicas=1"]);
    watch.until("the scaled-down row", desired("1"));
    drop(watch);

    // Errors come back as kubectl prints a real API server's.
    let (success, _, err) = kubectl(&url, &["get", "fleet", "nope"]);
    assert!(!success);
    assert!(
        err.contains("NotFound") || err.contains("not found"),
        "{err}"
    );
    assert_eq!(sim.stop().code(), Some(0));
}

/// `kubectl apply -f` of a Fleet, with kubectl's default client-side validation (which reads
/// `/openapi/v2` before 1.29 and `/openapi/v3` after): created, then configured by a merge
/// patch; `get --chunk-size` walks the list in `limit`/`continue` pages.
#[test]
fn kubectl_applies_a_fleet_and_lists_in_chunks() {
    let sim = SimProcess::start(Some(&test_config("")));
    let url = sim.url.clone();
    let dir = TempDir::new("kubectl-apply");
    let fleet = |replicas: u32| {
        format!(
            "apiVersion: agones.dev/v1\nkind: Fleet\nmetadata:\n  name: applied\nspec:\n  replicas: {replicas}\n  template:\n    spec:\n      ports:\n        - name: default\n          containerPort: 7654\n      template:\n        spec:\n          containers:\n            - name: simple-game-server\n              image: us-docker.pkg.dev/agones-images/examples/simple-game-server:0.43\n"
        )
    };
    let file = dir.write("fleet.yaml", &fleet(3));
    let out = ok(&url, &["apply", "-f", file.to_str().unwrap()]);
    assert!(out.contains("fleet.agones.dev/applied created"), "{out}");
    let file = dir.write("fleet.yaml", &fleet(5));
    let out = ok(&url, &["apply", "-f", file.to_str().unwrap()]);
    assert!(out.contains("fleet.agones.dev/applied configured"), "{out}");
    wait_for(
        &url,
        &[
            "get",
            "fleet",
            "applied",
            "-o",
            "jsonpath={.status.readyReplicas}",
        ],
        |o| o.trim() == "5",
    );
    let out = ok(
        &url,
        &["get", "gameservers", "--chunk-size=2", "-o", "name"],
    );
    assert_eq!(out.lines().count(), 5, "{out}");
    assert_eq!(sim.stop().code(), Some(0));
}
