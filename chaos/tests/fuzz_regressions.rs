//! Replays every saved fuzz input of this crate's parsers (`fuzz/regressions/<target>/`):
//! the crashes `make fuzz` found and the audit's bombs, each once more through the very
//! function the fuzz target calls (`fuzz/src/chaos.rs`, included here by path). A regression
//! panics, overflows the stack or hangs this test. The tests' bodies are `fuzz/src/replay.rs`.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../fuzz/src/random.rs"]
mod random;
#[path = "../../fuzz/src/replay.rs"]
mod replay;
#[path = "../../fuzz/src/chaos.rs"]
mod targets;

#[test]
fn every_saved_fuzz_input_is_handled_without_a_crash() {
    replay::replay_saved(targets::TARGETS);
}

/// `make fuzz FUZZ_ENGINE=random`: every target of this crate for `FUZZ_SECONDS` (default 30)
/// under the mutation fuzzer of `fuzz/src/random.rs`.
#[test]
#[ignore = "run by `make fuzz FUZZ_ENGINE=random`"]
fn fuzz_every_target_for_fuzz_seconds() {
    replay::fuzz_for_seconds(targets::TARGETS);
}
