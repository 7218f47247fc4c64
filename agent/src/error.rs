//! The crate's one error type. Parsers that report many problems at once keep their own
//! payloads ([`SpecErrors`], [`CriterionError`]) and return them through `Result<T, E>`; both
//! convert into [`Error`] where callers need one type.

use crate::criteria::CriterionError;
use crate::spec::SpecErrors;

/// `Result` with this crate's [`Error`] by default.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the agent.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An SLO spec file with problems, every one with its path.
    #[error(transparent)]
    Spec(#[from] SpecErrors),
    /// An objective or baseline criterion that does not parse.
    #[error(transparent)]
    Criterion(#[from] CriterionError),
    /// A query Prometheus refused or could not answer, with its own message.
    #[error("query `{query}` failed: {message}")]
    Query { query: String, message: String },
    /// A baseline window with a Wanderer transition inside.
    #[error(
        "the window {from}..{to} is not steady: the Wanderer's generation changed inside it ({values:?}); pick a window between transitions"
    )]
    TransitionInWindow {
        from: i64,
        to: i64,
        values: Vec<f64>,
    },
    /// A baseline window too thin for some SLOs (listed with their counts).
    #[error("too few samples in the window for: {0}")]
    TooFewSamples(String),
    /// A file (baseline, history) that could not be written.
    #[error("cannot write `{0}`")]
    Write(String, #[source] std::io::Error),
    /// A file (baseline, history) that could not be read or is not what it should be.
    #[error("cannot read `{0}`: {1}")]
    Read(String, String),
}

impl Error {
    /// The message without the query text, for evidence that shows the query beside it.
    pub fn message(&self) -> String {
        match self {
            Error::Query { message, .. } => message.clone(),
            other => other.to_string(),
        }
    }
}
