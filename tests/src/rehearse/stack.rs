//! The cluster around the rendered deploy, as the target stack would configure itself from the
//! rendered objects: which Services exist (ours, Agones' chart's, the stack's), what
//! Prometheus scrapes and with which labels, which rules it loads, where Alertmanager sends.
//!
//! Every "pod" is a process on loopback inside the rehearsal's own network namespace, so the
//! rendered ports are used as they are: the sidecar on 9464, the agent on 9465, Prometheus on
//! 9090, Alertmanager on 9093, and the simulator (the Kubernetes API and every Agones pod's
//! metrics port) on 8080, the port of Agones' controller, extensions and allocator pods.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{Value, json};

use super::render::{Pod, Rendered, namespace_of, selects, string_map, strings};

/// The simulator's port: the Kubernetes API here, and the metrics port of every Agones pod
/// (`agones.controller.http.port`, `agones.allocator.serviceMetrics.http.port`: 8080 in
/// Agones' `install/helm/agones/values.yaml`; the pods' `prometheus.io/port: "8080"`).
pub const SIM_PORT: u16 = 8080;
pub const PROMETHEUS_PORT: u16 = 9090;
pub const ALERTMANAGER_PORT: u16 = 9093;

/// Which stack the overlay is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// kube-prometheus-stack, release `kube-prometheus-stack` in `monitoring`, on its defaults.
    Operator,
    /// The prometheus-community `prometheus` chart, release `prometheus` in `monitoring`.
    Plain,
}

/// kube-prometheus-stack's release name, whose label its default selectors ask for
/// (`prometheus.prometheusSpec.serviceMonitorSelectorNilUsesHelmValues: true` and the like:
/// `release: <release>`; prometheus-community/helm-charts, charts/kube-prometheus-stack,
/// templates/prometheus/prometheus.yaml).
pub const KPS_RELEASE: &str = "kube-prometheus-stack";
/// Where both stacks run.
pub const STACK_NAMESPACE: &str = "monitoring";

impl Target {
    /// An overlay with ServiceMonitors or PrometheusRules is for prometheus-operator.
    pub fn of(r: &Rendered) -> Target {
        if r.of_kind("ServiceMonitor").next().is_some()
            || r.of_kind("PrometheusRule").next().is_some()
        {
            Target::Operator
        } else {
            Target::Plain
        }
    }

    /// The stack's own Services: `name.namespace:port` → the loopback port behind it.
    fn services(self) -> Vec<(&'static str, u16, u16)> {
        match self {
            // prometheus-operator's governing Services, and the chart's.
            Target::Operator => vec![
                ("prometheus-operated", 9090, PROMETHEUS_PORT),
                ("kube-prometheus-stack-prometheus", 9090, PROMETHEUS_PORT),
                ("alertmanager-operated", 9093, ALERTMANAGER_PORT),
                (
                    "kube-prometheus-stack-alertmanager",
                    9093,
                    ALERTMANAGER_PORT,
                ),
            ],
            // charts/prometheus: the server's Service port 80 → 9090; its alertmanager subchart.
            Target::Plain => vec![
                ("prometheus-server", 80, PROMETHEUS_PORT),
                ("prometheus-alertmanager", 9093, ALERTMANAGER_PORT),
            ],
        }
    }
}

/// Agones as its chart renders it (v1.60.0, `install/helm/agones/templates/`): the three
/// Deployments' pods, their metrics Services and, when the values ask for it, its
/// ServiceMonitors.
pub struct Agones {
    pub release: String,
    pub namespace: String,
    /// `agones.metrics.prometheusEnabled && agones.metrics.serviceMonitor.enabled`.
    pub service_monitor: bool,
    /// `agones.metrics.prometheusEnabled && agones.metrics.prometheusServiceDiscovery`: the
    /// pods carry `prometheus.io/*` annotations.
    pub annotations: bool,
}

impl Agones {
    /// From the release's values (the user's, over the chart's defaults).
    pub fn new(release: &str, namespace: &str, values: &Value) -> Agones {
        let m = &values["agones"]["metrics"];
        let enabled = m["prometheusEnabled"].as_bool().unwrap_or(true);
        Agones {
            release: release.to_owned(),
            namespace: namespace.to_owned(),
            service_monitor: enabled && m["serviceMonitor"]["enabled"].as_bool().unwrap_or(false),
            annotations: enabled && m["prometheusServiceDiscovery"].as_bool().unwrap_or(true),
        }
    }

    /// The pods (one per Deployment) as the rendered ones are modelled.
    fn pods(&self) -> Vec<Pod> {
        let base = |role_key: &str, role: &str| -> BTreeMap<String, String> {
            [
                (role_key.to_owned(), role.to_owned()),
                ("app".to_owned(), "agones".to_owned()),
                ("release".to_owned(), self.release.clone()),
                ("heritage".to_owned(), "Helm".to_owned()),
            ]
            .into()
        };
        [
            ("agones-controller", base("agones.dev/role", "controller")),
            ("agones-extensions", base("agones.dev/role", "extensions")),
            (
                "agones-allocator",
                base("multicluster.agones.dev/role", "allocator"),
            ),
        ]
        .into_iter()
        .map(|(name, labels)| Pod {
            deployment: name.to_owned(),
            namespace: self.namespace.clone(),
            labels,
            containers: vec![super::render::Container {
                name: name.to_owned(),
                init: false,
                argv: vec![],
                env: vec![],
                mounts: vec![],
                ports: [("http".to_owned(), SIM_PORT)].into(),
            }],
        })
        .collect()
    }

    /// The metrics Services (controller-metrics-service.yaml, extensions-metrics-service.yaml,
    /// service/allocation.yaml: port `metrics`, `metrics`, `http`; all 8080).
    fn services(&self) -> Vec<Value> {
        let svc = |name: &str, role_key: &str, role: &str, port: &str| {
            json!({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": name, "namespace": self.namespace, "labels": {
                    role_key: role, "app": "agones", "release": self.release, "heritage": "Helm"}},
                "spec": {"selector": {role_key: role},
                    "ports": [{"name": port, "port": 8080, "targetPort": "http"}]}})
        };
        vec![
            svc(
                "agones-controller-metrics-service",
                "agones.dev/role",
                "controller",
                "metrics",
            ),
            svc(
                "agones-extensions-metrics-service",
                "agones.dev/role",
                "extensions",
                "metrics",
            ),
            svc(
                "agones-allocator-metrics-service",
                "multicluster.agones.dev/role",
                "allocator",
                "http",
            ),
        ]
    }

    /// Its own ServiceMonitors (templates/service-monitor.yaml, service/allocation.yaml),
    /// labelled `release: <the Agones release>`.
    fn service_monitors(&self) -> Vec<Value> {
        if !self.service_monitor {
            return vec![];
        }
        let labels = json!({"app": "agones", "release": self.release, "heritage": "Helm"});
        vec![
            json!({"kind": "ServiceMonitor", "metadata": {"name": "agones-controller-monitor", "namespace": self.namespace, "labels": labels},
                "spec": {"selector": {"matchExpressions": [{"key": "agones.dev/role", "operator": "In", "values": ["controller", "extensions"]}]},
                    "endpoints": [{"port": "metrics", "path": "/metrics", "interval": "30s", "relabelings": [
                        {"action": "labelmap", "regex": "__meta_kubernetes_pod_label_(.+)"},
                        {"sourceLabels": ["__meta_kubernetes_namespace"], "action": "replace", "targetLabel": "kubernetes_namespace"},
                        {"sourceLabels": ["__meta_kubernetes_pod_name"], "action": "replace", "targetLabel": "kubernetes_pod_name"}]}]}}),
            json!({"kind": "ServiceMonitor", "metadata": {"name": "agones-allocator-monitor", "namespace": self.namespace, "labels": labels},
                "spec": {"selector": {"matchLabels": {"multicluster.agones.dev/role": "allocator"}},
                    "endpoints": [{"port": "http", "path": "/metrics", "interval": "30s"}]}}),
        ]
    }
}

/// The whole cluster the rehearsal stands up: the rendered objects, the upsoak pods, Agones.
pub struct Cluster<'a> {
    pub rendered: &'a Rendered,
    pub target: Target,
    pub pods: Vec<Pod>,
    pub agones: Agones,
}

/// A discovered scrape target: its address and Kubernetes SD meta labels.
struct Target_ {
    address: String,
    labels: BTreeMap<String, String>,
}

/// `a.b-c/d` → `a_b_c_d`, as Kubernetes SD sanitises label names.
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl Cluster<'_> {
    fn all_pods(&self) -> Vec<Pod> {
        let mut p = self.pods.clone();
        p.extend(self.agones.pods());
        p
    }

    fn all_services(&self) -> Vec<Value> {
        let mut s: Vec<Value> = self.rendered.of_kind("Service").cloned().collect();
        s.extend(self.agones.services());
        s
    }

    /// `host:port` rewrites for every Service a process may be given by DNS name:
    /// `name.ns.svc[.cluster.local]:port` → `127.0.0.1:<the port behind it>`.
    pub fn dns(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut add = |name: &str, ns: &str, port: u16, to: u16| {
            for host in [
                format!("{name}.{ns}.svc.cluster.local"),
                format!("{name}.{ns}.svc"),
            ] {
                out.push((format!("{host}:{port}"), format!("127.0.0.1:{to}")));
            }
        };
        for (name, port, to) in self.target.services() {
            add(name, STACK_NAMESPACE, port, to);
        }
        let pods = self.all_pods();
        for s in self.all_services() {
            let name = s["metadata"]["name"].as_str().unwrap_or_default();
            let ns = namespace_of(&s);
            for p in s["spec"]["ports"].as_array().into_iter().flatten() {
                let port = p["port"].as_u64().unwrap_or(0) as u16;
                let target = if p["targetPort"].is_null() {
                    &p["port"]
                } else {
                    &p["targetPort"]
                };
                if let Some(to) = pods
                    .iter()
                    .filter(|pod| {
                        pod.namespace == ns && selects(&s["spec"]["selector"], &pod.labels)
                    })
                    .find_map(|pod| pod.port(target))
                {
                    add(name, ns, port, to);
                }
            }
        }
        out
    }

    /// Kubernetes SD, role `endpoints`, in `namespaces` (all when `None`): one target per
    /// Service port and selected pod, with the meta labels Prometheus gives
    /// (discovery/kubernetes/endpoints.go, service.go, pod.go).
    fn endpoint_targets(&self, namespaces: Option<&[String]>) -> Vec<(Value, Target_)> {
        let pods = self.all_pods();
        let mut out = Vec::new();
        for s in self.all_services() {
            let ns = namespace_of(&s).to_owned();
            if namespaces.is_some_and(|n| !n.contains(&ns)) {
                continue;
            }
            for p in s["spec"]["ports"].as_array().into_iter().flatten() {
                let target = if p["targetPort"].is_null() {
                    &p["port"]
                } else {
                    &p["targetPort"]
                };
                for pod in pods.iter().filter(|pod| {
                    pod.namespace == ns && selects(&s["spec"]["selector"], &pod.labels)
                }) {
                    let Some(port) = pod.port(target) else {
                        continue;
                    };
                    let mut l = self.pod_labels(pod);
                    l.insert(
                        "__meta_kubernetes_service_name".into(),
                        s["metadata"]["name"].as_str().unwrap_or_default().into(),
                    );
                    for (k, v) in string_map(&s["metadata"]["labels"]) {
                        l.insert(
                            format!("__meta_kubernetes_service_label_{}", sanitize(&k)),
                            v,
                        );
                        l.insert(
                            format!("__meta_kubernetes_service_labelpresent_{}", sanitize(&k)),
                            "true".into(),
                        );
                    }
                    l.insert(
                        "__meta_kubernetes_endpoint_port_name".into(),
                        p["name"].as_str().unwrap_or_default().into(),
                    );
                    l.insert("__meta_kubernetes_endpoint_ready".into(), "true".into());
                    l.insert(
                        "__meta_kubernetes_endpoint_address_target_kind".into(),
                        "Pod".into(),
                    );
                    l.insert(
                        "__meta_kubernetes_endpoint_address_target_name".into(),
                        format!("{}-0", pod.deployment),
                    );
                    out.push((
                        s.clone(),
                        Target_ {
                            address: format!("127.0.0.1:{port}"),
                            labels: l,
                        },
                    ));
                }
            }
        }
        out
    }

    /// The `__meta_kubernetes_pod_*` labels of a pod (its ReplicaSet named `<deployment>-0`).
    fn pod_labels(&self, pod: &Pod) -> BTreeMap<String, String> {
        let mut l = BTreeMap::new();
        l.insert("__meta_kubernetes_namespace".into(), pod.namespace.clone());
        l.insert(
            "__meta_kubernetes_pod_name".into(),
            format!("{}-0", pod.deployment),
        );
        l.insert("__meta_kubernetes_pod_ip".into(), "127.0.0.1".into());
        l.insert("__meta_kubernetes_pod_ready".into(), "true".into());
        l.insert("__meta_kubernetes_pod_phase".into(), "Running".into());
        l.insert(
            "__meta_kubernetes_pod_controller_kind".into(),
            "ReplicaSet".into(),
        );
        l.insert(
            "__meta_kubernetes_pod_controller_name".into(),
            format!("{}-0", pod.deployment),
        );
        if let Some(c) = pod.containers.iter().find(|c| !c.init) {
            l.insert(
                "__meta_kubernetes_pod_container_name".into(),
                c.name.clone(),
            );
        }
        for (k, v) in &pod.labels {
            l.insert(
                format!("__meta_kubernetes_pod_label_{}", sanitize(k)),
                v.clone(),
            );
            l.insert(
                format!("__meta_kubernetes_pod_labelpresent_{}", sanitize(k)),
                "true".into(),
            );
        }
        if self.agones.annotations
            && pod.namespace == self.agones.namespace
            && pod.deployment.starts_with("agones-")
        {
            for (k, v) in [
                ("prometheus.io/scrape", "true"),
                ("prometheus.io/port", "8080"),
                ("prometheus.io/path", "/metrics"),
            ] {
                l.insert(
                    format!("__meta_kubernetes_pod_annotation_{}", sanitize(k)),
                    v.into(),
                );
                l.insert(
                    format!("__meta_kubernetes_pod_annotationpresent_{}", sanitize(k)),
                    "true".into(),
                );
            }
        }
        l
    }

    /// Kubernetes SD, role `pod`: one target per container port (the pod IP alone when none).
    fn pod_targets(&self, namespaces: Option<&[String]>) -> Vec<Target_> {
        let mut out = Vec::new();
        for pod in self.all_pods() {
            if namespaces.is_some_and(|n| !n.contains(&pod.namespace)) {
                continue;
            }
            let base = self.pod_labels(&pod);
            let ports: Vec<(String, u16)> = pod
                .containers
                .iter()
                .filter(|c| !c.init)
                .flat_map(|c| c.ports.clone())
                .collect();
            if ports.is_empty() {
                out.push(Target_ {
                    address: "127.0.0.1".into(),
                    labels: base,
                });
                continue;
            }
            for (name, port) in ports {
                let mut l = base.clone();
                l.insert("__meta_kubernetes_pod_container_port_name".into(), name);
                l.insert(
                    "__meta_kubernetes_pod_container_port_number".into(),
                    port.to_string(),
                );
                out.push(Target_ {
                    address: format!("127.0.0.1:{port}"),
                    labels: l,
                });
            }
        }
        out
    }

    /// Prometheus' configuration and rule files (name → text), as the stack would build it.
    /// Also the lines saying what was selected and what was not.
    pub fn prometheus(&self) -> (String, Vec<(String, String)>, Vec<String>) {
        let mut notes = Vec::new();
        let mut rules = Vec::new();
        let mut jobs: Vec<Value> = Vec::new();
        let global;
        match self.target {
            Target::Operator => {
                // kube-prometheus-stack's defaults: 30 s scrapes and evaluations.
                global = json!({"scrape_interval": "30s", "evaluation_interval": "30s"});
                let selector = json!({"matchLabels": {"release": KPS_RELEASE}});
                let mut monitors: Vec<Value> =
                    self.rendered.of_kind("ServiceMonitor").cloned().collect();
                monitors.extend(self.agones.service_monitors());
                for sm in monitors {
                    let id = format!(
                        "{}/{}",
                        namespace_of(&sm),
                        sm["metadata"]["name"].as_str().unwrap_or_default()
                    );
                    if !selects(&selector, &string_map(&sm["metadata"]["labels"])) {
                        notes.push(format!("ServiceMonitor {id}: not selected (kube-prometheus-stack's default serviceMonitorSelector is release={KPS_RELEASE})"));
                        continue;
                    }
                    let n = self.service_monitor_jobs(&sm, &mut jobs);
                    notes.push(format!("ServiceMonitor {id}: selected, {n} target(s)"));
                }
                for pr in self.rendered.of_kind("PrometheusRule") {
                    let id = format!(
                        "{}/{}",
                        namespace_of(pr),
                        pr["metadata"]["name"].as_str().unwrap_or_default()
                    );
                    if !selects(&selector, &string_map(&pr["metadata"]["labels"])) {
                        notes.push(format!(
                            "PrometheusRule {id}: not selected (ruleSelector release={KPS_RELEASE})"
                        ));
                        continue;
                    }
                    let text = serde_yaml::to_string(&json!({"groups": pr["spec"]["groups"]}))
                        .unwrap_or_default();
                    rules.push((
                        format!(
                            "{}-{}.yaml",
                            namespace_of(pr),
                            pr["metadata"]["name"].as_str().unwrap_or_default()
                        ),
                        text,
                    ));
                    notes.push(format!("PrometheusRule {id}: loaded"));
                }
            }
            Target::Plain => {
                // charts/prometheus values.yaml `server.global`: 1 m scrapes and evaluations.
                global = json!({"scrape_interval": "1m", "evaluation_interval": "1m", "scrape_timeout": "10s"});
                let files = self
                    .rendered
                    .of_kind("ConfigMap")
                    .filter(|c| namespace_of(c) == STACK_NAMESPACE)
                    .filter_map(|c| {
                        self.rendered.data(
                            "ConfigMap",
                            STACK_NAMESPACE,
                            c["metadata"]["name"].as_str()?,
                        )
                    })
                    .fold(BTreeMap::new(), |mut m, d| {
                        m.extend(d);
                        m
                    });
                match files.get("scrape-configs.yaml").map(|t| serde_yaml::from_str::<serde_yaml::Value>(t)) {
                    Some(Ok(v)) => {
                        let v = serde_json::to_value(v).unwrap_or(Value::Null);
                        for mut job in v.as_array().cloned().unwrap_or_default() {
                            let sd = job.as_object_mut().and_then(|o| o.remove("kubernetes_sd_configs"));
                            let mut statics = Vec::new();
                            for c in sd.as_ref().and_then(Value::as_array).into_iter().flatten() {
                                let names = c["namespaces"]["names"].as_array().map(|a| strings(&Value::Array(a.clone())));
                                let targets: Vec<Target_> = match c["role"].as_str() {
                                    Some("endpoints") | Some("endpointslice") => {
                                        self.endpoint_targets(names.as_deref()).into_iter().map(|(_, t)| t).collect()
                                    }
                                    Some("pod") => self.pod_targets(names.as_deref()),
                                    other => {
                                        notes.push(format!("scrape job {}: kubernetes_sd role {other:?} is not modelled", job["job_name"]));
                                        vec![]
                                    }
                                };
                                statics.extend(targets.into_iter().map(|t| json!({"targets": [t.address], "labels": t.labels})));
                            }
                            notes.push(format!("scrape job {}: {} discovered target(s)", job["job_name"], statics.len()));
                            job["static_configs"] = Value::Array(statics);
                            jobs.push(job);
                        }
                    }
                    Some(Err(e)) => notes.push(format!("scrape-configs.yaml does not parse: {e}")),
                    None => notes.push(format!("no scrape-configs.yaml in a ConfigMap of {STACK_NAMESPACE}: nothing scraped")),
                }
                if let Some(text) = files.get("upsoak-rules.yaml") {
                    rules.push(("upsoak-rules.yaml".to_owned(), text.clone()));
                    notes.push("upsoak-rules.yaml: loaded".to_owned());
                }
            }
        }
        let config = json!({
            "global": global,
            "alerting": {"alertmanagers": [{"static_configs": [{"targets": [format!("127.0.0.1:{ALERTMANAGER_PORT}")]}]}]},
            "scrape_configs": jobs,
        });
        (
            serde_yaml::to_string(&config).unwrap_or_default(),
            rules,
            notes,
        )
    }

    /// The jobs prometheus-operator generates for a ServiceMonitor
    /// (pkg/prometheus/promcfg.go, `generateServiceMonitorConfig`): one per endpoint, named
    /// `serviceMonitor/<ns>/<name>/<i>`, with the target labels namespace, service, pod,
    /// container, endpoint and job (the Service's name), then the endpoint's relabelings.
    fn service_monitor_jobs(&self, sm: &Value, jobs: &mut Vec<Value>) -> usize {
        let ns = namespace_of(sm).to_owned();
        let spec = &sm["spec"];
        let namespaces: Option<Vec<String>> = if spec["namespaceSelector"]["any"] == true {
            None
        } else {
            let names = strings(&spec["namespaceSelector"]["matchNames"]);
            Some(if names.is_empty() {
                vec![ns.clone()]
            } else {
                names
            })
        };
        let mut count = 0;
        for (i, ep) in spec["endpoints"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let targets: Vec<Value> = self
                .endpoint_targets(namespaces.as_deref())
                .into_iter()
                .filter(|(s, t)| {
                    selects(&spec["selector"], &string_map(&s["metadata"]["labels"]))
                        && ep["port"].as_str().is_none_or(|p| {
                            t.labels
                                .get("__meta_kubernetes_endpoint_port_name")
                                .map(String::as_str)
                                == Some(p)
                        })
                })
                .map(|(_, t)| json!({"targets": [t.address], "labels": t.labels}))
                .collect();
            count += targets.len();
            let port = ep["port"].as_str().unwrap_or_default();
            let mut relabel = vec![
                json!({"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"}),
                json!({"source_labels": ["__meta_kubernetes_service_name"], "target_label": "service"}),
                json!({"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"}),
                json!({"source_labels": ["__meta_kubernetes_pod_container_name"], "target_label": "container"}),
                json!({"source_labels": ["__meta_kubernetes_service_name"], "target_label": "job", "replacement": "$1"}),
            ];
            if let Some(label) = spec["jobLabel"].as_str() {
                relabel.push(json!({"source_labels": [format!("__meta_kubernetes_service_label_{}", sanitize(label))], "target_label": "job", "regex": "(.+)", "replacement": "$1"}));
            }
            relabel.push(json!({"target_label": "endpoint", "replacement": port}));
            relabel.extend(
                ep["relabelings"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(snake_relabel),
            );
            let mut job = json!({
                "job_name": format!("serviceMonitor/{ns}/{}/{i}", sm["metadata"]["name"].as_str().unwrap_or_default()),
                "honor_labels": ep["honorLabels"].as_bool().unwrap_or(false),
                "metrics_path": ep["path"].as_str().unwrap_or("/metrics"),
                "static_configs": targets,
                "relabel_configs": relabel,
            });
            if let Some(iv) = ep["interval"].as_str() {
                job["scrape_interval"] = json!(iv);
            }
            if let Some(m) = ep["metricRelabelings"].as_array() {
                job["metric_relabel_configs"] = Value::Array(m.iter().map(snake_relabel).collect());
            }
            jobs.push(job);
        }
        count
    }

    /// Alertmanager's configuration as the stack builds it, with the notes on what was merged.
    /// `token_file` holds the webhook token a receiver's credentials name.
    pub fn alertmanager(&self, secrets_dir: &std::path::Path) -> (String, Vec<String>) {
        let mut notes = Vec::new();
        // kube-prometheus-stack's default `alertmanager.config` (charts/kube-prometheus-stack
        // values.yaml): everything to the `null` receiver; the prometheus-community chart's
        // alertmanager subchart: a `default-receiver` with no integrations. Neither notifies.
        let mut cfg = match self.target {
            Target::Operator => {
                json!({"route": {"group_by": ["namespace"], "group_wait": "30s", "group_interval": "5m", "repeat_interval": "12h", "receiver": "null",
                "routes": [{"receiver": "null", "matchers": ["alertname=\"Watchdog\""]}]}, "receivers": [{"name": "null"}]})
            }
            Target::Plain => {
                json!({"route": {"receiver": "default-receiver", "group_wait": "10s", "group_interval": "5m", "repeat_interval": "3h"}, "receivers": [{"name": "default-receiver"}]})
            }
        };
        if self.target == Target::Operator {
            // Every AlertmanagerConfig in every namespace: kube-prometheus-stack renders the
            // Alertmanager with `alertmanagerConfigSelector: {}` and
            // `alertmanagerConfigNamespaceSelector: {}` unless set. prometheus-operator
            // (pkg/alertmanager/amcfg.go) prepends each one's route under the root with the
            // matcher namespace="<its namespace>" and `continue: true`, and names its
            // receivers `<ns>/<name>/<receiver>`.
            let mut routes = Vec::new();
            for amc in self.rendered.of_kind("AlertmanagerConfig") {
                let ns = namespace_of(amc).to_owned();
                let name = amc["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                let prefix = format!("{ns}/{name}/");
                let Some(route) = amc["spec"]["route"].as_object() else {
                    continue;
                };
                let mut r = convert_route(&Value::Object(route.clone()), &prefix);
                let mut matchers = vec![json!(format!("namespace=\"{ns}\""))];
                matchers.extend(r["matchers"].as_array().cloned().unwrap_or_default());
                r["matchers"] = Value::Array(matchers);
                r["continue"] = json!(true);
                routes.push(r);
                for recv in amc["spec"]["receivers"].as_array().into_iter().flatten() {
                    let mut out = json!({"name": format!("{prefix}{}", recv["name"].as_str().unwrap_or_default())});
                    let mut hooks = Vec::new();
                    for w in recv["webhookConfigs"].as_array().into_iter().flatten() {
                        let mut h = json!({"url": w["url"], "send_resolved": w["sendResolved"].as_bool().unwrap_or(true)});
                        let cred = &w["httpConfig"]["authorization"]["credentials"];
                        if let (Some(secret), Some(key)) =
                            (cred["name"].as_str(), cred["key"].as_str())
                        {
                            let value = self
                                .rendered
                                .data("Secret", &ns, secret)
                                .and_then(|d| d.get(key).cloned());
                            let file = secrets_dir.join(format!("{ns}-{secret}-{key}"));
                            match value {
                                Some(v) => {
                                    let _ = std::fs::write(&file, v.trim());
                                }
                                None => notes.push(format!("AlertmanagerConfig {ns}/{name}: Secret {ns}/{secret} key {key} is not rendered")),
                            }
                            h["http_config"] = json!({"authorization": {"type": w["httpConfig"]["authorization"]["type"].as_str().unwrap_or("Bearer"), "credentials_file": file}});
                        }
                        hooks.push(h);
                    }
                    if !hooks.is_empty() {
                        out["webhook_configs"] = Value::Array(hooks);
                    }
                    if let Some(a) = cfg["receivers"].as_array_mut() {
                        a.push(out);
                    }
                }
                notes.push(format!(
                    "AlertmanagerConfig {ns}/{name}: merged (matcher namespace=\"{ns}\")"
                ));
            }
            let old = cfg["route"]["routes"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            routes.extend(old);
            cfg["route"]["routes"] = Value::Array(routes);
        }
        let mut text = String::new();
        let _ = write!(text, "{}", serde_yaml::to_string(&cfg).unwrap_or_default());
        (text, notes)
    }
}

/// An AlertmanagerConfig route (camelCase, `matchers` as objects) in Alertmanager's terms.
fn convert_route(r: &Value, prefix: &str) -> Value {
    let mut out = json!({});
    if let Some(recv) = r["receiver"].as_str() {
        out["receiver"] = json!(format!("{prefix}{recv}"));
    }
    for (from, to) in [
        ("groupBy", "group_by"),
        ("groupWait", "group_wait"),
        ("groupInterval", "group_interval"),
        ("repeatInterval", "repeat_interval"),
        ("continue", "continue"),
    ] {
        if !r[from].is_null() {
            out[to] = r[from].clone();
        }
    }
    let matchers: Vec<Value> = r["matchers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            let op = m["matchType"]
                .as_str()
                .unwrap_or(if m["regex"] == true { "=~" } else { "=" });
            json!(format!(
                "{}{op}{:?}",
                m["name"].as_str().unwrap_or_default(),
                m["value"].as_str().unwrap_or_default()
            ))
        })
        .collect();
    if !matchers.is_empty() {
        out["matchers"] = Value::Array(matchers);
    }
    let subs: Vec<Value> = r["routes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| convert_route(s, prefix))
        .collect();
    if !subs.is_empty() {
        out["routes"] = Value::Array(subs);
    }
    out
}

/// A ServiceMonitor relabeling (camelCase) as a Prometheus relabel config.
fn snake_relabel(r: &Value) -> Value {
    let mut out = json!({});
    for (from, to) in [
        ("sourceLabels", "source_labels"),
        ("targetLabel", "target_label"),
        ("separator", "separator"),
        ("regex", "regex"),
        ("modulus", "modulus"),
        ("replacement", "replacement"),
        ("action", "action"),
    ] {
        if !r[from].is_null() {
            out[to] = if from == "action" {
                json!(r[from].as_str().unwrap_or_default().to_lowercase())
            } else {
                r[from].clone()
            };
        }
    }
    out
}
