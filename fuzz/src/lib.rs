//! The fuzz targets' bodies, one function per parser of untrusted input, grouped by the crate
//! that owns the parser. Each crate's `tests/fuzz_regressions.rs` includes its module by path
//! and replays every saved input of `fuzz/regressions/<target>/` in `make test`; the binaries
//! in `fuzz_targets/` hand libFuzzer's inputs to the same functions.
//!
//! A target panics only where the parser would: every error must come back as a value.

pub mod agent;
pub mod chaos;
pub mod sim;
