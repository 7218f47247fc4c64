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
  optional), runs as non-root with a read-only root filesystem, no privilege escalation and no
  capabilities, with requests and limits.
- Every RoleBinding binds a ServiceAccount that exists, and only Roles that exist.

Usage: check.py RENDERED.yaml OUT_DIR. Prints what it checked; exits 1 with every problem.
"""

import os
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
CRD_KINDS = {"ServiceMonitor", "PrometheusRule"}
# Roles that exist in every cluster.
BUILTIN_CLUSTER_ROLES = {"cluster-admin", "admin", "edit", "view"}


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
        if not services:
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


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2]))
