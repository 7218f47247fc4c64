//! Appliers: how the Wanderer installs a configuration, and how it then observes what is
//! really installed. One trait, two implementations: the simulator's control endpoint
//! ([`sim`]) and `helm upgrade --install` ([`helm`], running helm through [`process`]). The
//! recorded outcome is always the observed one.

pub mod helm;
pub mod process;
pub mod sim;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use upsoak_agones::release::{Install, TunableValue};

pub use helm::{ChartValue, HelmApplier, OnStuck, ReuseValues, ValueFormat};
pub use sim::SimApplier;

/// Why an apply or an observation failed.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("the install was rejected: {0}")]
    Rejected(String),
    #[error("cannot reach `{0}`")]
    Unreachable(String, #[source] reqwest::Error),
    #[error("the install did not finish within {0:?}")]
    Timeout(Duration),
    /// The applier's own deadline passed: the command's whole process group was stopped.
    #[error(
        "`{command}` ran past {after:?}: its process group {pgid} was stopped with SIG{signal}"
    )]
    Killed {
        command: String,
        after: Duration,
        pgid: u32,
        /// The last signal it needed: `TERM`, or `KILL` when TERM was not enough.
        signal: &'static str,
    },
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        command: String,
        status: String,
        stderr: String,
    },
    #[error("cannot run `{0}`")]
    Spawn(String, #[source] std::io::Error),
    #[error("unexpected answer from {what}: {detail}")]
    Unexpected { what: String, detail: String },
    #[error("cannot write `{0}`")]
    Write(PathBuf, #[source] std::io::Error),
    /// A release stayed `pending-*` past the wait and the policy is to fail, or the policy
    /// could not recover it.
    #[error(
        "release `{release}` is stuck in `{status}` (revision {revision}) after {waited:?}: {detail}"
    )]
    Stuck {
        release: String,
        /// The `on_stuck` policy that was applied.
        policy: &'static str,
        status: String,
        revision: u64,
        waited: Duration,
        detail: String,
    },
}

impl ApplyError {
    /// Every value [`ApplyError::kind`] gives.
    pub const KINDS: [&'static str; 8] = [
        "rejected",
        "unreachable",
        "timeout",
        "command_failed",
        "spawn_failed",
        "unexpected",
        "write_failed",
        "stuck",
    ];

    /// A bounded label value: the `kind` of `upsoak_wanderer_transitions_total`.
    pub fn kind(&self) -> &'static str {
        match self {
            ApplyError::Rejected(_) => "rejected",
            ApplyError::Unreachable(..) => "unreachable",
            ApplyError::Timeout(_) | ApplyError::Killed { .. } => "timeout",
            ApplyError::Command { .. } => "command_failed",
            ApplyError::Spawn(..) => "spawn_failed",
            ApplyError::Unexpected { .. } => "unexpected",
            ApplyError::Write(..) => "write_failed",
            ApplyError::Stuck { .. } => "stuck",
        }
    }

    /// Whether the apply was cut off by a deadline: its result is unknown until observed.
    pub fn is_timeout(&self) -> bool {
        self.kind() == "timeout"
    }

    /// A stuck release as a failed [`Recovery`], to journal and count.
    pub fn as_failed_recovery(&self) -> Option<Recovery> {
        match self {
            ApplyError::Stuck {
                policy,
                status,
                revision,
                waited,
                detail,
                ..
            } => Some(Recovery {
                status: status.clone(),
                revision: *revision,
                policy,
                result: "failed",
                waited: *waited,
                detail: detail.clone(),
            }),
            _ => None,
        }
    }
}

/// What [`Applier::settle`] found and did about a release an earlier operation left pending.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovery {
    /// The status found, e.g. `pending-upgrade`.
    pub status: String,
    /// The stuck revision.
    pub revision: u64,
    /// The policy applied: `rollback` or `fail`.
    pub policy: &'static str,
    /// What came of it: `rolled_back`, `failed` or `cleared` (it finished on its own while
    /// waited for).
    pub result: &'static str,
    /// How long it was waited for before the policy applied.
    pub waited: Duration,
    /// What was done, or why it failed.
    pub detail: String,
}

/// Installs configurations and reports what is installed.
#[allow(async_fn_in_trait)]
pub trait Applier {
    /// Installs `target` and waits until the install has finished (or failed).
    async fn apply(&self, target: &Install) -> Result<(), ApplyError>;
    /// What is installed now, as the system reports it.
    async fn observe_installed(&self) -> Result<Install, ApplyError>;
    /// Waits until no install is in progress (one a crashed run may have left going), so an
    /// observation is of a settled system; an install left stuck is handled per the applier's
    /// policy and reported. Bounded by the applier's timeouts.
    async fn settle(&self) -> Result<Option<Recovery>, ApplyError>;
    /// A short name for logs and metrics.
    fn name(&self) -> &'static str;
}

/// How `observed` differs from `target`, or `None` when it satisfies it: the version, each gate
/// the target sets, each tunable the target sets (`name: want X, observed Y`).
pub fn difference(target: &Install, observed: &Install) -> Option<String> {
    let mut parts = Vec::new();
    if target.version != observed.version {
        parts.push(format!(
            "version: want {}, observed {}",
            target.version, observed.version
        ));
    }
    for (g, want) in &target.feature_gates {
        let got = observed.feature_gates.get(g);
        if got != Some(want) {
            parts.push(format!(
                "gate {g}: want {want}, observed {}",
                got.map_or("unset".to_owned(), |b| b.to_string())
            ));
        }
    }
    for (t, want) in &target.tunables {
        let got = observed.tunables.get(t);
        if got != Some(want) {
            parts.push(format!(
                "tunable {t}: want {want}, observed {}",
                got.map_or("unset".to_owned(), |v| v.to_string())
            ));
        }
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// Tunables as observed: absent is none; present, they must decode (integers or strings), so
/// what the Wanderer thinks is installed never silently drifts from what is.
fn decode_tunables(value: &serde_json::Value) -> Result<BTreeMap<String, TunableValue>, String> {
    if value.is_null() {
        return Ok(BTreeMap::new());
    }
    serde_json::from_value(value.clone()).map_err(|e| format!("tunables: {e}"))
}

/// Calls `done` every `every` until it answers true, for at most `timeout`: the settle loop of
/// both appliers.
async fn poll_until<F, Fut>(
    timeout: Duration,
    every: Duration,
    mut done: F,
) -> Result<(), ApplyError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<bool, ApplyError>>,
{
    let start = Instant::now();
    loop {
        if done().await? {
            return Ok(());
        }
        if start.elapsed() > timeout {
            return Err(ApplyError::Timeout(timeout));
        }
        tokio::time::sleep(every).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observed_tunables_decode_or_fail_never_vanish() {
        assert_eq!(
            decode_tunables(&serde_json::Value::Null),
            Ok(BTreeMap::new())
        );
        let ok = serde_json::json!({"wait": 500, "logLevel": "debug"});
        assert_eq!(decode_tunables(&ok).unwrap().len(), 2);
        assert_eq!(
            decode_tunables(&serde_json::json!(["wait"])).unwrap_err(),
            "tunables: invalid type: sequence, expected a map"
        );
        assert!(decode_tunables(&serde_json::json!({"wait": 1.5})).is_err());
    }

    #[test]
    fn the_difference_names_each_field_that_differs() {
        let mut want = Install {
            version: "1.59.0".into(),
            ..Install::default()
        };
        want.feature_gates.insert("A".into(), true);
        want.tunables.insert("wait".into(), TunableValue::Int(500));
        assert_eq!(difference(&want, &want), None);
        let mut seen = want.clone();
        seen.version = "1.58.0".into();
        seen.feature_gates.insert("A".into(), false);
        seen.tunables.clear();
        assert_eq!(
            difference(&want, &seen).unwrap(),
            "version: want 1.59.0, observed 1.58.0; gate A: want true, observed false; tunable wait: want 500, observed unset"
        );
    }
}
