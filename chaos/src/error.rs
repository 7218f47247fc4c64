//! The crate's error: every way a command of the sidecar fails, with its `#[source]` chain, and
//! the exit code each means.

use std::path::PathBuf;
use std::time::Duration;

use tokio::task::JoinError;

use upsoak_common::cli::CliError;
use upsoak_common::exit;
use upsoak_common::problems::Invalid;

use crate::producer::ClientError;
use crate::wanderer::RunError;
use crate::wanderer::apply::ApplyError;

/// Exit code: success.
pub const EXIT_OK: u8 = exit::OK;
/// Exit code: a runtime failure (cannot bind, cannot observe, journal I/O, a task crashed). Not
/// a verdict on the system under test.
pub const EXIT_FAILURE: u8 = exit::RUNTIME_FAILURE;
/// Exit code: bad input (an invalid file, flag or configuration).
pub const EXIT_BAD_INPUT: u8 = exit::BAD_INPUT;

/// Why a command of the sidecar failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file (the configuration, the space) is invalid or unreadable; every problem with its
    /// path.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// A flag's value does not fit (e.g. `plan --from` a version the space lacks).
    #[error("{0}")]
    Flag(String),
    /// The Kubernetes client for the Producer could not be built.
    #[error("cannot build the Producer's Kubernetes client")]
    Client(#[from] ClientError),
    /// The state directory cannot be created.
    #[error("cannot create the state directory `{}`", .0.display())]
    StateDir(PathBuf, #[source] std::io::Error),
    /// Another sidecar holds the state directory (or its lock cannot be taken).
    #[error(transparent)]
    StateLock(#[from] upsoak_common::state::LockError),
    /// `listen` cannot be bound.
    #[error("cannot listen on `{0}`")]
    Listen(String, #[source] std::io::Error),
    /// The Wanderer stopped before its time.
    #[error("the Wanderer stopped")]
    Wanderer(#[from] RunError),
    /// The metrics server failed while serving.
    #[error("the metrics server failed")]
    Serve(#[source] std::io::Error),
    /// A task panicked (or was cancelled).
    #[error("the {0} task crashed")]
    Task(&'static str, #[source] JoinError),
    /// A task did not stop within its deadline after shutdown.
    #[error("the {0} did not stop within {1:?}")]
    Stuck(&'static str, Duration),
    /// Output could not be encoded or written.
    #[error("cannot write the output")]
    Output(#[source] std::io::Error),
    /// `preflight`: these checks failed (their names).
    #[error("preflight failed: {0}")]
    Preflight(String),
    /// `plan --format json` could not be encoded.
    #[error("cannot encode the plan as JSON")]
    Encode(#[source] serde_json::Error),
}

/// The crate's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The exit code this error means.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Invalid(_)
            | Error::Flag(_)
            | Error::Client(_)
            | Error::Wanderer(RunError::OtherWalk { .. })
            | Error::StateLock(upsoak_common::state::LockError::Held { .. }) => EXIT_BAD_INPUT,
            Error::Preflight(_) => exit::FAIL,
            _ => EXIT_FAILURE,
        }
    }

    /// What the user can do about it, when there is something.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            Error::Wanderer(RunError::OtherWalk { .. }) => Some(
                "use another `state_dir`, or the seed, strategy and space the journal was started with",
            ),
            Error::Wanderer(RunError::Halted { .. })
            | Error::Wanderer(RunError::Observe(ApplyError::Stuck { .. })) => Some(
                "recover the release by hand (`helm history`, `helm rollback`), or set `wanderer.applier.on_stuck: rollback`",
            ),
            Error::Preflight(_) => Some("each failed check above says what to do"),
            Error::Wanderer(RunError::Observe(_)) => Some(
                "check `wanderer.applier`: the Wanderer observes what is installed before it starts",
            ),
            _ => None,
        }
    }
}

/// The binary prints an [`Error`] as every upsoak binary prints errors: its exit code, the
/// headline, a `caused by:` line per source, and the hint.
impl From<Error> for CliError {
    fn from(e: Error) -> CliError {
        let code = e.exit_code();
        let hint = e.hint();
        // The error itself is the first source: `render` skips it (it is the headline) and
        // prints its sources below.
        let cli = CliError::new(code, e.to_string()).with_source(e);
        match hint {
            Some(h) => cli.with_hint(h),
            None => cli,
        }
    }
}
