"""Checks one rendered overlay (`kubectl kustomize deploy/overlays/X > X.yaml`) for `make deploy-check`.

- Kubernetes objects validate, strictly (unknown fields refused), against the JSON schemas that
  the pinned kubernetes-validate bundles, for the oldest and newest Kubernetes it is checked on.
- prometheus-operator objects have no schema there: a ServiceMonitor's fields are checked against
  the documented monitoring.coreos.com/v1 fields and its selector and port against the rendered
  Services; a PrometheusRule's spec is written out for `promtool check rules`.
- The ConfigMap holding a scrape-config snippet and rule files is written out as a complete
  prometheus.yml for `promtool check config` (Kubernetes service discovery, which Debian's
  promtool lacks, is checked here by field name and stands in as a static target there).
- Every Deployment references ConfigMaps, Secrets, PVCs and a ServiceAccount that exist (or are
  optional), gets no Service environment variables (enableServiceLinks), runs as non-root with a read-only root filesystem, no privilege escalation and no
  capabilities, with requests and limits.
- Every RoleBinding binds a ServiceAccount that exists, and only Roles that exist.
- The Agones namespace is one value (ConfigMap upsoak-agones): the probe Role and RoleBinding
  and the ServiceMonitors of Agones' Services are in it.
- ServiceMonitors of Agones' Services select, by label and port, Services as Agones' chart
  v1.60.0 renders them (AGONES_SERVICES) and give exactly the jobs of the SLO specs' `vars`.
- The Fleet is the one the Producer loads (sidecar.yaml `producer`), in the namespace of the
  Role that grants it; the files sidecar.yaml names under the ConfigMap's mount are in it; the
  Agones values keep Agones' own ServiceMonitor off.
- An AlertmanagerConfig's receivers, Secrets and webhook URL exist, and its route (with the
  operator's namespace="<its namespace>" matcher) takes an alert as the agent sends it.

Usage: check.py RENDERED.yaml OUT_DIR. Prints what it checked; exits 1 with every problem.
"""

import os
import re
import sys

import kubernetes_validate
import yaml

K8S_VERSIONS = ["1.30.0", "1.37.0"]

# monitoring.coreos.com/v1 ServiceMonitor fields (prometheus-operator API reference).
SERVICE_MONITOR_SPEC = {
    "attachMetadata", "bodySizeLimit", "convertClassicHistogramsToNHCB", "endpoints",
    "fallbackScrapeProtocol", "jobLabel", "keepDroppedTargets", "labelLimit",
    "labelNameLengthLimit", "labelValueLengthLimit", "namespaceSelector",
    "nativeHistogramBucketLimit", "nativeHistogramMinBucketFactor", "podTargetLabels",
    "sampleLimit", "scrapeClass", "scrapeClassicHistograms", "scrapeProtocols", "selector",
    "selectorMechanism", "serviceDiscoveryRole", "targetLabels", "targetLimit",
}
SERVICE_MONITOR_ENDPOINT = {
    "authorization", "basicAuth", "bearerTokenFile", "bearerTokenSecret", "enableHttp2",
    "filterRunning", "followRedirects", "honorLabels", "honorTimestamps", "interval",
    "metricRelabelings", "noProxy", "oauth2", "params", "path", "port", "proxyConnectHeader",
    "proxyFromEnvironment", "proxyUrl", "relabelings", "scheme", "scrapeTimeout", "targetPort",
    "tlsConfig", "trackTimestampsStaleness",
}
# Prometheus kubernetes_sd_config fields and roles (Prometheus configuration reference).
KUBERNETES_SD = {
    "api_server", "role", "kubeconfig_file", "namespaces", "selectors", "attach_metadata",
    "basic_auth", "authorization", "oauth2", "follow_redirects", "enable_http2", "tls_config",
    "proxy_url", "no_proxy", "proxy_from_environment", "proxy_connect_header",
}
KUBERNETES_SD_ROLES = {"node", "service", "pod", "endpoints", "endpointslice", "ingress"}
CRD_KINDS = {"ServiceMonitor", "PrometheusRule", "AlertmanagerConfig", "Fleet"}
# Agones' Services in its namespace, as its Helm chart v1.60.0 renders them with default values
# (install/helm/agones/templates/controller-metrics-service.yaml, service.yaml,
# extensions-metrics-service.yaml, service/allocation.yaml, ping.yaml): name -> (labels, port
# names). Every one also has app=agones, chart=agones-<version>, release=<release>, heritage=Helm.
AGONES_SERVICES = {
    "agones-controller-metrics-service": ({"agones.dev/role": "controller"}, ["metrics"]),
    "agones-controller-service": ({"agones.dev/role": "extensions"}, ["webhooks", "web"]),
    "agones-extensions-metrics-service": ({"agones.dev/role": "extensions"}, ["metrics"]),
    "agones-allocator": ({"component": "allocator"}, ["https", "grpc"]),
    "agones-allocator-metrics-service": ({"multicluster.agones.dev/role": "allocator"}, ["http"]),
    "agones-ping-http-service": ({"component": "ping"}, ["http"]),
    "agones-ping-udp-service": ({"component": "ping"}, ["udp"]),
}
AGONES_CHART_LABELS = {"app": "agones", "chart": "agones-1.60.0", "release": "agones", "heritage": "Helm"}
# The `vars` of the SLO specs that name Agones' jobs.
AGONES_JOB_VARS = ["controller_job", "extensions_job", "allocator_job"]
# Roles that exist in every cluster.
BUILTIN_CLUSTER_ROLES = {"cluster-admin", "admin", "edit", "view"}


def selects(selector, labels):
    """True when a LabelSelector (matchLabels, matchExpressions) selects `labels`."""
    for k, v in selector.get("matchLabels", {}).items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions", []):
        k, op, vals = e["key"], e["operator"], e.get("values", [])
        if op == "In" and labels.get(k) not in vals:
            return False
        if op == "NotIn" and labels.get(k) in vals:
            return False
        if op == "Exists" and k not in labels:
            return False
        if op == "DoesNotExist" and k in labels:
            return False
    return True


def matches(matcher, labels):
    """An AlertmanagerConfig v1alpha1 matcher against an alert's labels."""
    value = labels.get(matcher["name"], "")
    kind = matcher.get("matchType") or ("=~" if matcher.get("regex") else "=")
    if kind == "=":
        return value == matcher["value"]
    if kind == "!=":
        return value != matcher["value"]
    full = re.fullmatch(matcher["value"], value) is not None
    return full if kind == "=~" else not full


def main(rendered, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    with open(rendered) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    problems = []
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)

    def where(d):
        m = d.get("metadata", {})
        return f"{d['kind']} {m.get('namespace', '-')}/{m.get('name')}"

    def names(kind, ns=None):
        return {
            d["metadata"]["name"]
            for d in by_kind.get(kind, [])
            if ns is None or d["metadata"].get("namespace") == ns
        }

    def configmap(name, ns):
        """The rendered ConfigMap by its name (generated ones end in a hash) or {}."""
        for d in by_kind.get("ConfigMap", []):
            if d["metadata"].get("namespace") == ns and d["metadata"]["name"] == name:
                return d
        return {}

    validated = 0
    for d in docs:
        if d["kind"] in CRD_KINDS:
            continue
        for v in K8S_VERSIONS:
            try:
                kubernetes_validate.validate(d, v, strict=True)
            except kubernetes_validate.ValidationError as e:
                problems.append(f"{where(d)} (Kubernetes {v}): {e.message} at {list(e.path)}")
            except kubernetes_validate.SchemaNotFoundError:
                problems.append(f"{where(d)}: no Kubernetes {v} schema for {d['apiVersion']}")
        validated += 1

    for sm in by_kind.get("ServiceMonitor", []):
        if sm["apiVersion"] != "monitoring.coreos.com/v1":
            problems.append(f"{where(sm)}: apiVersion {sm['apiVersion']}")
        spec = sm.get("spec", {})
        for k in set(spec) - SERVICE_MONITOR_SPEC:
            problems.append(f"{where(sm)}: unknown field spec.{k}")
        ns = spec.get("namespaceSelector", {}).get("matchNames", [sm["metadata"]["namespace"]])
        want = spec.get("selector", {}).get("matchLabels", {})
        services = [
            s for s in by_kind.get("Service", [])
            if s["metadata"].get("namespace") in ns
            and all(s["metadata"].get("labels", {}).get(k) == v for k, v in want.items())
        ]
        if not services and not is_agones_monitor(sm):
            problems.append(f"{where(sm)}: selects no rendered Service")
        for i, ep in enumerate(spec.get("endpoints", [])):
            for k in set(ep) - SERVICE_MONITOR_ENDPOINT:
                problems.append(f"{where(sm)}: unknown field spec.endpoints[{i}].{k}")
            for s in services:
                if ep.get("port") not in {p.get("name") for p in s["spec"]["ports"]}:
                    problems.append(
                        f"{where(sm)}: endpoints[{i}].port {ep.get('port')!r} is no port of {where(s)}"
                    )
        if not spec.get("endpoints"):
            problems.append(f"{where(sm)}: no endpoints")

    rule_files = []
    for pr in by_kind.get("PrometheusRule", []):
        if pr["apiVersion"] != "monitoring.coreos.com/v1":
            problems.append(f"{where(pr)}: apiVersion {pr['apiVersion']}")
        if set(pr.get("spec", {})) != {"groups"}:
            problems.append(f"{where(pr)}: spec must hold `groups` only")
        path = os.path.join(out_dir, f"prometheusrule-{pr['metadata']['name']}.rules.yaml")
        with open(path, "w") as f:
            yaml.safe_dump(pr["spec"], f, sort_keys=False)
        rule_files.append(path)

    for cm in by_kind.get("ConfigMap", []):
        data = cm.get("data", {})
        if "scrape-configs.yaml" not in data:
            continue
        for name, text in data.items():
            with open(os.path.join(out_dir, name), "w") as f:
                f.write(text)
        rules = [n for n in data if n.endswith("rules.yaml")]
        scrape = yaml.safe_load(data["scrape-configs.yaml"])
        # Debian's promtool is built without Kubernetes service discovery: the SD blocks are
        # checked here, then stand in as a static target so promtool checks the rest (relabel
        # configs, intervals, the rule files).
        for job in scrape:
            for i, sd in enumerate(job.pop("kubernetes_sd_configs", [])):
                for k in set(sd) - KUBERNETES_SD:
                    problems.append(f"{where(cm)}: job {job['job_name']}: kubernetes_sd_configs[{i}].{k} is unknown")
                if sd.get("role") not in KUBERNETES_SD_ROLES:
                    problems.append(f"{where(cm)}: job {job['job_name']}: role {sd.get('role')!r} is unknown")
                for k in set(sd.get("namespaces", {})) - {"names", "own_namespace"}:
                    problems.append(f"{where(cm)}: job {job['job_name']}: namespaces.{k} is unknown")
                job.setdefault("static_configs", []).append({"targets": ["kubernetes-sd.invalid:80"]})
        prom = {
            "global": {"scrape_interval": "15s"},
            "rule_files": rules,
            "scrape_configs": scrape,
        }
        with open(os.path.join(out_dir, "prometheus.yml"), "w") as f:
            yaml.safe_dump(prom, f, sort_keys=False)
        rule_files.append(os.path.join(out_dir, "prometheus.yml"))

    for dep in by_kind.get("Deployment", []):
        ns = dep["metadata"]["namespace"]
        pod = dep["spec"]["template"]["spec"]
        sa = pod.get("serviceAccountName")
        if sa not in names("ServiceAccount", ns):
            problems.append(f"{where(dep)}: ServiceAccount {sa!r} is not rendered")
        # The kubelet's Service variables (UPSOAK_AGENT_SERVICE_HOST, …) would reach the
        # sidecar's UPSOAK_… configuration overrides as unknown keys.
        if pod.get("enableServiceLinks") is not False:
            problems.append(f"{where(dep)}: enableServiceLinks is not false")
        psc = pod.get("securityContext", {})
        if psc.get("runAsNonRoot") is not True:
            problems.append(f"{where(dep)}: pod securityContext.runAsNonRoot is not true")
        for vol in pod.get("volumes", []):
            for key, kind, field in [
                ("configMap", "ConfigMap", "name"),
                ("secret", "Secret", "secretName"),
                ("persistentVolumeClaim", "PersistentVolumeClaim", "claimName"),
            ]:
                if key in vol:
                    ref = vol[key][field]
                    if ref not in names(kind, ns) and not vol[key].get("optional"):
                        problems.append(f"{where(dep)}: volume {vol['name']}: {kind} {ref!r} is not rendered")
        for c in pod.get("initContainers", []) + pod["containers"]:
            sc = c.get("securityContext", {})
            if sc.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{where(dep)}: {c['name']}: root filesystem is writable")
            if sc.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{where(dep)}: {c['name']}: privilege escalation is allowed")
            if sc.get("capabilities", {}).get("drop") != ["ALL"]:
                problems.append(f"{where(dep)}: {c['name']}: capabilities are not all dropped")
            res = c.get("resources", {})
            if not res.get("requests") or not res.get("limits"):
                problems.append(f"{where(dep)}: {c['name']}: requests and limits are not both set")
            for ef in c.get("envFrom", []):
                ref = ef.get("configMapRef", {}).get("name")
                if ref and ref not in names("ConfigMap", ns):
                    problems.append(f"{where(dep)}: {c['name']}: envFrom ConfigMap {ref!r} is not rendered")
            for e in c.get("env", []):
                ref = e.get("valueFrom", {}).get("configMapKeyRef")
                if ref and ref.get("key") not in configmap(ref["name"], ns).get("data", {}):
                    problems.append(
                        f"{where(dep)}: {c['name']}: env {e['name']}: ConfigMap {ref['name']!r} "
                        f"with key {ref.get('key')!r} is not rendered"
                    )

    for kind in ["RoleBinding", "ClusterRoleBinding"]:
        for rb in by_kind.get(kind, []):
            for s in rb.get("subjects", []):
                if s["kind"] == "ServiceAccount" and s["name"] not in names("ServiceAccount", s["namespace"]):
                    problems.append(f"{where(rb)}: subject ServiceAccount {s['namespace']}/{s['name']} is not rendered")
            ref = rb["roleRef"]
            if ref["kind"] == "Role":
                known = names("Role", rb["metadata"]["namespace"])
            else:
                known = names("ClusterRole") | BUILTIN_CLUSTER_ROLES
            if ref["name"] not in known:
                problems.append(f"{where(rb)}: {ref['kind']} {ref['name']!r} is not rendered")

    problems += check_upsoak(by_kind, where, names, configmap)

    if problems:
        print(f"{rendered}: {len(problems)} problems", file=sys.stderr)
        for p in problems:
            print(f"  {p}", file=sys.stderr)
        return 1
    kinds = ", ".join(f"{len(v)} {k}" for k, v in sorted(by_kind.items()))
    print(
        f"{rendered}: {validated} objects valid against Kubernetes {' and '.join(K8S_VERSIONS)} "
        f"(strict); checked {kinds}"
    )
    with open(os.path.join(out_dir, "promtool-inputs"), "w") as f:
        f.write("\n".join(rule_files) + "\n")
    return 0


def is_agones_monitor(sm):
    return sm["metadata"].get("labels", {}).get("app.kubernetes.io/name") == "upsoak-agones-metrics"


def check_upsoak(by_kind, where, names, configmap):
    """upsoak's own cross-object rules (see the module's docstring)."""
    problems = []
    agones_cm = [d for d in by_kind.get("ConfigMap", []) if d["metadata"]["name"].startswith("upsoak-agones-")]
    if len(agones_cm) != 1 or "namespace" not in agones_cm[0].get("data", {}):
        return ["ConfigMap upsoak-agones with key `namespace` is not rendered once"]
    agones_ns = agones_cm[0]["data"]["namespace"]
    for kind in ["Role", "RoleBinding"]:
        for d in by_kind.get(kind, []):
            if d["metadata"]["name"] == "upsoak-agent-probe" and d["metadata"]["namespace"] != agones_ns:
                problems.append(f"{where(d)}: not in the Agones namespace {agones_ns!r} (ConfigMap upsoak-agones)")

    # The ServiceMonitors of Agones' Services, against the chart's Services.
    slos = next(
        (yaml.safe_load(d["data"]["slos.yaml"]) for d in by_kind.get("ConfigMap", [])
         if d["metadata"]["name"].startswith("upsoak-agent-slos-")),
        {},
    )
    want_jobs = {slos.get("vars", {}).get(v) for v in AGONES_JOB_VARS}
    monitors = [sm for sm in by_kind.get("ServiceMonitor", []) if is_agones_monitor(sm)]
    jobs = []
    for sm in monitors:
        spec = sm["spec"]
        if sm["metadata"]["namespace"] != agones_ns:
            problems.append(f"{where(sm)}: not in the Agones namespace {agones_ns!r}")
        if spec.get("namespaceSelector", {}).get("matchNames") != [agones_ns]:
            problems.append(f"{where(sm)}: namespaceSelector is not [{agones_ns!r}]")
        for ep in spec.get("endpoints", []):
            got = [
                name for name, (labels, ports) in AGONES_SERVICES.items()
                if selects(spec.get("selector", {}), {**AGONES_CHART_LABELS, **labels})
                and ep.get("port") in ports
            ]
            if len(got) != 1:
                problems.append(f"{where(sm)}: port {ep.get('port')!r} gives the jobs {got}, not one of Agones' Services")
            jobs += got
    if monitors and sorted(jobs) != sorted(want_jobs):
        problems.append(f"ServiceMonitors of Agones give the jobs {sorted(jobs)}, the SLO specs' vars want {sorted(want_jobs)}")

    # The sidecar's configuration: its files, the Fleet, the Agones values.
    chaos_cm = [d for d in by_kind.get("ConfigMap", []) if d["metadata"]["name"].startswith("upsoak-chaos-config-")]
    if len(chaos_cm) != 1:
        return problems + ["ConfigMap upsoak-chaos-config is not rendered once"]
    files = chaos_cm[0].get("data", {})
    sidecar = yaml.safe_load(files.get("sidecar.yaml", "{}")) or {}
    applier = sidecar.get("wanderer", {}).get("applier", {})
    mounted = [sidecar.get("wanderer", {}).get("space", "")] + list(applier.get("values_files", []))
    for path in mounted:
        if path.startswith("/etc/upsoak/chaos/") and path.rsplit("/", 1)[1] not in files:
            problems.append(f"{where(chaos_cm[0])}: sidecar.yaml names {path}, which it does not hold")
    if "agones-values.yaml" in files:
        values = yaml.safe_load(files["agones-values.yaml"]) or {}
        sm_on = values.get("agones", {}).get("metrics", {}).get("serviceMonitor", {}).get("enabled")
        if sm_on is not False:
            problems.append(
                f"{where(chaos_cm[0])}: agones-values.yaml must set agones.metrics.serviceMonitor.enabled "
                "false (without prometheus-operator helm cannot create it; with it, upsoak's own scrape Agones)"
            )
    producer = sidecar.get("producer", {})
    pns = producer.get("namespace", "default")
    fleets = {(f["metadata"].get("namespace"), f["metadata"]["name"]): f for f in by_kind.get("Fleet", [])}
    for f in producer.get("fleets", []):
        if (pns, f.get("name")) not in fleets:
            problems.append(f"Fleet {pns}/{f.get('name')}: the Producer loads it (sidecar.yaml) but it is not rendered")
    if "upsoak-chaos-producer" not in names("Role", pns):
        problems.append(f"Role {pns}/upsoak-chaos-producer: not rendered in the Producer's namespace")
    for (ns, name), f in fleets.items():
        if f["apiVersion"] != "agones.dev/v1":
            problems.append(f"{where(f)}: apiVersion {f['apiVersion']}")
        spec = f.get("spec", {})
        if not isinstance(spec.get("replicas"), int) or spec["replicas"] < 1:
            problems.append(f"{where(f)}: spec.replicas is not a positive integer")
        gs = spec.get("template", {}).get("spec", {})
        if not gs.get("ports"):
            problems.append(f"{where(f)}: no game server ports")
        for c in gs.get("template", {}).get("spec", {}).get("containers", []):
            if not c.get("image") or not c.get("resources", {}).get("limits"):
                problems.append(f"{where(f)}: container {c.get('name')}: no image or no limits")

    # AlertmanagerConfig: its references, and that the agent's alerts take its route.
    agent = next((d for d in by_kind.get("Deployment", []) if d["metadata"]["name"] == "upsoak-agent"), None)
    agent_ns_from_pod = agent is not None and any(
        e["name"] == "UPSOAK_NAMESPACE"
        and e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.namespace"
        for c in agent["spec"]["template"]["spec"]["containers"] for e in c.get("env", [])
    )
    for amc in by_kind.get("AlertmanagerConfig", []):
        ns = amc["metadata"]["namespace"]
        spec = amc.get("spec", {})
        if amc["apiVersion"] != "monitoring.coreos.com/v1alpha1":
            problems.append(f"{where(amc)}: apiVersion {amc['apiVersion']}")
        receivers = {r["name"]: r for r in spec.get("receivers", [])}
        route = spec.get("route", {})
        if route.get("receiver") not in receivers:
            problems.append(f"{where(amc)}: route.receiver {route.get('receiver')!r} is no receiver")
        for r in receivers.values():
            for w in r.get("webhookConfigs", []):
                cred = w.get("httpConfig", {}).get("authorization", {}).get("credentials", {})
                secret = next((d for d in by_kind.get("Secret", []) if d["metadata"]["name"] == cred.get("name")
                               and d["metadata"].get("namespace") == ns), None)
                if secret is None or cred.get("key") not in {**secret.get("data", {}), **secret.get("stringData", {})}:
                    problems.append(f"{where(amc)}: receiver {r['name']}: Secret {ns}/{cred.get('name')} key {cred.get('key')!r} is not rendered")
                url = w.get("url", "")
                host = url.split("://", 1)[-1].split("/", 1)[0]
                svc, _, rest = host.partition(".")
                svc_ns = rest.split(".", 1)[0]
                port = int(host.rsplit(":", 1)[1]) if ":" in host else 80
                target = next((d for d in by_kind.get("Service", []) if d["metadata"]["name"] == svc
                               and d["metadata"].get("namespace") == svc_ns), None)
                if target is None or port not in {p["port"] for p in target["spec"]["ports"]}:
                    problems.append(f"{where(amc)}: receiver {r['name']}: {url} is no rendered Service and port")
        # An alert as the agent sends it (agent/src/sinks.rs), with `namespace` from UPSOAK_NAMESPACE.
        if agent is not None and agent["metadata"]["namespace"] == ns and agent_ns_from_pod:
            alert = {"alertname": "UpsoakSloViolation", "namespace": ns, "slo": "x", "group": "x",
                     "severity": "critical", "from_version": "1.59.0", "to_version": "1.60.0"}
            operator = [{"name": "namespace", "value": ns, "matchType": "="}]
            if not all(matches(m, alert) for m in route.get("matchers", []) + operator):
                problems.append(f"{where(amc)}: its route (with namespace={ns!r}) does not take the agent's alerts")
        else:
            problems.append(f"{where(amc)}: the agent does not send alerts labelled namespace={ns!r} (UPSOAK_NAMESPACE)")
    return problems


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2]))
