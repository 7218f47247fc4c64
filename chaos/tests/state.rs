//! The sidecar's state directory: one sidecar per directory (a second exits 2 naming the
//! first's pid), and a journal that cannot be written (its name taken by a directory, as a full
//! or read-only disk refuses it) halts only the walk: the failure is counted and shown on
//! `/healthz`, the Producer's allocations go on, and the walk resumes from the journal once it
//! can be written.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use upsoak_testkit::{POLL, Proc, TempDir, eventually, sample, scrape};

mod common;

const BIN: &str = env!("CARGO_BIN_EXE_upsoak-chaos");

fn config(dir: &Path, sim: &str, producer: &str) -> PathBuf {
    let space = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("spaces/agones.yaml");
    let config = dir.join("sidecar.yaml");
    std::fs::write(
        &config,
        format!(
            "listen: 127.0.0.1:0\nstate_dir: {}\nkube_server: {sim}\nwanderer:\n  space: {}\n  seed: 5\n  schedule: {{ period: 300ms, jitter: 0 }}\n  applier: {{ kind: sim, url: \"{sim}\" }}\nproducer:\n{producer}",
            dir.join("state").display(),
            space.display(),
        ),
    )
    .unwrap();
    config
}

async fn get(url: &str) -> Option<(u16, String)> {
    let r = reqwest::get(url).await.ok()?;
    Some((r.status().as_u16(), r.text().await.ok()?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sidecar_on_the_same_state_dir_exits_2_naming_the_first() {
    let (sim, _stop) = common::start_sim("", 1).await;
    let dir = TempDir::new("chaos-lock");
    let cfg = config(dir.path(), &sim, "  fleets: []\n  allocation_rate: 0\n");
    let first = Proc::start(
        "first",
        Command::new(BIN).args(["run", "--config"]).arg(&cfg),
        dir.path(),
    )
    .await;
    let out = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("in use by pid {}", first.id())),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_that_cannot_be_written_halts_only_the_walk_until_it_can() {
    let (sim, _stop) = common::start_sim("fleets: [ { name: p, replicas: 20 } ]", 1).await;
    let dir = TempDir::new("chaos-full");
    let cfg = config(
        dir.path(),
        &sim,
        "  fleets: [ { name: p, min_replicas: 20, max_replicas: 20, scale_every_min: 0s, scale_every_max: 0s } ]\n  allocation_rate: 5\n",
    );
    // The journal's name is taken by a directory: every open fails, as on a full disk.
    let journal = dir.path().join("state").join("journal.jsonl");
    std::fs::create_dir_all(journal.join("in-the-way")).unwrap();
    let p = Proc::start(
        "sidecar",
        Command::new(BIN).args(["run", "--config"]).arg(&cfg),
        dir.path(),
    )
    .await;
    let url = p.url().unwrap();
    let allocations = |m: &str| {
        m.lines()
            .filter(|l| l.starts_with(upsoak_common::names::producer::ALLOCATIONS_TOTAL))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>()
    };
    let m = eventually(Duration::from_secs(30), POLL, || async {
        let m = scrape(&url).await.ok()?;
        (sample(&m, "upsoak_wanderer_journal_write_failures_total")? >= 2.0).then_some(m)
    })
    .await
    .unwrap_or_else(|e| panic!("no journal failure counted ({e}):\n{}", p.logs()));
    let (code, body) = get(&format!("{url}/healthz")).await.unwrap();
    assert_eq!(code, 200, "{body}");
    assert!(
        body.contains("warning: the Wanderer cannot write its journal"),
        "{body}"
    );
    // The load goes on meanwhile.
    let before = allocations(&m);
    eventually(Duration::from_secs(30), POLL, || async {
        let m = scrape(&url).await.ok()?;
        (allocations(&m) > before + 5.0).then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("the Producer stopped ({e}):\n{}", p.logs()));
    // The journal can be written again: the walk resumes and the warning clears.
    std::fs::remove_dir_all(&journal).unwrap();
    eventually(Duration::from_secs(90), POLL, || async {
        let (code, body) = get(&format!("{url}/healthz")).await?;
        (code == 200 && !body.contains("warning")).then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("the walk never resumed ({e}):\n{}", p.logs()));
    assert!(std::fs::metadata(&journal).unwrap().is_file());
}
