//! Replays every saved fuzz input of this crate's parsers (`fuzz/regressions/<target>/`):
//! the crashes `make fuzz` found and the audit's bombs, each once more through the very
//! function the fuzz target calls (`fuzz/src/agent.rs`, included here by path). A regression
//! panics, overflows the stack or hangs this test.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../fuzz/src/agent.rs"]
mod targets;

use std::path::Path;

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
