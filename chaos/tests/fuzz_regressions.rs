//! Replays every saved fuzz input of this crate's parsers (`fuzz/regressions/<target>/`):
//! the crashes `make fuzz` found and the audit's bombs, each once more through the very
//! function the fuzz target calls (`fuzz/src/chaos.rs`, included here by path). A regression
//! panics, overflows the stack or hangs this test.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../fuzz/src/random.rs"]
mod random;
#[path = "../../fuzz/src/chaos.rs"]
mod targets;

use std::path::Path;
use std::time::Duration;

#[test]
fn every_saved_fuzz_input_is_handled_without_a_crash() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions");
    for (name, run) in targets::TARGETS {
        let dir = root.join(name);
        let mut inputs: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| {
                panic!(
                    "{}: {e} (every target keeps its saved inputs)",
                    dir.display()
                )
            })
            .map(|e| e.unwrap().path())
            .collect();
        inputs.sort();
        assert!(!inputs.is_empty(), "{}: no saved input", dir.display());
        for p in inputs {
            eprintln!("{name}: {}", p.display());
            run(&std::fs::read(&p).unwrap());
        }
    }
}

/// `make fuzz FUZZ_ENGINE=random`: every target of this crate for `FUZZ_SECONDS` (default 30)
/// under the mutation fuzzer of `fuzz/src/random.rs`; prints a row of BENCHMARKS.md's table
/// per target and fails when any input crashed one (saved in `fuzz/artifacts/<target>/`).
#[test]
#[ignore = "run by `make fuzz FUZZ_ENGINE=random`"]
fn fuzz_every_target_for_fuzz_seconds() {
    let secs = std::env::var("FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut crashed = Vec::new();
    for (name, run) in targets::TARGETS {
        let r = random::run(
            name,
            *run,
            &root.join("regressions").join(name),
            &root.join("artifacts").join(name),
            Duration::from_secs(secs),
        );
        println!("| `{name}` | {secs} | {} | {} |", r.executions, r.crashes);
        if r.crashes > 0 {
            crashed.push(*name);
        }
    }
    assert!(
        crashed.is_empty(),
        "crashes in {crashed:?}: their inputs are in fuzz/artifacts/<target>/"
    );
}
