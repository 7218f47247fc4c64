//! The words a judgement is given in: which way a value goes bad ([`Direction`]), the verdict
//! ([`Verdict`], ordered so the worst of many is their maximum) and how loud a failure is
//! ([`Severity`]).

use std::fmt;

use serde::{Deserialize, Serialize};

/// Which change of the value is bad.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Higher is worse: latency, error rates, memory.
    IncreaseIsBad,
    /// Lower is worse: success ratios, ready replicas.
    DecreaseIsBad,
    /// Any shift is suspect.
    Either,
}

/// A verdict. Ordered from best to worst, so the overall verdict of many is their maximum.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Inconclusive,
    Warn,
    Fail,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Warn => "warn",
            Verdict::Fail => "fail",
            Verdict::Inconclusive => "inconclusive",
        }
    }
    pub const ALL: [Verdict; 4] = [
        Verdict::Pass,
        Verdict::Warn,
        Verdict::Fail,
        Verdict::Inconclusive,
    ];
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How loud a failed SLO is.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}
