//! The short rehearsal of `make test`: the prometheus-operator overlay as it renders, run
//! against the simulator at its realistic default speed (about 5 s from creation to Ready, a
//! 20 s upgrade window, the chart's 500 ms batch wait) until three transitions are judged in
//! both windows; every one must pass both. `make rehearse` runs both overlays for six, and a
//! second run with a fault (BENCHMARKS.md).
//!
//! Only durations are overridden, and only because a test cannot wait 30 minutes a period:
//! the Wanderer's period (8 min: the apply, the agent's 2 min settle and a 4 min judged window,
//! with the schedule's ±10 % jitter) and the agent's judge window (4 min: the agent refuses a
//! window shorter than the `leaks` group's 5 samples at its 1 min interval; the memory SLOs'
//! 10 samples at 15 s after the 2 min warm-up fit in it too).
//!
//! It runs in network and PID namespaces of its own (`unshare --net --pid`): the rendered ports
//! are used as they are, and nothing outlives it. It takes about 35 minutes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

use upsoak_testkit::{TempDir, bin};

#[test]
fn the_shipped_prometheus_operator_overlay_runs_clean_at_real_speed() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let token = repo.join("deploy/components/webhook-token/webhook.token");
    if !token.exists() {
        // The README's first deploy step (and `make deploy-check`) makes it: a random token.
        let mut bytes = [0u8; 32];
        std::io::Read::read_exact(
            &mut std::fs::File::open("/dev/urandom").unwrap(),
            &mut bytes,
        )
        .unwrap();
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        std::fs::write(&token, hex).unwrap();
    }
    let tmp = TempDir::new("rehearsal");
    let work = tmp.path().join("work");
    let json = tmp.path().join("outcome.json");
    let out = Command::new("unshare")
        // A network namespace for the rendered ports; a PID namespace whose init is the
        // rehearsal, so that nothing it started outlives it, whatever ends it.
        .args(["--net", "--pid", "--fork", "--kill-child"])
        .args(["sh", "-c", "ip link set lo up && exec \"$@\"", "rehearse"])
        .arg(bin("upsoak-rehearse"))
        .arg("--overlay")
        .arg(repo.join("deploy/overlays/prometheus-operator"))
        .arg("--repo")
        .arg(&repo)
        .arg("--work")
        .arg(&work)
        .args(["--transitions", "3", "--timeout", "50m"])
        .args(["--set", "upsoak-chaos:UPSOAK_WANDERER__SCHEDULE__PERIOD=8m"])
        .args(["--set", "upsoak-agent:UPSOAK_SETTLE=2m"])
        .args(["--set", "upsoak-agent:UPSOAK_JUDGE_WINDOW=4m"])
        .arg("--json")
        .arg(&json)
        .output()
        .expect("unshare (util-linux) runs the rehearsal");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the rehearsal did not pass ({}):\n{stdout}\n{stderr}",
        out.status
    );
    let outcome: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let rows = outcome["rows"].as_array().unwrap();
    assert!(rows.len() >= 3, "{outcome:#}");
    for r in rows {
        assert_eq!(r["disruption"], "pass", "{r:#}\n{stdout}");
        assert_eq!(r["steady"], "pass", "{r:#}\n{stdout}");
    }
    assert!(
        outcome["unmet"].as_array().unwrap().is_empty(),
        "{outcome:#}"
    );
}
