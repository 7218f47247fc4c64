//! `helm upgrade --install` of the Agones chart, keeping the user's install values, surviving
//! helm's failures, and observing what the release holds.
//!
//! Helm facts this relies on (helm.sh docs, `helm upgrade`, `helm list`, `helm rollback`):
//! - `helm upgrade` with any values supplied starts again from the chart's defaults unless
//!   `--reuse-values` or `--reset-then-reuse-values` (Helm ≥ 3.14) is passed; Agones says so too
//!   ("`helm upgrade` overwrites all `--set agones.*` arguments", `site/content/en/docs/
//!   Installation/upgrading.md`). So the user's values files go first, and starting without
//!   either them or a reuse flag is refused (see `config.rs`).
//! - A release whose helm process died mid-operation stays `pending-install`/`pending-upgrade`/
//!   `pending-rollback`; `helm list` hides it without `--all`; every later upgrade fails with
//!   "another operation (install/upgrade/rollback) is in progress" until it is rolled back.
//!   `helm status -o json` shows it (`info.status`).
//! - `--atomic` rolls a failed or timed-out upgrade back itself, as a new revision that waits
//!   up to `--timeout` again (`pkg/action/upgrade.go` `failRelease`), and implies `--wait`
//!   (`u.Wait = u.Wait || u.Atomic`). With `wait` off neither is passed: helm returns once the
//!   objects are applied, and the Wanderer's rollout guard (`rollout.rs`) checks the images and
//!   readiness itself; a cluster without LoadBalancer ingress then still transitions.
//! - `--reuse-values` renders the new chart with the OLD chart's coalesced values
//!   (`reuseValues`: `chart.Values = oldVals`), `agones.image.tag` included: a version change
//!   under it runs the old images. So a transition that changes the version under `reuse` is
//!   refused (and a space with several versions is refused at start, `sidecar.rs`).

pub mod history;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use upsoak_agones::release::{Install, TunableValue, parse_query};

use super::process;
use super::{Applier, ApplyError, Recovery};
pub use crate::wanderer::space::{ChartValue, ValueFormat};

/// How long a read-only helm call (`status`, `get values`) may take.
const READ_DEADLINE: Duration = Duration::from_secs(60);
/// The start of an observed tunable whose chart paths disagree.
pub const MIXED: &str = "mixed: ";
/// How often a pending release is looked at while waited for.
const PENDING_POLL: Duration = Duration::from_millis(500);

/// Which of the last release's values an upgrade keeps: helm's flags.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum ReuseValues {
    /// `--reset-then-reuse-values` (Helm ≥ 3.14): the new chart's defaults, then the last
    /// release's user values, then the values files.
    ResetThenReuse,
    /// `--reuse-values`: the last release's values (the old chart's defaults included), then
    /// the values files.
    Reuse,
    /// No flag: only the values files (and the chart's defaults) count.
    None,
}

impl ReuseValues {
    /// The helm flag, if any.
    pub fn flag(self) -> Option<&'static str> {
        match self {
            ReuseValues::ResetThenReuse => Some("--reset-then-reuse-values"),
            ReuseValues::Reuse => Some("--reuse-values"),
            ReuseValues::None => None,
        }
    }
}

/// What to do with a release still `pending-*` after the wait.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OnStuck {
    /// `helm rollback` to the revision before the stuck one, then walk on.
    Rollback,
    /// Stop the Wanderer (the Producer keeps going) and leave the release to a person.
    Fail,
}

impl OnStuck {
    pub fn as_str(self) -> &'static str {
        match self {
            OnStuck::Rollback => "rollback",
            OnStuck::Fail => "fail",
        }
    }
}

/// A release as `helm status -o json` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReleaseStatus {
    /// `info.status`: deployed, failed, pending-upgrade, …
    pub status: String,
    /// `version`: the revision.
    pub revision: u64,
    /// `chart.metadata.version`.
    pub chart_version: String,
}

/// `helm upgrade --install` of the Agones chart: the user's values files, then a generated
/// one with the gates and tunables at their chart paths.
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
    /// helm's own `--timeout` (upgrade and rollback `--wait`).
    pub timeout: Duration,
    /// Past this, a helm upgrade is stopped (its process group: TERM, then KILL).
    pub kill_after: Duration,
    /// Between TERM and KILL.
    pub kill_grace: Duration,
    /// Where the generated values file is written.
    pub values_dir: PathBuf,
    /// The user's values files, passed before the generated one, in order.
    pub values_files: Vec<PathBuf>,
    /// Which of the last release's values an upgrade keeps.
    pub reuse_values: ReuseValues,
    /// What to do with a release left pending.
    pub on_stuck: OnStuck,
    /// How long a pending release is waited for before `on_stuck` applies.
    pub stuck_wait: Duration,
    /// `--atomic --wait` on upgrades (and `--wait` on rollbacks); off, helm returns once the
    /// objects are applied and the rollout guard alone judges readiness.
    pub wait: bool,
    /// Where each tunable goes in the chart's values, and in what format.
    pub tunables: BTreeMap<String, ChartValue>,
    /// Versions whose chart is not `chart` (a local path or an `oci://` reference), by name.
    pub charts: BTreeMap<String, String>,
    /// Versions whose images' tag is not their name (a dev build), by name: written to
    /// `agones.image.tag`.
    pub image_tags: BTreeMap<String, String>,
}

impl HelmApplier {
    /// An applier with the configuration's defaults (see `config.rs`), user values reused.
    pub fn new(helm: PathBuf, values_dir: PathBuf) -> HelmApplier {
        HelmApplier {
            helm,
            release: "agones".into(),
            chart: "agones/agones".into(),
            namespace: "agones-system".into(),
            timeout: Duration::from_secs(600),
            kill_after: Duration::from_secs(660),
            kill_grace: Duration::from_secs(10),
            values_dir,
            values_files: Vec::new(),
            reuse_values: ReuseValues::ResetThenReuse,
            on_stuck: OnStuck::Rollback,
            stuck_wait: Duration::from_secs(300),
            wait: true,
            tunables: BTreeMap::new(),
            charts: BTreeMap::new(),
            image_tags: BTreeMap::new(),
        }
    }

    /// The chart `version` is installed from: its own (a local path or an `oci://` reference)
    /// when the space names one, else the applier's. helm ignores `--version` for a local path
    /// (`pkg/action/install.go`, `ChartPathOptions.LocateChart`) and reads it as the tag of an
    /// `oci://` reference.
    pub fn chart_for(&self, version: &str) -> &str {
        self.charts.get(version).unwrap_or(&self.chart)
    }

    /// The generated values file for `target`: `agones.featureGates` as Helm's query string
    /// (the chart passes it to `FEATURE_GATES`, `templates/controller.yaml`), and each tunable
    /// at every chart path the space names, in its format.
    pub fn values_yaml(&self, target: &Install) -> Result<String, ApplyError> {
        let mut root = serde_json::json!({"agones": {"featureGates": target.gate_query()}});
        if let Some(tag) = self.image_tags.get(&target.version) {
            set_path(&mut root, "agones.image.tag", Value::from(tag.as_str()));
        }
        for (name, value) in &target.tunables {
            let chart = self
                .tunables
                .get(name)
                .ok_or_else(|| ApplyError::Unexpected {
                    what: "the space".into(),
                    detail: format!("tunable `{name}` has no `chart` path for the helm applier"),
                })?;
            let v = chart
                .format
                .encode(value)
                .map_err(|e| ApplyError::Unexpected {
                    what: "the space".into(),
                    detail: format!("tunable `{name}`: {e}"),
                })?;
            for path in &chart.paths {
                set_path(&mut root, path, v.clone());
            }
        }
        let yaml = serde_yaml::to_string(&root).map_err(|e| ApplyError::Unexpected {
            what: "the generated values".into(),
            detail: e.to_string(),
        })?;
        Ok(format!(
            "# generated by upsoak-chaos for Agones {}\n{yaml}",
            target.version
        ))
    }

    /// The arguments of `helm upgrade --install` for `target` with the generated `values`.
    pub fn upgrade_args(&self, target: &Install, values: &Path) -> Vec<String> {
        let mut args: Vec<String> = vec![
            "upgrade".into(),
            "--install".into(),
            self.release.clone(),
            self.chart_for(&target.version).to_owned(),
            "--version".into(),
            target.version.clone(),
            "--namespace".into(),
            self.namespace.clone(),
        ];
        for file in &self.values_files {
            args.push("-f".into());
            args.push(file.display().to_string());
        }
        args.extend(["-f".into(), values.display().to_string()]);
        if let Some(flag) = self.reuse_values.flag() {
            args.push(flag.into());
        }
        if self.wait {
            args.extend(["--atomic".into(), "--wait".into()]);
        }
        args.extend(["--timeout".into(), helm_duration(self.timeout)]);
        args
    }

    /// The user's values files that pin `agones.image.tag`, each as a warning: the tag then
    /// stays whatever the version walked to, so every version change runs those images.
    pub fn image_tag_warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        for file in &self.values_files {
            let Ok(text) = std::fs::read_to_string(file) else {
                continue;
            };
            let Ok(doc) = serde_yaml::from_str::<Value>(&text) else {
                continue;
            };
            if let Some(tag) = get_path(&doc, "agones.image.tag") {
                let tag = tag.as_str().map_or_else(|| tag.to_string(), str::to_owned);
                out.push(format!(
                    "{}: agones.image.tag is set ({tag}): every version the walk installs runs those images, and the rollout check will fail each version change; remove it, or give each version its image tag in the space",
                    file.display()
                ));
            }
        }
        out
    }

    /// `helm history REL -o json`: every revision, oldest first.
    pub async fn history(&self) -> Result<Vec<history::Revision>, ApplyError> {
        let mut args = vec!["history".into(), self.release.clone()];
        args.extend(self.ns_args());
        args.extend(["-o".into(), "json".into()]);
        let out = self.helm(&args, READ_DEADLINE).await?;
        history::parse(&out).map_err(|e| unexpected("helm history", e))
    }

    fn ns_args(&self) -> [String; 2] {
        ["--namespace".into(), self.namespace.clone()]
    }

    /// Runs helm with `args` under `deadline`; its stdout, or why it failed.
    async fn helm(&self, args: &[String], deadline: Duration) -> Result<String, ApplyError> {
        let what = format!("helm {}", args.first().cloned().unwrap_or_default());
        let out = process::run(&self.helm, args, &what, deadline, self.kill_grace).await?;
        if !out.status.success() {
            return Err(ApplyError::Command {
                command: what,
                status: out.status.to_string(),
                stderr: out.stderr.trim().to_owned(),
            });
        }
        Ok(out.stdout)
    }

    /// `helm status REL -o json`: the release, or `None` when it is not installed.
    pub async fn status(&self) -> Result<Option<ReleaseStatus>, ApplyError> {
        let mut args = vec!["status".into(), self.release.clone()];
        args.extend(self.ns_args());
        args.extend(["-o".into(), "json".into()]);
        let out = match self.helm(&args, READ_DEADLINE).await {
            Ok(out) => out,
            // helm's words for a release that does not exist (pkg/storage/driver: ErrReleaseNotFound).
            Err(ApplyError::Command { stderr, .. }) if stderr.contains("not found") => {
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let doc: Value = serde_json::from_str(&out).map_err(|e| unexpected("helm status", e))?;
        let field = |v: &Value, name: &str| {
            v.as_str()
                .map(str::to_owned)
                .ok_or_else(|| unexpected("helm status", format!("no `{name}` string")))
        };
        Ok(Some(ReleaseStatus {
            status: field(&doc["info"]["status"], "info.status")?,
            revision: doc["version"]
                .as_u64()
                .ok_or_else(|| unexpected("helm status", "no `version` revision number"))?,
            chart_version: field(
                &doc["chart"]["metadata"]["version"],
                "chart.metadata.version",
            )?,
        }))
    }

    /// `helm get values REL --all -o json`: the values the release runs with, the chart's
    /// defaults under the user's and ours. A tunable nobody set is observed at the chart's
    /// default (`allocationBatchWaitTime: 500ms` in `install/helm/agones/values.yaml`), so the
    /// first steady window's configuration names the batch wait it ran at.
    pub async fn values(&self) -> Result<Value, ApplyError> {
        let mut args = vec!["get".into(), "values".into(), self.release.clone()];
        args.extend(self.ns_args());
        args.extend(["--all".into(), "-o".into(), "json".into()]);
        let out = self.helm(&args, READ_DEADLINE).await?;
        serde_json::from_str(&out).map_err(|e| unexpected("helm get values", e))
    }

    /// Applies `on_stuck` to a release pending since `since` (revision `st.revision`).
    async fn unstick(&self, st: &ReleaseStatus, waited: Duration) -> Result<Recovery, ApplyError> {
        let stuck = |detail: String| ApplyError::Stuck {
            release: self.release.clone(),
            policy: self.on_stuck.as_str(),
            status: st.status.clone(),
            revision: st.revision,
            waited,
            detail,
        };
        // The last good revision, as helm's failRelease picks it: never `revision − 1` blindly
        // (after a killed --atomic upgrade that is the failed upgrade).
        let history = self
            .history()
            .await
            .map_err(|e| stuck(format!("cannot read the release's history: {e}")))?;
        let target = history::rollback_target(&history, st.revision).map(|r| r.revision);
        if self.on_stuck == OnStuck::Fail {
            let how = match target {
                Some(to) => format!(
                    "`helm rollback {} {to} --namespace {}`",
                    self.release, self.namespace
                ),
                None => "`helm history`, then `helm rollback`".into(),
            };
            return Err(stuck(format!(
                "on_stuck is `fail`: recover it by hand ({how}, or `helm uninstall` for a pending install)"
            )));
        }
        let Some(previous) = target.filter(|_| st.status != "pending-install") else {
            return Err(stuck(
                "nothing to roll back to (a first install, or no deployed or superseded revision below it): `helm uninstall` it by hand".into(),
            ));
        };
        let mut args = vec![
            "rollback".into(),
            self.release.clone(),
            previous.to_string(),
        ];
        args.extend(self.ns_args());
        if self.wait {
            args.push("--wait".into());
        }
        args.extend(["--timeout".into(), helm_duration(self.timeout)]);
        self.helm(&args, self.kill_after)
            .await
            .map_err(|e| stuck(format!("rollback to revision {previous} failed: {e}")))?;
        Ok(Recovery {
            status: st.status.clone(),
            revision: st.revision,
            policy: self.on_stuck.as_str(),
            result: "rolled_back",
            waited,
            detail: format!("rolled back to revision {previous}"),
        })
    }

    /// Reads tunables back from `values` at every chart path. Paths that disagree (a value set
    /// on one component only, as Agones' own upgrade test sets `agones.controller.logLevel:
    /// debug`) are observed as an off-space value naming each path's value, `mixed:
    /// PATH=VALUE, …`, first path first: the walk goes on from the start's value for it
    /// (`walk.rs` `state_of`) and the next apply writes every path, which corrects it.
    fn observed_tunables(&self, values: &Value) -> Result<BTreeMap<String, TunableValue>, String> {
        let mut out = BTreeMap::new();
        for (name, chart) in &self.tunables {
            let mut seen: Vec<(&str, TunableValue)> = Vec::new();
            for path in &chart.paths {
                let Some(v) = get_path(values, path) else {
                    continue;
                };
                let v = chart.format.decode(v).map_err(|e| format!("{path}: {e}"))?;
                seen.push((path, v));
            }
            let Some((_, first)) = seen.first() else {
                continue;
            };
            if seen.iter().all(|(_, v)| v == first) {
                out.insert(name.clone(), first.clone());
            } else {
                let parts: Vec<String> = seen.iter().map(|(p, v)| format!("{p}={v}")).collect();
                out.insert(
                    name.clone(),
                    TunableValue::Str(format!("{MIXED}{}", parts.join(", "))),
                );
            }
        }
        Ok(out)
    }
}

impl Applier for HelmApplier {
    async fn apply(&self, target: &Install) -> Result<(), ApplyError> {
        if self.reuse_values == ReuseValues::Reuse
            && let Some(st) = self.status().await?
            && st.chart_version != target.version
        {
            return Err(ApplyError::Rejected(format!(
                "`reuse_values: reuse` (--reuse-values) keeps the old chart's values, agones.image.tag included, so {} → {} would run {} images under {} templates (helm's pkg/action/upgrade.go reuseValues); use `reuse_values: reset-then-reuse` (helm ≥ 3.14; upgrade helm) or `none` with your values files",
                st.chart_version, target.version, st.chart_version, target.version
            )));
        }
        let values = self.values_dir.join("agones-values.yaml");
        let text = self.values_yaml(target)?;
        upsoak_common::state::write_atomic(&values, text.as_bytes())
            .map_err(|e| ApplyError::Write(values.clone(), e))?;
        self.helm(&self.upgrade_args(target, &values), self.kill_after)
            .await
            .map(|_| ())
    }

    async fn settle(&self) -> Result<Option<Recovery>, ApplyError> {
        let start = Instant::now();
        let mut first: Option<ReleaseStatus> = None;
        loop {
            let st = self.status().await?;
            match (st, &first) {
                (Some(st), _) if st.status.starts_with("pending") => {
                    if start.elapsed() >= self.stuck_wait {
                        return self.unstick(&st, start.elapsed()).await.map(Some);
                    }
                    first.get_or_insert(st);
                }
                // Pending when first seen, then finished on its own while waited for.
                (_, Some(was)) => {
                    return Ok(Some(Recovery {
                        status: was.status.clone(),
                        revision: was.revision,
                        policy: self.on_stuck.as_str(),
                        result: "cleared",
                        waited: start.elapsed(),
                        detail: "it finished on its own while waited for".into(),
                    }));
                }
                (_, None) => return Ok(None),
            }
            tokio::time::sleep(PENDING_POLL).await;
        }
    }

    async fn observe_installed(&self) -> Result<Install, ApplyError> {
        let st = self.status().await?.ok_or_else(|| {
            unexpected(
                "helm status",
                format!(
                    "release `{}` is not installed in `{}`",
                    self.release, self.namespace
                ),
            )
        })?;
        if st.status != "deployed" {
            return Err(unexpected(
                "helm status",
                format!(
                    "release `{}` revision {} is `{}`, not deployed",
                    self.release, st.revision, st.status
                ),
            ));
        }
        let values = self.values().await?;
        // Absent means no overrides; anything else must parse, strictly, as the sim's does.
        let feature_gates = match &values["agones"]["featureGates"] {
            Value::Null => BTreeMap::new(),
            Value::String(q) => parse_query(q)
                .map_err(|e| unexpected("helm get values", format!("agones.featureGates: {e}")))?,
            other => {
                return Err(unexpected(
                    "helm get values",
                    format!("agones.featureGates: expected a string, got {other}"),
                ));
            }
        };
        let tunables = self
            .observed_tunables(&values)
            .map_err(|e| unexpected("helm get values", e))?;
        Ok(Install {
            version: st.chart_version,
            feature_gates,
            tunables,
        })
    }

    fn name(&self) -> &'static str {
        "helm"
    }
}

fn unexpected(what: &str, detail: impl ToString) -> ApplyError {
    ApplyError::Unexpected {
        what: what.into(),
        detail: detail.to_string(),
    }
}

/// A duration as helm's `--timeout` takes it (Go's `time.ParseDuration`): whole seconds, or
/// milliseconds below one second.
pub fn helm_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 && d.as_secs() > 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// Sets `root.a.b.c` (dotted `path`) to `v`, creating the maps on the way.
fn set_path(root: &mut Value, path: &str, v: Value) {
    let mut at = root;
    for key in path.split('.') {
        if !at.is_object() {
            *at = Value::Object(serde_json::Map::new());
        }
        let Value::Object(map) = at else { return };
        at = map.entry(key.to_owned()).or_insert(Value::Null);
    }
    *at = v;
}

/// `root.a.b.c` at a dotted `path`, if present and not null.
fn get_path<'a>(root: &'a Value, path: &str) -> Option<&'a Value> {
    let mut at = root;
    for key in path.split('.') {
        at = at.get(key)?;
    }
    (!at.is_null()).then_some(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_set_and_read_back() {
        let mut root = serde_json::json!({"agones": {"featureGates": "A=true"}});
        set_path(
            &mut root,
            "agones.allocator.allocationBatchWaitTime",
            "500ms".into(),
        );
        set_path(&mut root, "agones.controller.logLevel", "debug".into());
        assert_eq!(
            root,
            serde_json::json!({"agones": {"featureGates": "A=true",
                "allocator": {"allocationBatchWaitTime": "500ms"},
                "controller": {"logLevel": "debug"}}})
        );
        assert_eq!(
            get_path(&root, "agones.controller.logLevel"),
            Some(&Value::from("debug"))
        );
        assert_eq!(get_path(&root, "agones.nope.x"), None);
        assert_eq!(helm_duration(Duration::from_secs(600)), "600s");
        assert_eq!(helm_duration(Duration::from_millis(1500)), "1500ms");
    }

    #[test]
    fn a_tunable_set_by_hand_off_the_step_grid_is_read_as_what_it_is() {
        let space = crate::wanderer::space::Space::parse(
            include_str!("../../../../spaces/agones.yaml"),
            "agones.yaml",
        )
        .unwrap();
        let mut a = HelmApplier::new("helm".into(), std::env::temp_dir());
        a.tunables = space.chart.clone();
        // 450 ms is between the grid's 400 and 500; Go spells it either way.
        let values = serde_json::json!({"agones": {
            "allocator": {"allocationBatchWaitTime": "450ms", "replicas": 3},
            "extensions": {"allocationBatchWaitTime": "0.45s"},
        }});
        let seen = a.observed_tunables(&values).unwrap();
        assert_eq!(seen["allocationBatchWaitTime"], TunableValue::Int(450));
        let why = space.tunables["allocationBatchWaitTime"]
            .problem(&seen["allocationBatchWaitTime"])
            .unwrap();
        assert!(why.contains("off the step grid"), "{why}");
        let mut want = Install {
            version: "1.60.0".into(),
            ..Install::default()
        };
        want.tunables
            .insert("allocationBatchWaitTime".into(), TunableValue::Int(500));
        let got = Install {
            tunables: seen,
            ..want.clone()
        };
        assert_eq!(
            super::super::difference(&want, &got).as_deref(),
            Some("tunable allocationBatchWaitTime: want 500, observed 450")
        );
        let values = serde_json::json!({"agones": {
            "allocator": {"allocationBatchWaitTime": "450ms"},
            "controller": {"allocationBatchWaitTime": "1.5s"},
        }});
        // Paths that disagree are an off-space value naming each, never an error.
        let mixed = TunableValue::Str(
            "mixed: agones.allocator.allocationBatchWaitTime=450, agones.controller.allocationBatchWaitTime=1500".into(),
        );
        assert_eq!(
            a.observed_tunables(&values).unwrap()["allocationBatchWaitTime"],
            mixed
        );
        assert!(
            space.tunables["allocationBatchWaitTime"]
                .problem(&mixed)
                .is_some()
        );
    }
}
