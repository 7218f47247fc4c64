//! The fake `helm` the helm applier's tests run (helm cannot run here: no cluster). The test
//! writes the script (`fake_helm.py`, a model of helm's documented CLI and release storage,
//! see its header) into a temporary directory with the simulator's URL, so the installs land
//! on a real simulator.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// A fake helm installed in a directory: its executable, state and call log.
pub struct FakeHelm {
    /// The executable to configure as `helm`.
    pub path: PathBuf,
    /// Its state directory (`releases.json`, `calls.log`, `mode`, pid files).
    pub state: PathBuf,
}

impl FakeHelm {
    /// Writes the fake into `dir` for the simulator at `sim`; `tunables` maps chart paths to
    /// the simulator's tunable names.
    pub fn new(dir: &Path, sim: &str, tunables: &[(&str, &str)]) -> FakeHelm {
        let state = dir.join("fake-helm");
        std::fs::create_dir_all(&state).unwrap();
        let map: serde_json::Map<String, serde_json::Value> = tunables
            .iter()
            .map(|(p, n)| (p.to_string(), serde_json::Value::from(*n)))
            .collect();
        let script = format!(
            "#!/usr/bin/env python3\n{}",
            include_str!("fake_helm.py")
                .replace("@STATE@", &state.display().to_string())
                .replace("@SIM@", sim)
                .replace("@TUNABLES@", &serde_json::Value::Object(map).to_string())
        );
        let path = dir.join("helm");
        std::fs::write(&path, script).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        FakeHelm { path, state }
    }

    /// How the next upgrades behave: `ok`, `hang`, `ignore-term`, `slow SECONDS`, `fail`.
    pub fn set_mode(&self, mode: &str) {
        std::fs::write(self.state.join("mode"), mode).unwrap();
    }

    /// How long each rollback waits before it is done (`None`: at once); past helm's
    /// `--timeout` the rollback fails, and killed meanwhile it stays `pending-rollback`.
    pub fn set_rollback_delay(&self, delay: Option<std::time::Duration>) {
        let path = self.state.join("rollback-delay");
        match delay {
            Some(d) => std::fs::write(path, d.as_secs_f64().to_string()).unwrap(),
            None => {
                let _ = std::fs::remove_file(path);
            }
        }
    }

    /// `(revision, status, chart)` of every revision, oldest first.
    pub fn history(&self) -> Vec<(u64, String, String)> {
        self.revisions()
            .iter()
            .map(|r| {
                (
                    r["revision"].as_u64().unwrap(),
                    r["status"].as_str().unwrap().to_owned(),
                    r["chart"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    /// Every call so far, one line of arguments each.
    pub fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.state.join("calls.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// The revisions as the fake stores them (`revision`, `status`, `chart`, `config`).
    pub fn revisions(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.state.join("releases.json"))
            .map(|t| serde_json::from_str(&t).unwrap())
            .unwrap_or_default()
    }

    /// The pid a file of the fake's state holds (`upgrade.pid`, `child.pid`).
    pub fn pid(&self, file: &str) -> Option<u32> {
        std::fs::read_to_string(self.state.join(file))
            .ok()
            .and_then(|t| t.trim().parse().ok())
    }

    /// The arguments of a person's `helm upgrade --install` of Agones `version` into
    /// `agones-system`, with the values file `values` when given.
    pub fn upgrade_args(version: &str, values: Option<&Path>) -> Vec<String> {
        let mut args: Vec<String> = [
            "upgrade",
            "--install",
            "agones",
            "agones/agones",
            "--version",
        ]
        .map(str::to_owned)
        .to_vec();
        args.extend([
            version.to_owned(),
            "--namespace".into(),
            "agones-system".into(),
        ]);
        if let Some(v) = values {
            args.extend(["-f".into(), v.display().to_string()]);
        }
        args.extend(["--wait", "--timeout", "60s"].map(str::to_owned));
        args
    }

    /// Installs Agones `version` as a person would, before the test's applier runs (revision 1
    /// on a fresh fake); a failed install fails the test with helm's stderr.
    pub fn seed(&self, version: &str, values: Option<&Path>) {
        let out = std::process::Command::new(&self.path)
            .args(FakeHelm::upgrade_args(version, values))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "seeding {version}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Runs the fake directly, as a person would: its status.
    pub fn run(&self, args: &[&str]) -> std::process::Output {
        std::process::Command::new(&self.path)
            .args(args)
            .output()
            .unwrap()
    }
}

/// Whether process `pid` is gone (or a zombie nobody reaped yet, which runs nothing).
pub fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}
