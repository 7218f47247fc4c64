//! Running a rendered overlay: the simulator, the fake helm, Prometheus, Alertmanager and the
//! upsoak pods as processes; waiting for the judged transitions; the outcome.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use upsoak_testkit::process::Announce;
use upsoak_testkit::{Alertmanager, Proc, Prometheus, bin};

use super::render::{Pod, Rendered, Volume, check_kubectl};
use super::stack::{ALERTMANAGER_PORT, Agones, Cluster, PROMETHEUS_PORT, SIM_PORT, Target};
use super::{Error, Result};

/// What to rehearse.
#[derive(Clone, Debug)]
pub struct Options {
    /// The overlay directory (`deploy/overlays/…`).
    pub overlay: PathBuf,
    /// The repository root (for the simulator's default configuration and the fake helm).
    pub repo: PathBuf,
    /// Where everything is written; must be empty or absent.
    pub work: PathBuf,
    /// Stop once this many transitions are judged in both windows.
    pub transitions: usize,
    /// Duration overrides: (container, `UPSOAK_…` variable, duration).
    pub overrides: Vec<(String, String, String)>,
    /// Allocation failures at this rate while this version is installed.
    pub fault: Option<(String, f64)>,
    /// Give up after this long.
    pub timeout: Duration,
}

/// One judged transition.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Row {
    pub generation: u64,
    pub change: String,
    pub to_version: String,
    pub disruption: String,
    pub steady: String,
    /// `window/group/slo: verdict (reason)` of every SLO that did not pass.
    pub not_passed: Vec<String>,
}

/// What a rehearsal saw, and whether its criteria held.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Outcome {
    pub overlay: String,
    pub target: String,
    pub overrides: Vec<String>,
    pub fault: Option<String>,
    pub notes: Vec<String>,
    pub rows: Vec<Row>,
    /// The criteria that did not hold (empty: the rehearsal passed).
    pub unmet: Vec<String>,
    pub seconds: u64,
}

/// Rewrites container paths and Service DNS names in one pass over a string: each pattern
/// matches only at a word boundary (a path not inside a longer path), longest first, and a
/// replacement is never rewritten again.
pub struct Rewrites(Vec<(String, String)>);

impl Rewrites {
    pub fn apply(&self, s: &str) -> String {
        let mut out = String::with_capacity(s.len());
        let bytes = s.as_bytes();
        let mut i = 0;
        'outer: while i < s.len() {
            for (from, to) in &self.0 {
                // A path starts after a non-path character; a host name may follow `//`.
                let before_ok = i == 0
                    || !is_path_char(bytes[i - 1])
                    || (bytes[i - 1] == b'/' && !from.starts_with('/'));
                if before_ok && s[i..].starts_with(from.as_str()) {
                    let end = i + from.len();
                    let after_ok =
                        end == s.len() || !is_path_char(bytes[end]) || bytes[end] == b'/';
                    if after_ok {
                        out.push_str(to);
                        i = end;
                        continue 'outer;
                    }
                }
            }
            let ch = s[i..].chars().next().unwrap_or(' ');
            out.push(ch);
            i += ch.len_utf8();
        }
        out
    }
}

fn is_path_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'/' | b'.' | b'_' | b'-')
}

fn io(what: &str, p: &Path, e: std::io::Error) -> Error {
    Error::Setup(format!("{what} {}: {e}", p.display()))
}

fn write(p: &Path, text: &str) -> Result<()> {
    if let Some(d) = p.parent() {
        std::fs::create_dir_all(d).map_err(|e| io("cannot create", d, e))?;
    }
    std::fs::write(p, text).map_err(|e| io("cannot write", p, e))
}

/// The path `p` of a container, under `root`.
fn under(root: &Path, p: &str) -> PathBuf {
    root.join(p.trim_start_matches('/'))
}

fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                merge(b.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (b, o) => *b = o.clone(),
    }
}

/// The value after `flag` in `argv` (`--flag v` or `--flag=v`).
fn flag(argv: &[String], flag: &str) -> Option<String> {
    argv.iter().enumerate().find_map(|(i, a)| {
        if a == flag {
            argv.get(i + 1).cloned()
        } else {
            a.strip_prefix(&format!("{flag}=")).map(str::to_owned)
        }
    })
}

/// Prints a line of progress.
fn say(line: impl AsRef<str>) {
    println!("rehearse: {}", line.as_ref());
}

/// The fake helm, written for the simulator (the same script the helm applier's tests run).
fn fake_helm(
    repo: &Path,
    bin_dir: &Path,
    state: &Path,
    sim: &str,
    tunables: &Value,
) -> Result<PathBuf> {
    let src = repo.join("chaos/tests/common/fake_helm.py");
    let text = std::fs::read_to_string(&src).map_err(|e| io("cannot read", &src, e))?;
    let script = format!(
        "#!/usr/bin/env python3\n{}",
        text.replace("@STATE@", &state.display().to_string())
            .replace("@SIM@", sim)
            .replace("@TUNABLES@", &tunables.to_string())
    );
    std::fs::create_dir_all(state).map_err(|e| io("cannot create", state, e))?;
    let path = bin_dir.join("helm");
    write(&path, &script)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| io("cannot chmod", &path, e))?;
    Ok(path)
}

/// The verdict of a window (`""` before it is judged).
fn verdict(w: &Value) -> String {
    w["verdict"].as_str().unwrap_or("").to_owned()
}

/// `window/slo: verdict (reason)` for every SLO of `w` that did not pass.
fn not_passed(window: &str, w: &Value) -> Vec<String> {
    w["slos"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, s)| s["evidence"]["verdict"] != "pass")
        .map(|(k, s)| {
            format!(
                "{window}/{k}: {} ({})",
                s["evidence"]["verdict"].as_str().unwrap_or("?"),
                s["evidence"]["reason"].as_str().unwrap_or("")
            )
        })
        .collect()
}

/// How a transition reads, in the one notation of every report (`common::change::describe`).
fn change(t: &Value) -> String {
    let map = |v: &Value| -> BTreeMap<String, String> {
        v.as_object()
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
            .collect()
    };
    upsoak_common::change::describe(&map(&t["from"]), &map(&t["to"]))
}

/// A duration override is a duration: the one thing a rehearsal may change.
pub fn parse_override(s: &str) -> Result<(String, String, String)> {
    let bad = |why: &str| {
        Error::Input(format!(
            "--set `{s}`: {why} (CONTAINER:UPSOAK_NAME=DURATION)"
        ))
    };
    let (container, rest) = s.split_once(':').ok_or_else(|| bad("no container"))?;
    let (key, value) = rest.split_once('=').ok_or_else(|| bad("no `=`"))?;
    if !key.starts_with("UPSOAK_") {
        return Err(bad("only UPSOAK_… variables may be overridden"));
    }
    humantime::parse_duration(value)
        .map_err(|e| bad(&format!("`{value}` is not a duration: {e}")))?;
    Ok((container.to_owned(), key.to_owned(), value.to_owned()))
}

/// Runs the rehearsal.
pub async fn rehearse(o: &Options) -> Result<Outcome> {
    let started = Instant::now();
    // The processes run in the root: every path they are given must be absolute.
    let absolute = |p: &Path| {
        std::path::absolute(p).map_err(|e| Error::Input(format!("{}: {e}", p.display())))
    };
    let o = &Options {
        overlay: absolute(&o.overlay)?,
        repo: absolute(&o.repo)?,
        work: absolute(&o.work)?,
        ..o.clone()
    };
    check_kubectl()?;
    let rendered = Rendered::kustomize(&o.overlay)?;
    let target = Target::of(&rendered);
    let pods = rendered.pods()?;
    say(format!(
        "{}: {} objects, {:?} stack, pods {}",
        o.overlay.display(),
        rendered.objects.len(),
        target,
        pods.iter()
            .map(|p| p.deployment.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    if o.work.exists()
        && std::fs::read_dir(&o.work)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        return Err(Error::Input(format!("{} is not empty", o.work.display())));
    }
    let root = o.work.join("fs");
    let bin_dir = o.work.join("bin");
    for d in [&root, &bin_dir] {
        std::fs::create_dir_all(d).map_err(|e| io("cannot create", d, e))?;
    }
    let sim_url = format!("http://127.0.0.1:{SIM_PORT}");

    // The sidecar's configuration says where Agones is and how it was installed.
    let chaos = pods
        .iter()
        .flat_map(|p| p.containers.iter().map(move |c| (p, c)))
        .find(|(_, c)| c.argv.first().is_some_and(|a| a.ends_with("upsoak-chaos")))
        .ok_or_else(|| Error::Finding("no container runs upsoak-chaos".into()))?;
    let file_of = |container_path: &str| -> Option<String> {
        chaos.1.mounts.iter().find_map(|(m, v)| {
            let rel = container_path
                .strip_prefix(m.as_str())?
                .trim_start_matches('/');
            match v {
                Volume::Files(f) => f.get(rel).cloned(),
                Volume::Dir => None,
            }
        })
    };
    let sidecar_path = flag(&chaos.1.argv, "--config")
        .ok_or_else(|| Error::Finding("upsoak-chaos runs without --config".into()))?;
    let sidecar: Value =
        serde_yaml::from_str::<serde_yaml::Value>(&file_of(&sidecar_path).ok_or_else(|| {
            Error::Finding(format!("{sidecar_path} is not mounted into upsoak-chaos"))
        })?)
        .ok()
        .and_then(|v| serde_json::to_value(v).ok())
        .ok_or_else(|| Error::Finding(format!("{sidecar_path} does not parse")))?;
    let applier = &sidecar["wanderer"]["applier"];
    let release = applier["release"].as_str().unwrap_or("agones").to_owned();
    // The container's environment overrides the file (`UPSOAK_WANDERER__APPLIER__…`).
    let env_of = |k: &str| {
        chaos
            .1
            .env
            .iter()
            .rev()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
    };
    let agones_ns = env_of("UPSOAK_WANDERER__APPLIER__NAMESPACE")
        .or_else(|| applier["namespace"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "agones-system".to_owned());
    let chart = applier["chart"]
        .as_str()
        .unwrap_or("agones/agones")
        .to_owned();
    let mut user_values = json!({});
    let mut values_files = Vec::new();
    for f in applier["values_files"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        let text = file_of(f).ok_or_else(|| {
            Error::Finding(format!("values file {f} is not mounted into upsoak-chaos"))
        })?;
        let v: Value = serde_yaml::from_str::<serde_yaml::Value>(&text)
            .ok()
            .and_then(|v| serde_json::to_value(v).ok())
            .unwrap_or(Value::Null);
        merge(&mut user_values, &v);
        let local = o.work.join("person").join(f.trim_start_matches('/'));
        write(&local, &text)?;
        values_files.push(local);
    }
    let space_path = sidecar["wanderer"]["space"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let space: Value = file_of(&space_path)
        .and_then(|t| serde_yaml::from_str::<serde_yaml::Value>(&t).ok())
        .and_then(|v| serde_json::to_value(v).ok())
        .unwrap_or(Value::Null);
    let mut tunables = serde_json::Map::new();
    for (name, t) in space["tunables"].as_object().into_iter().flatten() {
        for path in t["chart"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            tunables.insert(path.to_owned(), json!(name));
        }
    }
    let agones = Agones::new(&release, &agones_ns, &user_values);
    let cluster = Cluster {
        rendered: &rendered,
        target,
        pods: pods.clone(),
        agones,
    };

    // Translations: container paths and Service names.
    let mut rewrites: Vec<(String, String)> = cluster.dns();
    for p in &pods {
        for c in &p.containers {
            for (m, _) in &c.mounts {
                rewrites.push((m.clone(), under(&root, m).display().to_string()));
            }
        }
    }
    rewrites.sort_by_key(|r| std::cmp::Reverse(r.0.len()));
    rewrites.dedup();
    let rw = Rewrites(rewrites);

    // The simulator: its built-in configuration, Agones' realistic speed, plus the fault.
    let default_sim = o.repo.join("sim/config/default.yaml");
    let mut sim_yaml =
        std::fs::read_to_string(&default_sim).map_err(|e| io("cannot read", &default_sim, e))?;
    let initial = serde_yaml::from_str::<serde_yaml::Value>(&sim_yaml)
        .ok()
        .and_then(|v| {
            v.get("initial")?
                .get("version")?
                .as_str()
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "1.60.0".into());
    if let Some((version, rate)) = &o.fault {
        sim_yaml.push_str(&format!(
            "\nfaults:\n  - {{ name: rehearsal-allocation-failures, kind: allocation_failures, rate: {rate}, when: {{ version: {version} }} }}\n"
        ));
    }
    let sim_dir = o.work.join("sim");
    write(&sim_dir.join("sim.yaml"), &sim_yaml)?;
    let sim = Proc::start(
        "sim",
        Command::new(bin("upsoak-sim"))
            .args(["--listen", &format!("127.0.0.1:{SIM_PORT}"), "--config"])
            .arg(sim_dir.join("sim.yaml")),
        &sim_dir,
    )
    .await;
    say(format!(
        "simulator on {sim_url} (default lifecycle and upgrade window), Agones {initial}"
    ));

    // helm, and a person's install of Agones with the overlay's values.
    let helm_state = o.work.join("helm");
    let helm = fake_helm(
        &o.repo,
        &bin_dir,
        &helm_state,
        &sim_url,
        &Value::Object(tunables),
    )?;
    write(
        &helm_state.join("api-groups"),
        if target == Target::Operator {
            "monitoring.coreos.com/v1\n"
        } else {
            ""
        },
    )?;
    let mut seed = Command::new(&helm);
    seed.args([
        "upgrade",
        "--install",
        &release,
        &chart,
        "--version",
        &initial,
        "--namespace",
        &agones_ns,
        "--wait",
        "--timeout",
        "5m",
    ]);
    for f in &values_files {
        seed.arg("-f").arg(f);
    }
    let out = seed
        .env_remove("HELM_CONFIG_HOME")
        .env_remove("HELM_REPOSITORY_CONFIG")
        .output()
        .map_err(|e| Error::Setup(format!("fake helm: {e}")))?;
    if !out.status.success() {
        return Err(Error::Finding(format!(
            "installing Agones {initial} with the overlay's values fails: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    say(format!(
        "Agones {initial} installed as release {agones_ns}/{release} with {} values file(s)",
        values_files.len()
    ));

    // The Fleet, as rendered, applied with kubectl.
    let fleets: Vec<&Value> = rendered.of_kind("Fleet").collect();
    if fleets.is_empty() {
        return Err(Error::Finding(
            "the overlay renders no Fleet: the Producer has nothing to allocate from".into(),
        ));
    }
    let fleet_file = o.work.join("fleets.json");
    write(
        &fleet_file,
        &json!({"apiVersion": "v1", "kind": "List", "items": fleets}).to_string(),
    )?;
    let out = Command::new("kubectl")
        .args(["--server", &sim_url, "apply", "-f"])
        .arg(&fleet_file)
        .output()
        .map_err(|e| Error::Setup(format!("kubectl: {e}")))?;
    if !out.status.success() {
        return Err(Error::Finding(format!(
            "kubectl apply of the rendered Fleet: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    say(format!(
        "applied {} Fleet(s): {}",
        fleets.len(),
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .replace('\n', "; ")
    ));

    // Prometheus and Alertmanager, as the stack configures them.
    let mut notes = Vec::new();
    let prom_dir = o.work.join("prometheus");
    let (prom_config, rules, prom_notes) = cluster.prometheus();
    let mut rule_files = Vec::new();
    for (name, text) in &rules {
        let p = prom_dir.join("rules").join(name);
        write(&p, text)?;
        rule_files.push(p.display().to_string());
    }
    let mut prom_value: Value = serde_yaml::from_str::<serde_yaml::Value>(&prom_config)
        .ok()
        .and_then(|v| serde_json::to_value(v).ok())
        .unwrap_or(Value::Null);
    prom_value["rule_files"] = json!(rule_files);
    let prom_config = serde_yaml::to_string(&prom_value).unwrap_or_default();
    for n in &prom_notes {
        say(n);
    }
    notes.extend(prom_notes);
    let prom = Prometheus::start_on(
        &prom_dir,
        &prom_config,
        &format!("127.0.0.1:{PROMETHEUS_PORT}"),
    )
    .await;
    let am_dir = o.work.join("alertmanager");
    std::fs::create_dir_all(am_dir.join("secrets")).map_err(|e| io("cannot create", &am_dir, e))?;
    let (am_config, am_notes) = cluster.alertmanager(&am_dir.join("secrets"));
    let am_config = rw.apply(&am_config);
    for n in &am_notes {
        say(n);
    }
    notes.extend(am_notes);
    let _am = Alertmanager::start_on(
        &am_dir,
        &am_config,
        &format!("127.0.0.1:{ALERTMANAGER_PORT}"),
    )
    .await;

    // The pods: files, then init containers, then containers.
    let kubeconfig = o.work.join("kubeconfig");
    write(
        &kubeconfig,
        &format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: sim\n  cluster: {{ server: \"{sim_url}\" }}\ncontexts:\n- name: sim\n  context: {{ cluster: sim, user: sa }}\ncurrent-context: sim\nusers:\n- name: sa\n  user: {{}}\n"
        ),
    )?;
    let path_env = format!(
        "{}:{}:/usr/local/bin:/usr/bin:/bin",
        bin_dir.display(),
        bin("upsoak-sim")
            .parent()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    );
    for (c, k, v) in &o.overrides {
        say(format!("override: {c}: {k}={v}"));
    }
    let mut procs: Vec<Proc> = Vec::new();
    for pod in &pods {
        materialize(pod, &root, &rw)?;
        for c in &pod.containers {
            let mut cmd = Command::new(resolve(&c.argv[0], &bin_dir, &rw));
            cmd.args(c.argv[1..].iter().map(|a| rw.apply(a)))
                .current_dir(&root)
                .env_clear()
                .env("PATH", &path_env)
                .env("KUBECONFIG", &kubeconfig);
            for (k, v) in &c.env {
                cmd.env(k, rw.apply(v));
            }
            for (_, k, v) in o.overrides.iter().filter(|(name, _, _)| name == &c.name) {
                cmd.env(k, v);
            }
            let name = format!("{}-{}", pod.deployment, c.name);
            let dir = o.work.join("logs");
            std::fs::create_dir_all(&dir).map_err(|e| io("cannot create", &dir, e))?;
            if c.init {
                let out = cmd
                    .output()
                    .map_err(|e| Error::Setup(format!("{name}: {e}")))?;
                if !out.status.success() {
                    return Err(Error::Finding(format!(
                        "init container {name} failed ({}): {}",
                        out.status,
                        String::from_utf8_lossy(&out.stderr).trim()
                    )));
                }
                say(format!("init container {name}: done"));
                continue;
            }
            let p = Proc::spawn(&name, &mut cmd, &dir, Announce::ListeningOn);
            procs.push(p);
        }
    }
    for p in &mut procs {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if p.url().is_some() {
                say(format!(
                    "{} is up at {}",
                    p.name(),
                    p.url().unwrap_or_default()
                ));
                break;
            }
            if let Some(status) = p.try_status() {
                return Err(Error::Finding(format!(
                    "{} exited at start ({status}):\n{}",
                    p.name(),
                    p.logs()
                )));
            }
            if Instant::now() > deadline {
                return Err(Error::Finding(format!(
                    "{} did not start listening within 30 s:\n{}",
                    p.name(),
                    p.logs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    // Wait for the judged transitions.
    let agent = pods
        .iter()
        .flat_map(|p| p.containers.iter())
        .find(|c| c.argv.first().is_some_and(|a| a.ends_with("upsoak-agent")))
        .ok_or_else(|| Error::Finding("no container runs upsoak-agent".into()))?;
    let state = flag(&agent.argv, "--state-dir")
        .ok_or_else(|| Error::Finding("upsoak-agent runs without --state-dir".into()))?;
    let history_path = PathBuf::from(rw.apply(&state)).join("history.json");
    let deadline = Instant::now() + o.timeout;
    let mut seen: BTreeMap<u64, String> = BTreeMap::new();
    let rows = loop {
        for p in &mut procs {
            if let Some(status) = p.try_status() {
                return Err(Error::Finding(format!(
                    "{} exited ({status}):\n{}",
                    p.name(),
                    p.logs()
                )));
            }
        }
        let history: Value = std::fs::read_to_string(&history_path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(Value::Null);
        let mut rows = Vec::new();
        for t in history["transitions"].as_array().into_iter().flatten() {
            let g = t["generation"].as_u64().unwrap_or(0);
            let row = Row {
                generation: g,
                change: change(t),
                to_version: t["to"]["version"].as_str().unwrap_or("").to_owned(),
                disruption: verdict(&t["disruption"]),
                steady: verdict(&t["judged"]),
                not_passed: [
                    not_passed("disruption", &t["disruption"]),
                    not_passed("steady", &t["judged"]),
                ]
                .concat(),
            };
            let line = format!(
                "generation {g} {}: disruption {} steady {}",
                row.change,
                or_dash(&row.disruption),
                or_dash(&row.steady)
            );
            if seen.get(&g) != Some(&line) {
                say(&line);
                for n in &row.not_passed {
                    say(format!("  {n}"));
                }
                seen.insert(g, line);
            }
            rows.push(row);
        }
        let done: Vec<Row> = rows
            .into_iter()
            .filter(|r| !r.disruption.is_empty() && !r.steady.is_empty())
            .collect();
        if done.len() >= o.transitions {
            break done;
        }
        if Instant::now() > deadline {
            return Err(Error::Finding(format!(
                "{} of {} transitions judged in both windows after {:?}\n{}",
                done.len(),
                o.transitions,
                o.timeout,
                procs
                    .iter()
                    .map(|p| p.logs())
                    .collect::<Vec<_>>()
                    .join("\n")
            )));
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    };
    drop(prom);
    drop(sim);

    // The criteria.
    let mut unmet = Vec::new();
    for r in &rows {
        let faulty = o.fault.as_ref().is_some_and(|(v, _)| v == &r.to_version);
        let worst = if r.disruption == "fail" || r.steady == "fail" {
            "fail"
        } else if r.disruption == "pass" && r.steady == "pass" {
            "pass"
        } else {
            "other"
        };
        match (faulty, worst) {
            (true, "fail") | (false, "pass") => {}
            (true, _) => unmet.push(format!(
                "generation {} ({}) goes into the faulty version but was not failed",
                r.generation, r.change
            )),
            (false, _) => unmet.push(format!(
                "generation {} ({}): disruption {}, steady {}, expected pass in both",
                r.generation, r.change, r.disruption, r.steady
            )),
        }
    }
    Ok(Outcome {
        overlay: o.overlay.display().to_string(),
        target: format!("{target:?}"),
        overrides: o
            .overrides
            .iter()
            .map(|(c, k, v)| format!("{c}: {k}={v}"))
            .collect(),
        fault: o
            .fault
            .as_ref()
            .map(|(v, r)| format!("allocation_failures rate {r} while {v} is installed")),
        notes,
        rows,
        unmet,
        seconds: started.elapsed().as_secs(),
    })
}

fn or_dash(s: &str) -> &str {
    if s.is_empty() { "–" } else { s }
}

/// A command's executable: a path (under the root), else the rehearsal's `bin` (helm), else
/// the workspace's binaries.
fn resolve(argv0: &str, bin_dir: &Path, rw: &Rewrites) -> PathBuf {
    if argv0.contains('/') {
        return PathBuf::from(rw.apply(argv0));
    }
    let local = bin_dir.join(argv0);
    if local.exists() {
        return local;
    }
    let ours = bin("upsoak-sim").with_file_name(argv0);
    if ours.exists() {
        return ours;
    }
    PathBuf::from(argv0)
}

/// Writes a pod's mounted files (rewritten) and makes its directories.
fn materialize(pod: &Pod, root: &Path, rw: &Rewrites) -> Result<()> {
    for c in &pod.containers {
        for (m, v) in &c.mounts {
            let dir = under(root, m);
            match v {
                Volume::Dir => {
                    std::fs::create_dir_all(&dir).map_err(|e| io("cannot create", &dir, e))?
                }
                Volume::Files(files) => {
                    for (k, text) in files {
                        write(&dir.join(k), &rw.apply(text))?;
                    }
                    std::fs::create_dir_all(&dir).map_err(|e| io("cannot create", &dir, e))?;
                }
            }
        }
    }
    Ok(())
}

mod markdown;

#[cfg(test)]
mod tests;
