//! The rehearsal: the shipped deploy, rendered with `kubectl kustomize` and run as it renders,
//! against the simulator at its realistic default speed.
//!
//! - **What runs** is what renders: every upsoak container's command, args and env, with its
//!   mounted ConfigMaps and Secrets written under a temporary root that stands for the
//!   container's filesystem ([`render`]). Init containers run first and must succeed.
//! - **The cluster** is the simulator, with its default lifecycle (about 5 s to Ready) and
//!   upgrade window (20 s); the Fleet is the rendered one, applied with kubectl. helm is the
//!   fake helm (`chaos/tests/common/fake_helm.py`, a model of helm's CLI and release storage;
//!   helm itself cannot run without a cluster), its release seeded by a person's install with
//!   the overlay's Agones values.
//! - **Prometheus and Alertmanager** are configured as the target stack would configure
//!   itself from the rendered objects ([`stack`]): for prometheus-operator, only the
//!   ServiceMonitors and PrometheusRules kube-prometheus-stack's default selectors select
//!   (Agones' own included, as its chart renders them), with the operator's job names and
//!   target labels; for the plain overlay, its scrape configs with Kubernetes discovery
//!   answered from the rendered Services and pods.
//! - **What a rehearsal may change** is durations only, through the documented `UPSOAK_…`
//!   environment overrides, each printed. Two translations stand for the cluster itself: a
//!   container path is the same path under the root, and a Service's DNS name is 127.0.0.1 at
//!   the port behind it (each process runs in the rehearsal's own network namespace, so the
//!   rendered ports are used as they are).
//!
//! Where the rendered deploy cannot run, that is the finding ([`Error::Finding`]).

pub mod render;
pub mod run;
pub mod stack;

/// Exit codes of `upsoak-rehearse`.
pub mod exit {
    /// Every criterion held.
    pub const OK: i32 = 0;
    /// The rehearsal ran and a criterion did not hold, or the deploy cannot run as rendered.
    pub const FINDING: i32 = 1;
    /// Bad input: an overlay that does not render, a missing tool, a bad flag.
    pub const INPUT: i32 = 2;
    /// The rehearsal itself could not run (a port taken, a process that would not start).
    pub const SETUP: i32 = 3;
}

/// Why a rehearsal stopped.
#[derive(Debug)]
pub enum Error {
    /// The rendered deploy cannot run as it is.
    Finding(String),
    /// Bad input.
    Input(String),
    /// The machine, not the deploy.
    Setup(String),
}

impl Error {
    pub fn code(&self) -> i32 {
        match self {
            Error::Finding(_) => exit::FINDING,
            Error::Input(_) => exit::INPUT,
            Error::Setup(_) => exit::SETUP,
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Finding(m) => write!(f, "finding: {m}"),
            Error::Input(m) => write!(f, "bad input: {m}"),
            Error::Setup(m) => write!(f, "set-up failed: {m}"),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
