//! The Grafana dashboard cannot drift from the code: every PromQL expression in
//! `grafana/upsoak.json` (panels, template variables, annotations) parses, and every metric it
//! selects is one that the running binaries export (the simulator speaks Agones' metric names),
//! read from their live `/metrics`, or a recording rule of `rules/upsoak-rules.yaml`. Every
//! Prometheus query uses the `datasource` template variable.
//!
//! The binaries are the workspace's own build (`cargo build --bins`, which `make test` runs
//! before the tests), found beside this test's executable.
// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use promql_parser::parser::{self, Expr};
use promql_parser::util::{ExprVisitor, walk_expr};
use serde_json::Value;
use upsoak_testkit::{POLL, Proc, Prometheus, TempDir, bin, eventually, scrape, scrape_config};

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(p)
}

/// The names a Prometheus scraping this exposition (Prometheus text or OpenMetrics) stores:
/// every sample's name, and from each `# TYPE` line the names its type implies, so an empty
/// family (no label set seen yet) counts too.
fn metric_names(exposition: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in exposition.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut it = rest.split_whitespace();
            let (Some(name), Some(kind)) = (it.next(), it.next()) else {
                continue;
            };
            let suffixes: &[&str] = match kind {
                "counter" => &["", "_total", "_created"],
                "histogram" | "gaugehistogram" => &["_bucket", "_sum", "_count", "_created"],
                "summary" => &["", "_sum", "_count", "_created"],
                "info" => &["_info"],
                _ => &[""],
            };
            for s in suffixes {
                names.insert(format!("{name}{s}"));
            }
        } else if !line.starts_with('#') && !line.trim().is_empty() {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            names.insert(line[..end].to_owned());
        }
    }
    names
}

/// Grafana's variables made into PromQL: `$__rate_interval` and the like become a duration,
/// `$var` and `${var}` (in regex matchers here) become `.*`.
fn substitute_variables(expr: &str) -> String {
    let mut out = String::new();
    let mut rest = expr;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (name, len) = if let Some(braced) = after.strip_prefix('{') {
            let end = braced.find('}').expect("unclosed ${");
            (&braced[..end], end + 2)
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], end)
        };
        assert!(!name.is_empty(), "a lone `$` in {expr:?}");
        out.push_str(if name.starts_with("__") { "5m" } else { ".*" });
        rest = &after[len..];
    }
    out.push_str(rest);
    out
}

/// Every metric name an expression selects; a selector without a name is refused.
fn selected_metrics(expr: &str) -> Result<BTreeSet<String>, String> {
    struct Names(BTreeSet<String>);
    impl ExprVisitor for Names {
        type Error = String;
        fn pre_visit(&mut self, e: &Expr) -> Result<bool, String> {
            let vs = match e {
                Expr::VectorSelector(vs) => vs,
                Expr::MatrixSelector(ms) => &ms.vs,
                _ => return Ok(true),
            };
            let name = vs
                .name
                .clone()
                .ok_or_else(|| format!("a selector without a metric name: {vs}"))?;
            self.0.insert(name);
            Ok(true)
        }
    }
    let ast = parser::parse(&substitute_variables(expr))?;
    let mut v = Names(BTreeSet::new());
    walk_expr(&mut v, &ast)?;
    Ok(v.0)
}

/// Every PromQL text of the dashboard, with where it is: `expr` of targets and annotations,
/// and the selector inside each variable's `label_values(…)` / `query_result(…)`.
fn dashboard_queries(v: &Value, at: &str, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                let here = format!("{at}.{k}");
                match (k.as_str(), child) {
                    ("expr", Value::String(e)) => out.push((here, e.clone())),
                    _ => dashboard_queries(child, &here, out),
                }
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                dashboard_queries(child, &format!("{at}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// The PromQL selector of a variable query: `label_values(SELECTOR, label)` →
/// `SELECTOR`, `query_result(EXPR)` → `EXPR`; `label_values(label)` selects no metric.
fn variable_selector(query: &str) -> Option<String> {
    let q = query.trim();
    if let Some(inner) = q
        .strip_prefix("label_values(")
        .and_then(|r| r.strip_suffix(')'))
    {
        return inner.rsplit_once(',').map(|(sel, _)| sel.trim().to_owned());
    }
    q.strip_prefix("query_result(")
        .and_then(|r| r.strip_suffix(')'))
        .map(str::to_owned)
}

/// Every `datasource` in the dashboard with its path: a Prometheus one must be the
/// `${datasource}` variable; the only other allowed is Grafana's own, for tag annotations.
fn datasource_problems(v: &Value, at: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                let here = format!("{at}.{k}");
                if k == "datasource" && at != "$.templating.list[0]" {
                    let uid = child.get("uid").and_then(Value::as_str);
                    let kind = child.get("type").and_then(Value::as_str);
                    let grafana_tags = kind == Some("datasource")
                        && uid == Some("grafana")
                        && m.get("target").and_then(|t| t.get("type")) == Some(&"tags".into());
                    if !(uid == Some("${datasource}") && kind == Some("prometheus") || grafana_tags)
                    {
                        out.push(format!("{here} is {child}, not the `datasource` variable"));
                    }
                }
                datasource_problems(child, &here, out);
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                datasource_problems(child, &format!("{at}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// The recording rules of the generated rule file (`- record: NAME`).
fn recording_rules() -> BTreeSet<String> {
    std::fs::read_to_string(repo("rules/upsoak-rules.yaml"))
        .unwrap()
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- record: "))
        .map(|n| n.trim().to_owned())
        .collect()
}

/// SLOs judged on one-second slots, so that a transition is judged within seconds.
const QUICK_SLOS: &str = "groups:
  - name: dash
    interval: 1s
    slos:
      - name: allocations
        description: Allocations go on.
        expr: sum(rate(upsoak_producer_allocations_total[5s]))
        objective: \">= 0\"
        min_samples: 1
        severity: warning
  # Parses, but Prometheus refuses it (an invalid regular expression): its failures are counted.
  - name: broken
    interval: 1s
    slos:
      - name: refused
        description: A query Prometheus refuses.
        expr: label_replace(vector(1), \"a\", \"$1\", \"b\", \"(\")
        objective: \">= 0\"
        min_samples: 1
        severity: info
";

/// A quick lifecycle and one Fleet, appended to the simulator's built-in default.
const SIM_EXTRA: &str = "lifecycle:
  scheduled_after: 50ms
  request_ready_after: 50ms
  ready_after: 50ms
  delete_after_shutdown: 100ms
  tick: 20ms
upgrade_window: 500ms
fleets:
  - name: simple-game-server
    replicas: 4
";

/// The whole loop on loopback, as in the demo but quicker: the simulator, the sidecar (a
/// transition every 2 s, allocations, sessions, scaling), Prometheus scraping the three every
/// second, and the agent judging each transition from it. Everything is killed on drop.
struct Stack {
    // Dropped in declaration order: the agent first, the scratch directory last.
    agent: Proc,
    _prometheus: Prometheus,
    chaos: Proc,
    sim: Proc,
    _dir: TempDir,
}

impl Stack {
    async fn start() -> Stack {
        let dir = TempDir::new("dashboard");
        let default = std::fs::read_to_string(repo("sim/config/default.yaml")).unwrap();
        let sim_yaml = dir.write("sim.yaml", &format!("{default}\n{SIM_EXTRA}"));
        let sim = Proc::start(
            "sim",
            Command::new(bin("upsoak-sim"))
                .args(["--listen", "127.0.0.1:0", "--config"])
                .arg(&sim_yaml),
            &dir,
        )
        .await;
        let sim_url = sim.url().unwrap();

        let sidecar = dir.write(
            "sidecar.yaml",
            &format!(
                "listen: 127.0.0.1:0\nstate_dir: {state}\nkube_server: {sim}\nwanderer:\n  space: {space}\n  seed: 1\n  schedule: {{ period: 2s, jitter: 0 }}\n  apply_timeout: 10s\n  applier: {{ kind: sim, url: \"{sim}\" }}\nproducer:\n  fleets: [ {{ name: simple-game-server, min_replicas: 3, max_replicas: 5, scale_every_min: 1s, scale_every_max: 2s }} ]\n  allocation_rate: 5\n  session: {{ min_length: 200ms, max_length: 500ms, max_players: 2 }}\n  capacity: {{ on_short: warn }}\n  window: 2s\n",
                state = dir.join("chaos").display(),
                sim = sim_url,
                space = repo("chaos/spaces/agones.yaml").display(),
            ),
        );
        let chaos = Proc::start(
            "chaos",
            Command::new(bin("upsoak-chaos"))
                .args(["run", "--config"])
                .arg(&sidecar),
            &dir,
        )
        .await;
        let chaos_url = chaos.url().unwrap();

        // Prometheus before the agent, which is told its URL; the agent's own target is added
        // by a reload once it has a port.
        let host = |u: &str| u.trim_start_matches("http://").to_owned();
        let (sim_host, chaos_host) = (host(&sim_url), host(&chaos_url));
        let prometheus = Prometheus::start(
            &dir,
            &scrape_config(&[("agones", &sim_host), ("upsoak-chaos", &chaos_host)]),
        )
        .await;
        let slos = dir.write("slos.yaml", QUICK_SLOS);
        let agent = Proc::start(
            "agent",
            Command::new(bin("upsoak-agent"))
                .args(["run", "--listen", "127.0.0.1:0"])
                .args(["--prometheus", prometheus.url()])
                .args(["--kube-server", &sim_url])
                .args([
                    "--settle",
                    "1s",
                    "--judge-window",
                    "2s",
                    "--step",
                    "1s",
                    "--interval",
                    "1s",
                ])
                .arg("--specs")
                .arg(&slos)
                .arg("--state-dir")
                .arg(dir.join("agent")),
            &dir,
        )
        .await;
        prometheus
            .reload(&scrape_config(&[
                ("agones", &sim_host),
                ("upsoak-chaos", &chaos_host),
                ("upsoak-agent", &host(&agent.url().unwrap())),
            ]))
            .await;
        Stack {
            agent,
            _prometheus: prometheus,
            chaos,
            sim,
            _dir: dir,
        }
    }

    /// The metric names the three binaries export now.
    async fn metric_names(&self) -> BTreeSet<String> {
        let mut names = BTreeSet::new();
        for p in [&self.sim, &self.chaos, &self.agent] {
            let url = p.url().unwrap();
            let body = scrape(&url)
                .await
                .unwrap_or_else(|e| panic!("{} {url}/metrics: {e}", p.name()));
            names.extend(metric_names(&body));
        }
        names
    }
}

#[test]
fn exposition_names_include_the_suffixes_prometheus_stores() {
    let n = metric_names(
        "# TYPE a counter\n# TYPE b histogram\n# TYPE c gauge\nc{x=\"1\"} 2\nd_total 1\n# EOF\n",
    );
    for want in ["a_total", "b_bucket", "b_count", "b_sum", "c", "d_total"] {
        assert!(n.contains(want), "{want} missing from {n:?}");
    }
    assert_eq!(
        substitute_variables("rate(x{a=~\"$fleet\", b=~\"${slo}\"}[$__rate_interval])"),
        "rate(x{a=~\".*\", b=~\".*\"}[5m])"
    );
    assert_eq!(
        selected_metrics("sum by (le) (rate(a_bucket[5m])) / on () b or vector(0)").unwrap(),
        BTreeSet::from(["a_bucket".to_owned(), "b".to_owned()])
    );
    assert!(selected_metrics("{job=\"x\"}").is_err());
    assert!(selected_metrics("rate(x[5m]").is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn every_dashboard_query_parses_and_selects_only_exported_metrics() {
    let path = repo("grafana/upsoak.json");
    let dash: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();

    let mut queries = Vec::new();
    dashboard_queries(&dash, "$", &mut queries);
    for (i, var) in dash["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        if var["type"] == "query" {
            let q = var["query"]["query"]
                .as_str()
                .or(var["query"].as_str())
                .unwrap();
            let sel = variable_selector(q)
                .unwrap_or_else(|| panic!("variable {}: unsupported query {q:?}", var["name"]));
            queries.push((format!("$.templating.list[{i}].query"), sel));
        }
    }
    assert!(
        queries.len() >= 20,
        "only {} queries found: is the walk broken?",
        queries.len()
    );

    // A family appears on /metrics once it has a first series (a first allocation, session,
    // scaling, transition or verdict): wait until every name the dashboard selects is there,
    // or until the deadline, then report what is missing.
    let mut problems = Vec::new();
    let mut selected: Vec<(String, String)> = Vec::new();
    for (at, q) in &queries {
        match selected_metrics(q) {
            Err(e) => problems.push(format!("{at}: does not parse: {e}\n    {q}")),
            Ok(names) => selected.extend(names.into_iter().map(|n| (at.clone(), n))),
        }
    }
    let rules = recording_rules();
    let stack = Stack::start().await;
    let missing = |known: &BTreeSet<String>| -> Vec<(String, String)> {
        selected
            .iter()
            .filter(|(_, n)| !known.contains(n) && !rules.contains(n))
            .cloned()
            .collect()
    };
    let waited = eventually(Duration::from_secs(60), POLL * 10, || async {
        let known = stack.metric_names().await;
        missing(&known).is_empty().then_some(())
    })
    .await;
    // Past the deadline, report what is still missing.
    let missing = match waited {
        Ok(()) => Vec::new(),
        Err(_) => missing(&stack.metric_names().await),
    };
    drop(stack);
    for (at, n) in missing {
        problems.push(format!("{at}: `{n}` is exported by none of the binaries"));
    }
    datasource_problems(&dash, "$", &mut problems);
    assert!(
        dash["templating"]["list"][0]["name"] == "datasource"
            && dash["templating"]["list"][0]["type"] == "datasource"
            && dash["templating"]["list"][0]["query"] == "prometheus",
        "the first template variable must be the Prometheus `datasource`"
    );
    assert!(
        problems.is_empty(),
        "{} problems in {}:\n  {}",
        problems.len(),
        path.display(),
        problems.join("\n  ")
    );
}

#[test]
fn the_annotations_show_transitions_from_prometheus_and_the_agents_tags() {
    let dash: Value =
        serde_json::from_str(&std::fs::read_to_string(repo("grafana/upsoak.json")).unwrap())
            .unwrap();
    let list = dash["annotations"]["list"].as_array().unwrap();
    let from_prometheus = list
        .iter()
        .find(|a| a["expr"].is_string())
        .expect("an annotation from a Prometheus query");
    let expr = from_prometheus["expr"].as_str().unwrap();
    assert!(
        expr.contains("changes(upsoak_wanderer_generation"),
        "{expr}"
    );
    let text = format!(
        "{} {}",
        from_prometheus["titleFormat"], from_prometheus["textFormat"]
    );
    for label in ["{{version}}", "{{feature_gates}}"] {
        assert!(
            text.contains(label),
            "{label} is not in the annotation text {text}"
        );
    }
    // agent/src/grafana.rs posts transitions tagged [upsoak, transition, to:VERSION] and
    // verdicts tagged [upsoak, verdict, VERDICT, slo:SLO].
    let grafana = include_str!("../../agent/src/grafana.rs");
    for kind in ["transition", "verdict"] {
        assert!(
            grafana.contains(&format!("\"tags\": [\"upsoak\", \"{kind}\"")),
            "agent/src/grafana.rs no longer tags {kind} annotations [upsoak, {kind}, …]"
        );
        assert!(
            list.iter().any(|a| a["target"]["type"] == "tags"
                && a["target"]["tags"] == serde_json::json!(["upsoak", kind])),
            "no annotation by the tags [upsoak, {kind}]"
        );
    }
}
