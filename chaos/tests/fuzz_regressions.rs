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

/// The sidecar config's *values* (D10): 1 000 valid-shaped configs whose durations and numbers
/// are drawn from the extremes (`fuzz/src/chaos.rs` `values_config`), each loaded and, when it
/// loads, run through what `run` computes from it. Some must load and some be refused, or the
/// generator is not reaching the checks.
#[test]
fn structured_sidecar_configs_with_extreme_values_never_panic() {
    let mut rng = random::Rng::new(0x5eed_c0f1);
    let mut loaded = 0;
    let dir = upsoak_testkit::TempDir::new("fuzz-values");
    for _ in 0..1_000 {
        // 0 to 40 bytes: the first picks the applier, each next one a field's value (one in
        // eight an extreme), the fields past the end keep their defaults.
        let len = rng.below(41);
        let data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        targets::sidecar_config_values(&data);
        let text = targets::values_config(&data);
        let p = dir.write("c.yaml", &text);
        let r = upsoak_chaos::config::SidecarConfig::load(&p);
        if r.is_ok() {
            loaded += 1;
        }
    }
    assert!((1..1_000).contains(&loaded), "{loaded} of 1000 loaded");
}
