//! Appliers: how the Wanderer installs a configuration, and how it then observes what is
//! really installed. One trait, two implementations: the simulator's control endpoint and
//! `helm upgrade --install`. The recorded outcome is always the observed one.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use upsoak_agones::release::{Install, TunableValue, parse_query};

/// Why an apply or an observation failed.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("the install was rejected: {0}")]
    Rejected(String),
    #[error("cannot reach `{0}`")]
    Unreachable(String, #[source] reqwest::Error),
    #[error("the install did not finish within {0:?}")]
    Timeout(Duration),
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
}

impl ApplyError {
    /// A bounded label value: the `kind` of `upsoak_wanderer_transitions_total`.
    pub fn kind(&self) -> &'static str {
        match self {
            ApplyError::Rejected(_) => "rejected",
            ApplyError::Unreachable(..) => "unreachable",
            ApplyError::Timeout(_) => "timeout",
            ApplyError::Command { .. } => "command_failed",
            ApplyError::Spawn(..) => "spawn_failed",
            ApplyError::Unexpected { .. } => "unexpected",
            ApplyError::Write(..) => "write_failed",
        }
    }
}

/// Installs configurations and reports what is installed.
#[allow(async_fn_in_trait)]
pub trait Applier {
    /// Installs `target` and waits until the install has finished (or failed).
    async fn apply(&self, target: &Install) -> Result<(), ApplyError>;
    /// What is installed now.
    async fn observe_installed(&self) -> Result<Install, ApplyError>;
    /// Waits until no install is in progress (one a crashed run may have left going), so an
    /// observation is of a settled system. Bounded by the applier's timeout.
    async fn settle(&self) -> Result<(), ApplyError>;
    /// A short name for logs and metrics.
    fn name(&self) -> &'static str;
}

/// The simulator's control endpoint: `POST /upsoak/v1/install`, `GET /upsoak/v1/installed`.
#[derive(Clone, Debug)]
pub struct SimApplier {
    /// The simulator's base URL, without a trailing `/`.
    pub url: String,
    /// The HTTP client, reused across calls.
    pub http: reqwest::Client,
    /// How long to wait for the upgrade window to close.
    pub timeout: Duration,
}

impl SimApplier {
    pub fn new(url: &str, timeout: Duration) -> SimApplier {
        SimApplier {
            url: url.trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
            timeout,
        }
    }

    async fn installed(&self) -> Result<serde_json::Value, ApplyError> {
        let url = format!("{}/upsoak/v1/installed", self.url);
        let r = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| ApplyError::Unreachable(url.clone(), e))?;
        r.json()
            .await
            .map_err(|e| ApplyError::Unreachable(url.clone(), e))
    }
}

impl Applier for SimApplier {
    async fn apply(&self, target: &Install) -> Result<(), ApplyError> {
        let url = format!("{}/upsoak/v1/install", self.url);
        let r = self
            .http
            .post(&url)
            .json(target)
            .send()
            .await
            .map_err(|e| ApplyError::Unreachable(url.clone(), e))?;
        if !r.status().is_success() {
            let text = r.text().await.unwrap_or_default();
            let status: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
            let msg = status["message"].as_str().unwrap_or(&text).to_owned();
            return Err(ApplyError::Rejected(msg));
        }
        self.settle().await
    }

    async fn settle(&self) -> Result<(), ApplyError> {
        poll_until(self.timeout, Duration::from_millis(100), || async {
            Ok(self.installed().await?["upgrading"].is_null())
        })
        .await
    }

    async fn observe_installed(&self) -> Result<Install, ApplyError> {
        let doc = self.installed().await?;
        let unexpected = |detail: &str| ApplyError::Unexpected {
            what: format!("{}/upsoak/v1/installed", self.url),
            detail: detail.to_owned(),
        };
        let version = doc["version"]
            .as_str()
            .ok_or_else(|| unexpected("no `version`"))?
            .to_owned();
        let feature_gates: BTreeMap<String, bool> =
            serde_json::from_value(doc["gates"].clone()).map_err(|e| unexpected(&e.to_string()))?;
        let tunables = decode_tunables(&doc["tunables"]).map_err(|e| unexpected(&e))?;
        Ok(Install {
            version,
            feature_gates,
            tunables,
        })
    }

    fn name(&self) -> &'static str {
        "sim"
    }
}

/// `helm upgrade --install` of the Agones chart, gates in a generated values file.
#[derive(Clone, Debug)]
pub struct HelmApplier {
    /// The helm executable.
    pub helm: PathBuf,
    /// The Helm release name.
    pub release: String,
    /// The chart, `REPO/NAME`.
    pub chart: String,
    /// The namespace Agones is installed in.
    pub namespace: String,
    /// `--timeout` of helm's own wait.
    pub timeout: Duration,
    /// Where the generated values file is written.
    pub values_dir: PathBuf,
    /// Extra values files the user supplies, applied before the generated one.
    pub extra_values: Vec<PathBuf>,
}

impl HelmApplier {
    /// The values file for `target`: `agones.featureGates` as Helm's query string, plus
    /// tunables under `upsoak.tunables` for charts that map them.
    pub fn values_yaml(target: &Install) -> String {
        let mut out = format!(
            "# generated by upsoak-chaos for Agones {}\nagones:\n  featureGates: \"{}\"\n",
            target.version,
            target.gate_query()
        );
        if !target.tunables.is_empty() {
            out.push_str("upsoak:\n  tunables:\n");
            for (k, v) in &target.tunables {
                // As JSON, which YAML reads back as written: strings quoted, numbers bare.
                let v = match v {
                    TunableValue::Int(i) => i.to_string(),
                    TunableValue::Str(s) => serde_json::Value::from(s.as_str()).to_string(),
                };
                out.push_str(&format!("    {k}: {v}\n"));
            }
        }
        out
    }

    /// The arguments of `helm upgrade --install` for `target` with `values`.
    pub fn upgrade_args(&self, target: &Install, values: &std::path::Path) -> Vec<String> {
        let mut args: Vec<String> = vec![
            "upgrade".into(),
            "--install".into(),
            self.release.clone(),
            self.chart.clone(),
            "--version".into(),
            target.version.clone(),
            "--namespace".into(),
            self.namespace.clone(),
        ];
        for extra in &self.extra_values {
            args.push("-f".into());
            args.push(extra.display().to_string());
        }
        args.extend([
            "-f".into(),
            values.display().to_string(),
            "--atomic".into(),
            "--wait".into(),
            "--timeout".into(),
            format!("{}s", self.timeout.as_secs()),
        ]);
        args
    }

    /// `helm list` of this release, as JSON objects.
    async fn list(&self) -> Result<Vec<serde_json::Value>, ApplyError> {
        let out = self
            .helm(&[
                "list".into(),
                "--namespace".into(),
                self.namespace.clone(),
                "--filter".into(),
                format!("^{}$", self.release),
                "-o".into(),
                "json".into(),
            ])
            .await?;
        serde_json::from_str(&out).map_err(|e| ApplyError::Unexpected {
            what: "helm list".into(),
            detail: e.to_string(),
        })
    }

    async fn helm(&self, args: &[String]) -> Result<String, ApplyError> {
        let out = tokio::process::Command::new(&self.helm)
            .args(args)
            .output()
            .await
            .map_err(|e| ApplyError::Spawn(self.helm.display().to_string(), e))?;
        if !out.status.success() {
            return Err(ApplyError::Command {
                command: format!("helm {}", args.first().cloned().unwrap_or_default()),
                status: out.status.to_string(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Applier for HelmApplier {
    async fn apply(&self, target: &Install) -> Result<(), ApplyError> {
        let values = self.values_dir.join("agones-values.yaml");
        let tmp = self.values_dir.join("agones-values.yaml.tmp");
        std::fs::write(&tmp, Self::values_yaml(target))
            .and_then(|_| std::fs::rename(&tmp, &values))
            .map_err(|e| ApplyError::Write(values.clone(), e))?;
        self.helm(&self.upgrade_args(target, &values))
            .await
            .map(|_| ())
    }

    async fn settle(&self) -> Result<(), ApplyError> {
        // helm marks a release `pending-install`/`pending-upgrade`/`pending-rollback` while an
        // operation holds it.
        poll_until(self.timeout, Duration::from_secs(2), || async {
            let list = self.list().await?;
            Ok(!list.iter().any(|r| {
                r["status"]
                    .as_str()
                    .is_some_and(|s| s.starts_with("pending"))
            }))
        })
        .await
    }

    async fn observe_installed(&self) -> Result<Install, ApplyError> {
        let releases = self.list().await?;
        let unexpected = |detail: String| ApplyError::Unexpected {
            what: "helm list".into(),
            detail,
        };
        let rel = releases
            .iter()
            .find(|r| r["name"] == self.release.as_str())
            .ok_or_else(|| unexpected(format!("release `{}` is not installed", self.release)))?;
        // `chart` is NAME-VERSION, e.g. agones-1.59.0.
        let chart = rel["chart"].as_str().unwrap_or_default();
        let version = chart
            .rsplit_once('-')
            .map(|(_, v)| v.to_owned())
            .ok_or_else(|| unexpected(format!("chart `{chart}` has no version")))?;
        let values = self
            .helm(&[
                "get".into(),
                "values".into(),
                self.release.clone(),
                "--namespace".into(),
                self.namespace.clone(),
                "-o".into(),
                "json".into(),
            ])
            .await?;
        let values: serde_json::Value =
            serde_json::from_str(&values).map_err(|e| unexpected(e.to_string()))?;
        // Absent means no overrides; anything else must parse, strictly, as the sim's does.
        let feature_gates = match &values["agones"]["featureGates"] {
            serde_json::Value::Null => BTreeMap::new(),
            serde_json::Value::String(q) => {
                parse_query(q).map_err(|e| unexpected(format!("agones.featureGates: {e}")))?
            }
            other => {
                return Err(unexpected(format!(
                    "agones.featureGates: expected a string, got {other}"
                )));
            }
        };
        let tunables = decode_tunables(&values["upsoak"]["tunables"])
            .map_err(|e| unexpected(format!("upsoak.{e}")))?;
        Ok(Install {
            version,
            feature_gates,
            tunables,
        })
    }

    fn name(&self) -> &'static str {
        "helm"
    }
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
}
