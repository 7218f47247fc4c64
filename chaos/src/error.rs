//! The crate's error: every way a command of the sidecar fails, with its `#[source]` chain, and
//! the exit code each means.

use std::path::PathBuf;
use std::time::Duration;

use tokio::task::JoinError;

use crate::producer::ClientError;
use crate::wanderer::RunError;
use crate::wanderer::space::SpaceErrors;

/// Exit code: success.
pub const EXIT_OK: u8 = 0;
/// Exit code: a runtime failure (cannot bind, cannot observe, journal I/O, a task crashed).
pub const EXIT_FAILURE: u8 = 1;
/// Exit code: bad input (an invalid file, flag or configuration).
pub const EXIT_BAD_INPUT: u8 = 2;

/// Why a command of the sidecar failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration space is invalid or unreadable.
    #[error(transparent)]
    Space(#[from] SpaceErrors),
    /// The sidecar's configuration file is invalid; every problem with its path.
    #[error("invalid configuration:\n  {}", .0.join("\n  "))]
    Config(Vec<String>),
    /// A flag's value does not fit (e.g. `plan --from` a version the space lacks).
    #[error("{0}")]
    Flag(String),
    /// The Kubernetes client for the Producer could not be built.
    #[error("cannot build the Producer's Kubernetes client")]
    Client(#[from] ClientError),
    /// The state directory cannot be created.
    #[error("cannot create the state directory `{}`", .0.display())]
    StateDir(PathBuf, #[source] std::io::Error),
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
            Error::Space(_)
            | Error::Config(_)
            | Error::Flag(_)
            | Error::Client(_)
            | Error::Wanderer(RunError::OtherWalk { .. }) => EXIT_BAD_INPUT,
            _ => EXIT_FAILURE,
        }
    }

    /// The headline, then a `caused by:` line per source, as the binary prints it.
    pub fn report(&self) -> String {
        let mut out = format!("error: {self}");
        let mut source = std::error::Error::source(self);
        while let Some(s) = source {
            out.push_str(&format!("\n  caused by: {s}"));
            source = s.source();
        }
        out
    }
}
