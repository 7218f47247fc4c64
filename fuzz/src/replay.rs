//! The two tests each crate's `tests/fuzz_regressions.rs` runs over its targets, included there
//! by path beside `random.rs` and the crate's target module: replaying every saved input of
//! `fuzz/regressions/<target>/` (in `make test`), and fuzzing every target for `FUZZ_SECONDS`
//! (`make fuzz FUZZ_ENGINE=random`).

use std::path::{Path, PathBuf};
use std::time::Duration;

/// A target: its name (the directory of its saved inputs) and its body.
pub type Target = (&'static str, fn(&[u8]));

fn fuzz_root() -> PathBuf {
    // Each including test file sits in `<crate>/tests/`; `fuzz/` is the crate's sibling.
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// Runs each target on every one of its saved inputs, in name order; a target without saved
/// inputs fails (every target keeps at least its seeds).
pub fn replay_saved(targets: &[Target]) {
    let root = fuzz_root().join("regressions");
    for (name, run) in targets {
        let dir = root.join(name);
        let mut inputs: Vec<PathBuf> = std::fs::read_dir(&dir)
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

/// Fuzzes each target for `FUZZ_SECONDS` (default 30) under [`super::random`]; prints a row of
/// BENCHMARKS.md's table per target and fails when any input crashed one (saved in
/// `fuzz/artifacts/<target>/`).
pub fn fuzz_for_seconds(targets: &[Target]) {
    // A mistyped FUZZ_SECONDS fails the run: a silent 30 s would pass for the asked-for hour.
    let secs: u64 = match std::env::var("FUZZ_SECONDS") {
        Err(_) => 30,
        Ok(s) => s.trim().parse().unwrap_or_else(|e| {
            panic!(
                "FUZZ_SECONDS={s:?} is not a whole number of seconds ({e}); e.g. FUZZ_SECONDS=600"
            )
        }),
    };
    let root = fuzz_root();
    let mut crashed = Vec::new();
    for (name, run) in targets {
        let r = super::random::run(
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
