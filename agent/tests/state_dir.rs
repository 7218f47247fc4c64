//! The binary on a state directory: `export` writes its files as a tar read back here with the
//! same bytes (the lock and temporaries left out), and `export` and `report` on a directory
//! that does not exist are bad input (exit 2) naming the path.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::process::{Command, Output};

use common::TempDir;
use upsoak_agent::exit;
use upsoak_agent::history::History;
use upsoak_common::state::StateLock;

const BIN: &str = env!("CARGO_BIN_EXE_upsoak-agent");

fn agent(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

/// The entries of a tar archive: path → bytes, in archive order (checked sorted by the caller).
fn entries(tar_bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut archive = tar::Archive::new(tar_bytes);
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            assert_eq!(e.header().entry_type(), tar::EntryType::Regular);
            let path = e.path().unwrap().display().to_string();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            (path, data)
        })
        .collect()
}

#[test]
fn export_writes_the_state_dirs_files_as_a_tar_without_the_lock_or_temporaries() {
    let tmp = TempDir::new("agent-export");
    let dir = tmp.path().join("state");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    // The history as the agent writes it, and the files it keeps beside it.
    let history: History = serde_json::from_value(serde_json::json!({
        "transitions": [{
            "generation": 2, "at": 1_800_000_000,
            "from": {"version": "1.58.0"}, "to": {"version": "1.59.0"},
        }],
        "last_generation": 2,
        "last_config": {"version": "1.59.0"},
    }))
    .unwrap();
    history.save(&dir).unwrap();
    std::fs::write(dir.join("baseline.json"), b"{\"format_version\": 1}\n").unwrap();
    std::fs::write(dir.join("sub/journal.jsonl"), b"{\"a\":1}\n{\"a\":2}\n").unwrap();
    // A running agent's lock, and a write in progress: neither is exported.
    let _lock = StateLock::acquire(&dir).unwrap();
    std::fs::write(dir.join(".history.json.77.0.tmp"), b"half").unwrap();

    let out = agent(&["export".as_ref(), "--state-dir".as_ref(), dir.as_os_str()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(i32::from(exit::PASS)), "{err}");
    assert!(err.contains("exported 3 files from"), "{err}");
    let got: BTreeMap<String, Vec<u8>> = entries(&out.stdout).into_iter().collect();
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        vec!["baseline.json", "history.json", "sub/journal.jsonl"]
    );
    assert_eq!(
        got["history.json"],
        std::fs::read(dir.join("history.json")).unwrap(),
        "history.json exported with the same bytes"
    );
    assert_eq!(
        serde_json::from_slice::<History>(&got["history.json"])
            .unwrap()
            .last_generation,
        Some(2)
    );
    assert_eq!(got["sub/journal.jsonl"], b"{\"a\":1}\n{\"a\":2}\n");
    // A POSIX ustar archive, as `tar` expects: `ustar\0` magic in the first header.
    assert_eq!(&out.stdout[257..263], b"ustar\0");
    // The system's tar reads it too, where there is one.
    if let Ok(listed) = Command::new("tar")
        .arg("-tf")
        .arg("-")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(&out.stdout)?;
            c.wait_with_output()
        })
    {
        assert!(listed.status.success());
        let names = String::from_utf8_lossy(&listed.stdout);
        assert_eq!(
            names.lines().collect::<Vec<_>>(),
            vec!["baseline.json", "history.json", "sub/journal.jsonl"]
        );
    }
}

#[test]
fn export_and_report_on_a_missing_state_dir_are_bad_input_naming_it() {
    let tmp = TempDir::new("agent-missing");
    let missing = tmp.path().join("no/such/dir");
    for args in [
        vec![
            "export".as_ref(),
            "--state-dir".as_ref(),
            missing.as_os_str(),
        ],
        vec![
            "report".as_ref(),
            "--state-dir".as_ref(),
            missing.as_os_str(),
        ],
        vec![
            "report".as_ref(),
            "--follow".as_ref(),
            "--state-dir".as_ref(),
            missing.as_os_str(),
        ],
    ] {
        let out = agent(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(i32::from(exit::BAD_INPUT)),
            "{args:?}: {err}"
        );
        assert!(
            err.contains(&format!(
                "error: the directory `{}` does not exist",
                missing.display()
            )),
            "{args:?}: {err}"
        );
        assert!(out.stdout.is_empty(), "{args:?}: nothing on stdout");
    }
    // An existing directory without a history is a report with nothing judged yet.
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let out = agent(&["report".as_ref(), "--state-dir".as_ref(), empty.as_os_str()]);
    assert_eq!(out.status.code(), Some(i32::from(exit::INCONCLUSIVE)));
}

#[test]
fn run_on_a_corrupt_history_or_inbox_is_bad_input_naming_the_file() {
    let tmp = TempDir::new("agent-corrupt");
    let specs = concat!(env!("CARGO_MANIFEST_DIR"), "/../rules/slos.yaml");
    for (file, text) in [
        ("history.json", "{\"transitions\": [tru"),
        ("inbox.json", "\0\0"),
    ] {
        let dir = tmp.path().join(file);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(file), text).unwrap();
        // A killed agent's temporary: removed when the next one takes the lock.
        let stale = dir.join(".history.json.4294967295.0.tmp");
        std::fs::write(&stale, b"partial").unwrap();
        let out = Command::new(BIN)
            .args([
                "run",
                "--no-probes",
                "--listen",
                "127.0.0.1:0",
                "--specs",
                specs,
            ])
            .args(["--prometheus", "http://127.0.0.1:1", "--state-dir"])
            .arg(&dir)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(i32::from(exit::BAD_INPUT)),
            "{file}: {err}"
        );
        assert!(
            err.contains(&dir.join(file).display().to_string()),
            "{file}: {err}"
        );
        assert!(out.stdout.is_empty(), "{file}: nothing ran");
        assert!(!stale.exists(), "{file}: the stale temporary is left");
    }
}
