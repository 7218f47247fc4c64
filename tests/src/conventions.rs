//! A stack under real conventions: Prometheus scrapes the simulator the way kube-prometheus-stack
//! scrapes Agones through the ServiceMonitors of Agones' Helm chart, and the agent reads the
//! default `rules/slos.yaml` unchanged.
//!
//! - Jobs: a ServiceMonitor's job is the Service's name, so the simulator (which serves all of
//!   Agones' metrics from one process) is scraped three times, as
//!   `agones-controller-metrics-service`, `agones-extensions-metrics-service` and
//!   `agones-allocator-metrics-service` (Agones `install/helm/agones/templates/service.yaml`,
//!   `service/allocation.yaml`); the sidecar and the agent as `upsoak-chaos` and `upsoak-agent`,
//!   the Services of deploy/base. These are the defaults of `vars:` in rules/slos.yaml.
//! - Scrapes every second and a baseline half a minute after start, so two `vars` of the
//!   default specs are set for this stack: `scraped_within` (how recent a job's `up` must be
//!   for its SLOs to have data) to 10 s, `warmup_seconds` (a process's warm-up left out of its
//!   memory and CPU) to 10 s. Nothing else changes.
//! - Relabelling: prometheus-operator sets the target labels `namespace`, `service`, `pod`
//!   and `endpoint` on every target, and Agones' ServiceMonitor adds `kubernetes_namespace` and
//!   `kubernetes_pod_name` (`templates/service-monitor.yaml`). With `honor_labels: false` (the
//!   default) Agones' own `namespace` label then arrives as `exported_namespace`.
//!
//! The three controller-side jobs scrape the same process, so `agones_*` series come three
//! times; the default SLOs scope them to `${controller_job}`, which is what keeps them whole
//! on a real stack too (where a second `kubernetes-pods` job may scrape the same pods).

use std::path::Path;

/// The Agones jobs, as Agones' chart names its metrics Services.
pub const AGONES_JOBS: [(&str, &str); 3] = [
    ("agones-controller-metrics-service", "agones-controller"),
    ("agones-extensions-metrics-service", "agones-extensions"),
    ("agones-allocator-metrics-service", "agones-allocator"),
];

/// One static job with the target labels prometheus-operator and the ServiceMonitor set.
fn job(name: &str, target: &str, namespace: &str, service: &str, pod: &str) -> String {
    format!(
        "  - job_name: {name}\n    honor_labels: false\n    static_configs:\n      - targets: ['{target}']\n        labels: {{ namespace: {namespace}, service: {service}, endpoint: metrics, pod: {pod}-0, kubernetes_namespace: {namespace}, kubernetes_pod_name: {pod}-0 }}\n"
    )
}

/// The Prometheus configuration: the sidecar and the agent, and Agones' three jobs when
/// `agones` (false: as when kube-prometheus-stack does not select Agones' ServiceMonitor).
pub fn prometheus_config(sim: &str, chaos_port: u16, agent_port: u16, agones: bool) -> String {
    let mut s =
        "global: { scrape_interval: 1s, evaluation_interval: 1s }\nscrape_configs:\n".to_owned();
    if agones {
        for (name, deployment) in AGONES_JOBS {
            s.push_str(&job(name, sim, "agones-system", name, deployment));
        }
    }
    s.push_str(&job(
        "upsoak-chaos",
        &format!("127.0.0.1:{chaos_port}"),
        "upsoak",
        "upsoak-chaos",
        "upsoak-chaos",
    ));
    s.push_str(&job(
        "upsoak-agent",
        &format!("127.0.0.1:{agent_port}"),
        "upsoak",
        "upsoak-agent",
        "upsoak-agent",
    ));
    s
}

/// `vars.scraped_within` as shipped (three of the 30 s scrapes of Agones' ServiceMonitor) and
/// as this stack sets it: about three of its 1 s scrapes, with room for a loaded machine.
pub const SCRAPED_WITHIN: (&str, &str) = ("scraped_within: 90s", "scraped_within: 10s");

/// Seconds of [`SCRAPED_WITHIN`] as set here: a job not scraped for this long has no data.
pub const SCRAPED_WITHIN_S: i64 = 10;

/// `vars.warmup_seconds` as shipped (2 minutes after a process starts) and as set here: the
/// baseline is recorded half a minute after the simulator started, and it never restarts.
pub const WARMUP: (&str, &str) = ("warmup_seconds: 120", "warmup_seconds: 10");

/// The default SLO specs as shipped, with the user's `vars` that depend on the stack's timing
/// set for this one, as the file asks a user to: [`SCRAPED_WITHIN`], [`WARMUP`].
pub fn default_slos() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules/slos.yaml");
    let mut text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    for (shipped, here) in [SCRAPED_WITHIN, WARMUP] {
        assert!(
            text.contains(&format!("  {shipped}\n")),
            "{}: no `{shipped}` in vars",
            path.display()
        );
        text = text.replace(shipped, here);
    }
    text
}

/// The SLOs of the default specs that read Agones' scraped metrics (not the agent's probes,
/// which read the Kubernetes API): what must go inconclusive when Agones is not scraped.
pub const SCRAPED_AGONES_SLOS: [&str; 13] = [
    "control-plane/controller-scraped",
    "control-plane/extensions-scraped",
    "control-plane/allocator-scraped",
    "control-plane/controller-memory-growth",
    "control-plane/extensions-memory-growth",
    "control-plane/allocator-memory-growth",
    "control-plane/controller-cpu",
    "control-plane/extensions-cpu",
    "control-plane/allocator-cpu",
    "fleets/fleet-converged",
    "fleets/gameservers-ready-when-demanded",
    "fleets/gameservers-failing",
    "fleets/gameservers-unhealthy",
];
