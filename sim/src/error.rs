//! The simulator's errors: why it could not start or why it stopped, each with its cause.

use std::io;

use crate::game::GameError;

/// Why the simulator could not start, or stopped before it was asked to.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listener given to `Sim::start` has no local address.
    #[error("cannot read the listener's address")]
    ListenerAddress(#[source] io::Error),
    /// The configured game port range cannot be used.
    #[error("cannot use the configured game ports")]
    GamePorts(#[source] GameError),
    /// Serving HTTP failed after the listener was bound.
    #[error("serving the Kubernetes API failed")]
    Serve(#[source] io::Error),
    /// The world's lock is poisoned (a panic while holding it): the controllers stopped.
    #[error("the simulator's state is unavailable after a panic; its controllers stopped")]
    Poisoned,
    /// The allocator service could not start (its listener or certificates).
    #[error("cannot start the allocator service: {0}")]
    AllocatorService(String),
    /// A task of the simulator panicked or was aborted.
    #[error("a simulator task failed")]
    Task(#[source] tokio::task::JoinError),
}

/// A result with the simulator's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
