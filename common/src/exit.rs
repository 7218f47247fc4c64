//! Exit codes of every upsoak binary, so a CI pipeline reads them the same way for all three.
//!
//! A pipeline must be able to tell "the upgrade regressed" (1) from "the tool could not do its
//! job" (4): a crash is not a regression. Codes 1 and 3 are verdicts and only the agent, which
//! judges, returns them.

/// Success: the command did what it was asked (for the agent: every judged SLO passed).
pub const OK: u8 = 0;
/// A regression was found: at least one SLO failed (agent only).
pub const FAIL: u8 = 1;
/// Bad input: an invalid file, flag or configuration; nothing was run.
pub const BAD_INPUT: u8 = 2;
/// Nothing failed, but something could not be judged (agent only).
pub const INCONCLUSIVE: u8 = 3;
/// A runtime failure: cannot listen, cannot reach a dependency, I/O failed, a task crashed.
/// Says nothing about the system under test.
pub const RUNTIME_FAILURE: u8 = 4;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_and_stable() {
        // The numbers are a public contract (README, CI scripts): pin them.
        assert_eq!(
            [OK, FAIL, BAD_INPUT, INCONCLUSIVE, RUNTIME_FAILURE],
            [0, 1, 2, 3, 4]
        );
    }
}
