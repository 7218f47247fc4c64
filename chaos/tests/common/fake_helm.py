# A fake `helm` (helm cannot run here: no cluster). The test writes this script with its state
# directory and the simulator's URL filled in; it is no copy of helm. It checks each call against
# helm 3's documented CLI (helm.sh/docs/helm: upgrade, status, list, get values, rollback,
# version) and models the release storage those docs describe:
# - a revision per upgrade; `pending-install`/`pending-upgrade` while it runs, left so when the
#   process is killed; `deployed` then, the previous one `superseded`;
# - an upgrade while the release is pending fails ("another operation ... is in progress");
# - `--atomic`: a failed or timed-out upgrade is marked `failed` and rolled back to the newest
#   `deployed` or `superseded` revision (helm's pkg/action/upgrade.go `failRelease`): a NEW
#   revision, `pending-rollback` while the rollback waits up to `--timeout` again
#   (`STATE/rollback-delay` SECONDS steers how long; killed meanwhile the release stays
#   `pending-rollback`), then `deployed`, or `failed` past the timeout (pkg/action/rollback.go
#   `prepareRollback`, `performRollback`); `--atomic` implies `--wait` (upgrade.go: `u.Wait =
#   u.Wait || u.Atomic`); without either, helm returns once the objects are applied; the wait
#   includes LoadBalancer Services' ingress (pkg/kube/ready.go `serviceReady`), read from the
#   simulator's Services (`load_balancer: false` there: never ready);
# - `helm rollback REL [REV]`: REV, else blindly the revision below the last (prepareRollback);
#   the revision left pending stays as it was (only deployed ones are superseded);
# - `helm history REL -o json` (revision, updated, status, chart, app_version, description);
# - values: with any `-f` and neither `--reuse-values` nor `--reset-then-reuse-values`, the new
#   revision holds only the files' values (the install's earlier values are reset);
#   `--reuse-values` renders the new chart with the OLD chart's coalesced values (upgrade.go
#   `reuseValues`: `chart.Values = oldVals`), `agones.image.tag` included, so a version change
#   under it runs the old images: the fake installs the image tag's version on the simulator,
#   whose Deployments then show those images (what the Wanderer's rollout check reads);
# - `list` shows only deployed or failed releases unless `--all`;
# - `get values` shows the values given (null when none), `--all` the chart's defaults under them.
# The install itself goes to the simulator (POST /upsoak/v1/install), so the cluster side is real.
# - `repo add NAME URL` writes helm's repository file ($HELM_REPOSITORY_CONFIG, else
#   $HELM_CONFIG_HOME/repositories.yaml; helm's pkg/helmpath); an upgrade of `NAME/chart` fails
#   with "repo NAME not found" when that file lists no NAME. Only when one of those variables is
#   set: the tests that run the fake without them stand for a machine whose repositories are set.
# - a chart that renders a kind the cluster does not serve fails before any revision exists,
#   as helm's performUpgrade (pkg/action/upgrade.go) fails to build the new manifest: "resource
#   mapping not found ... no matches for kind". Agones' chart renders a ServiceMonitor when
#   agones.metrics.prometheusEnabled (default true) and .serviceMonitor.enabled (default false)
#   (install/helm/agones/templates/service-monitor.yaml, service/allocation.yaml). Which API
#   groups the cluster serves beyond the built-in ones: `STATE/api-groups`, one per line; when
#   the file is absent every group is served.
# `STATE/mode` steers upgrades: `ok`, `hang` (pending until killed), `ignore-term` (as hang, and
# deaf to SIGTERM), `slow SECONDS` (slower than a short --timeout), `fail` (the wait fails at
# once, as when a Deployment's rollout stops: then --atomic's rollback runs).
import json, os, re, signal, subprocess, sys, time, urllib.request

STATE = "@STATE@"
SIM = "@SIM@"
TUNABLES = json.loads('@TUNABLES@')  # chart path -> simulator tunable name
DB = os.path.join(STATE, "releases.json")
# The Agones chart's defaults (install/helm/agones/values.yaml) at the paths the Wanderer's
# space walks, for `get values --all`; the rest of the chart's values is left out.
def chart_defaults(version):
    """The chart's defaults of chart `version`: the image tag is the chart's appVersion."""
    d = json.loads(json.dumps(CHART_DEFAULTS))
    d["agones"]["image"] = {"tag": version}
    return d


CHART_DEFAULTS = {"agones": {
    "featureGates": "",
    "controller": {"logLevel": "info", "allocationBatchWaitTime": "500ms"},
    "extensions": {"logLevel": "info", "allocationBatchWaitTime": "500ms"},
    "allocator": {"logLevel": "info", "allocationBatchWaitTime": "500ms", "replicas": 3},
}}


def fail(msg):
    sys.stderr.write("Error: " + msg + "\n")
    sys.exit(1)


def load():
    try:
        with open(DB) as f:
            return json.load(f)
    except FileNotFoundError:
        return []


def save(revs):
    tmp = DB + ".tmp"
    with open(tmp, "w") as f:
        json.dump(revs, f)
    os.replace(tmp, DB)


def mode():
    try:
        with open(os.path.join(STATE, "mode")) as f:
            return f.read().split()
    except FileNotFoundError:
        return ["ok"]


def duration(s):
    total, rest = 0.0, s
    for n, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", s):
        total += float(n) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]
        rest = rest.replace(n + unit, "", 1)
    if rest or not s:
        fail('time: invalid duration "%s"' % s)
    return total


def merge(base, over):
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            merge(base[k], v)
        else:
            base[k] = v
    return base


def get(values, path):
    for k in path.split("."):
        if not isinstance(values, dict) or k not in values:
            return None
        values = values[k]
    return values


def sim(method, path, body=None):
    req = urllib.request.Request(SIM + path, method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def computed(r):
    """The values a revision runs with: its chart's values (the old chart's under
    `--reuse-values`), then the user-supplied ones."""
    base = r.get("chart_values") or chart_defaults(r["chart"])
    return merge(json.loads(json.dumps(base)), r["config"] or {})


def install_on_sim(version, config, chart_values=None):
    values = merge(json.loads(json.dumps(chart_values or chart_defaults(version))), config or {})
    # The images the chart renders: `agones.image.tag`, the chart's appVersion unless set.
    version = get(values, "agones.image.tag") or version
    tunables = {}
    for path, name in TUNABLES.items():
        v = get(config, path)
        if isinstance(v, str) and v.endswith("ms"):
            v = int(v[:-2])
        if v is not None:
            tunables[name] = v
    body = {"version": version, "featureGates": get(config, "agones.featureGates") or "",
            "tunables": tunables}
    return sim("POST", "/upsoak/v1/install", body)


# Which chart value sets each Service's type (install/helm/agones/values.yaml).
SERVICE_TYPE_PATHS = {
    "agones-allocator": "agones.allocator.service.serviceType",
    "agones-ping-http-service": "agones.ping.http.serviceType",
    "agones-ping-udp-service": "agones.ping.udp.serviceType",
}


def services_ready(config):
    """helm's --wait on Services (pkg/kube/ready.go `serviceReady`): a LoadBalancer Service is
    ready once `status.loadBalancer.ingress` has an entry, which clusters without a load
    balancer never fill in. helm waits on the objects it rendered: a Service the release's
    values (`config`) render as another type (NodePort) is not waited for. The ingress is read
    from the simulator's Services; a simulator that serves none (older ones: 404) has nothing
    to wait for."""
    status, body = sim("GET", "/api/v1/namespaces/agones-system/services")
    if status != 200:
        return True
    for svc in (body or {}).get("items") or []:
        name = (svc.get("metadata") or {}).get("name")
        rendered = get(config, SERVICE_TYPE_PATHS.get(name, "")) or \
            (svc.get("spec") or {}).get("type")
        if rendered == "LoadBalancer" and \
                not ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress"):
            return False
    return True


def settled(deadline, config):
    while time.time() < deadline:
        if sim("GET", "/upsoak/v1/installed")[1].get("upgrading") is None and \
                services_ready(config):
            return True
        time.sleep(0.05)
    return False


def flags(args, takes_value, switches):
    """Positional arguments and flags; an unknown flag fails as helm's does."""
    pos, vals, on = [], {}, set()
    i = 0
    while i < len(args):
        a = args[i]
        if a in takes_value:
            if i + 1 >= len(args):
                fail('flag needs an argument: %s' % a)
            vals.setdefault(a, []).append(args[i + 1])
            i += 2
        elif a in switches:
            on.add(a)
            i += 1
        elif a.startswith("-"):
            fail('unknown flag: %s' % a)
        else:
            pos.append(a)
            i += 1
    return pos, vals, on


def latest(revs):
    return revs[-1] if revs else None


def release_doc(rel, ns, r):
    return {"name": rel, "namespace": ns, "version": r["revision"],
            "info": {"status": r["status"], "description": r["description"]},
            "chart": {"metadata": {"name": "agones", "version": r["chart"], "appVersion": r["chart"]}},
            "config": r["config"]}


def new_revision(revs, status, chart, config, description, chart_values=None):
    r = {"revision": len(revs) + 1, "status": status, "chart": chart, "config": config,
         "description": description, "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if chart_values is not None:
        r["chart_values"] = chart_values
    revs.append(r)
    save(revs)
    return r


def set_status(revs, r, status, description):
    for old in revs:
        if status == "deployed" and old is not r and old["status"] == "deployed":
            old["status"] = "superseded"
    r["status"], r["description"] = status, description
    save(revs)


def rollback_delay():
    try:
        with open(os.path.join(STATE, "rollback-delay")) as f:
            return float(f.read().strip() or 0)
    except FileNotFoundError:
        return 0.0


def rollback_to(revs, target, description, timeout):
    """helm's Rollback.Run: a new revision with the target's chart and values,
    `pending-rollback` while it waits (up to `timeout`), then `deployed` and every other
    deployed one superseded; `failed` when the wait times out (recordFailedStatus)."""
    r = new_revision(revs, "pending-rollback", target["chart"], target["config"], description,
                     target.get("chart_values"))
    with open(os.path.join(STATE, "rollback.pid"), "w") as f:
        f.write(str(os.getpid()))
    install_on_sim(target["chart"], target["config"], target.get("chart_values"))
    start = time.time()
    delay = rollback_delay()
    time.sleep(min(delay, timeout))
    if delay > timeout or not settled(start + timeout, target["config"]):
        set_status(revs, r, "failed", 'Rollback "agones" failed: context deadline exceeded')
        return False
    set_status(revs, r, "deployed", description)
    return True


def last_good(revs, below):
    """The newest `deployed` or `superseded` revision below `below` (upgrade.go failRelease)."""
    good = [r for r in revs if r["revision"] < below and r["status"] in ("deployed", "superseded")]
    return good[-1] if good else None


def repositories_file():
    if os.environ.get("HELM_REPOSITORY_CONFIG"):
        return os.environ["HELM_REPOSITORY_CONFIG"]
    if os.environ.get("HELM_CONFIG_HOME"):
        return os.path.join(os.environ["HELM_CONFIG_HOME"], "repositories.yaml")
    return None


def repo(args):
    if args[:1] != ["add"]:
        fail('unknown command "%s" for "helm repo"' % " ".join(args[:1]))
    pos, _, _ = flags(args[1:], set(), {"--force-update"})
    if len(pos) != 2:
        fail('"helm repo add" requires 2 arguments')
    path = repositories_file()
    if path is None:
        return
    import yaml
    try:
        with open(path) as f:
            doc = yaml.safe_load(f) or {}
    except FileNotFoundError:
        doc = {}
    repos = [r for r in doc.get("repositories") or [] if r.get("name") != pos[0]]
    repos.append({"name": pos[0], "url": pos[1]})
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        yaml.safe_dump({"apiVersion": "", "repositories": repos}, f)
    print('"%s" has been added to your repositories' % pos[0])


def check_repo(chart):
    path = repositories_file()
    if path is None or "/" not in chart or chart.startswith((".", "/", "oci:")):
        return
    name = chart.split("/")[0]
    import yaml
    try:
        with open(path) as f:
            repos = (yaml.safe_load(f) or {}).get("repositories") or []
    except FileNotFoundError:
        repos = []
    if not any(r.get("name") == name for r in repos):
        fail("repo %s not found" % name)


def check_kinds(config, release, ns, verb):
    try:
        with open(os.path.join(STATE, "api-groups")) as f:
            served = set(f.read().split())
    except FileNotFoundError:
        return
    metrics = get(config, "agones.metrics") or {}
    monitor = metrics.get("prometheusEnabled", True) and \
        (metrics.get("serviceMonitor") or {}).get("enabled", False)
    if monitor and "monitoring.coreos.com/v1" not in served:
        fail(verb + ' FAILED: unable to build kubernetes objects from new release manifest: '
             'resource mapping not found for name: "agones-controller-monitor" namespace: "%s" '
             'from "": no matches for kind "ServiceMonitor" in version "monitoring.coreos.com/v1"'
             '\nensure CRDs are installed first' % ns)


def upgrade(args):
    pos, vals, on = flags(args, {"--version", "--namespace", "-n", "-f", "--values", "--timeout"},
                          {"--install", "--atomic", "--wait", "--reuse-values",
                           "--reset-then-reuse-values", "--create-namespace"})
    if len(pos) != 2:
        fail('"helm upgrade" requires 2 arguments')
    if "--install" not in on:
        fail("this fake only models upgrade --install")
    if "--reuse-values" in on and "--reset-then-reuse-values" in on:
        fail("--reuse-values and --reset-then-reuse-values are mutually exclusive")
    version = vals.get("--version", [""])[0]
    timeout = duration(vals.get("--timeout", ["5m0s"])[0])
    files = vals.get("-f", []) + vals.get("--values", [])
    revs = load()
    cur = latest(revs)
    if cur and cur["status"].startswith("pending"):
        fail("UPGRADE FAILED: another operation (install/upgrade/rollback) is in progress")
    reuse = ("--reuse-values" in on or "--reset-then-reuse-values" in on or not files)
    config = json.loads(json.dumps(cur["config"])) if (cur and reuse) else {}
    # --reuse-values: the old chart's coalesced values under the new templates (reuseValues);
    # the other ways, the new chart's own defaults.
    chart_values = None
    if cur and "--reuse-values" in on:
        chart_values = json.loads(json.dumps(cur.get("chart_values") or chart_defaults(cur["chart"])))
    import yaml
    for path in files:
        try:
            with open(path) as f:
                merge(config, yaml.safe_load(f) or {})
        except FileNotFoundError:
            fail("open %s: no such file or directory" % path)
    verb = "UPGRADE" if cur else "INSTALLATION"
    check_repo(pos[1])
    check_kinds(config, pos[0], (vals.get("--namespace") or vals.get("-n") or ["default"])[0], verb)
    status, body = install_on_sim(version, config, chart_values)
    if status != 202:
        # The chart's schema and the controller's checks refuse it before a revision exists.
        fail("%s FAILED: %s" % (verb, (body or {}).get("message", status)))
    r = new_revision(revs, "pending-upgrade" if cur else "pending-install", version, config,
                     "Preparing upgrade", chart_values)
    with open(os.path.join(STATE, "upgrade.pid"), "w") as f:
        f.write(str(os.getpid()))
    m = mode()
    if m[0] in ("hang", "ignore-term"):
        if m[0] == "ignore-term":
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        # A child in the same process group, as helm's own (post-renderers, plugins) would be.
        child = subprocess.Popen(["sleep", "3600"])
        with open(os.path.join(STATE, "child.pid"), "w") as f:
            f.write(str(child.pid))
        child.wait()
        sys.exit(1)
    if "--wait" not in on and "--atomic" not in on:
        # No wait: helm returns once the objects are applied (pkg/action/upgrade.go).
        set_status(revs, r, "deployed", "Upgrade complete")
        return
    start = time.time()
    slow = float(m[1]) if m[0] == "slow" else 0.0
    time.sleep(min(slow, timeout))
    ok = m[0] != "fail" and slow <= timeout and settled(start + timeout, config)
    if ok:
        set_status(revs, r, "deployed", "Upgrade complete")
        return
    set_status(revs, r, "failed", "Upgrade failed: context deadline exceeded")
    good = last_good(revs, r["revision"]) if "--atomic" in on else None
    if good:
        if not rollback_to(revs, good, "Rollback to %d" % good["revision"], timeout):
            fail("UPGRADE FAILED: an error occurred while rolling back the release. original "
                 "upgrade error: context deadline exceeded: context deadline exceeded")
        fail("UPGRADE FAILED: release %s failed, and has been rolled back due to atomic being "
             "set: context deadline exceeded" % pos[0])
    fail("UPGRADE FAILED: context deadline exceeded")

# ----- preflight: `helm show chart` and `helm template` (added for the preflight checks) -----
# - `show chart CHART --version V` prints the chart's Chart.yaml, or fails as helm does when the
#   repository has no such version (helm's pkg/repo/chartrepo.go FindChartInRepoURL / the
#   index's Get: `chart "agones" version "V" not found in REPO repository`). Which versions the
#   repository holds: `STATE/chart-versions`, one per line; when the file is absent every version
#   is found. A `REPO/NAME` chart whose repository is not added fails as an upgrade does.
# - `template REL CHART --version V -n NS [-f FILE]...` prints a manifest of the kinds and
#   namespaces Agones' chart renders (install/helm/agones/templates/: crds/, controller.yaml,
#   extensions-deployment.yaml, service/allocation.yaml, ping.yaml, serviceaccounts/, hooks,
#   extensions.yaml webhooks, priority-class.yaml), with the release's namespace and each of
#   `gameservers.namespaces` (default `[default]`), not the full objects.
def chart_versions():
    try:
        with open(os.path.join(STATE, "chart-versions")) as f:
            return set(f.read().split())
    except FileNotFoundError:
        return None


def find_chart(chart, version):
    check_repo(chart)
    known = chart_versions()
    if known is not None and version and version not in known:
        repo_name = chart.split("/")[0] if "/" in chart else chart
        fail('chart "%s" version "%s" not found in %s repository'
             % (chart.split("/")[-1], version, repo_name))


def show(args):
    if args[:1] != ["chart"]:
        fail('unknown command "%s" for "helm show"' % " ".join(args[:1]))
    pos, vals, _ = flags(args[1:], {"--version"}, set())
    if len(pos) != 1:
        fail('"helm show chart" requires 1 argument')
    version = vals.get("--version", [""])[0]
    find_chart(pos[0], version)
    version = version or "1.60.0"
    print("apiVersion: v2\nappVersion: %s\ndescription: a library for hosting, running and "
          "scaling dedicated game servers on Kubernetes.\nname: agones\ntype: application\n"
          "version: %s" % (version, version))


AGONES_CRDS = ["fleets.agones.dev", "gameservers.agones.dev", "gameserversets.agones.dev",
               "fleetautoscalers.autoscaling.agones.dev",
               "gameserverallocationpolicies.multicluster.agones.dev"]


def template(args):
    pos, vals, _ = flags(args, {"--version", "--namespace", "-n", "-f", "--values"},
                         {"--include-crds", "--is-upgrade", "--skip-tests"})
    if len(pos) != 2:
        fail('"helm template" requires 2 arguments')
    find_chart(pos[1], vals.get("--version", [""])[0])
    ns = (vals.get("--namespace") or vals.get("-n") or ["default"])[0]
    import yaml
    values = json.loads(json.dumps(CHART_DEFAULTS))
    for path in vals.get("-f", []) + vals.get("--values", []):
        with open(path) as f:
            merge(values, yaml.safe_load(f) or {})
    game_ns = get(values, "gameservers.namespaces") or ["default"]
    docs = []

    def obj(source, api, kind, name, namespace=None):
        meta = {"name": name}
        if namespace is not None:
            meta["namespace"] = namespace
        docs.append((source, {"apiVersion": api, "kind": kind, "metadata": meta}))

    if get(values, "agones.crds.install") is not False:
        for c in AGONES_CRDS:
            obj("crds/" + c.split(".")[0] + ".yaml", "apiextensions.k8s.io/v1",
                "CustomResourceDefinition", c)
    for sa in ["agones-controller", "agones-allocator"]:
        obj("serviceaccounts/controller.yaml", "v1", "ServiceAccount", sa, ns)
        obj("serviceaccounts/controller.yaml", "rbac.authorization.k8s.io/v1", "ClusterRole", sa)
        obj("serviceaccounts/controller.yaml", "rbac.authorization.k8s.io/v1",
            "ClusterRoleBinding", sa)
    obj("serviceaccounts/sdk.yaml", "rbac.authorization.k8s.io/v1", "ClusterRole", "agones-sdk")
    for g in game_ns:
        obj("serviceaccounts/sdk.yaml", "v1", "ServiceAccount", "agones-sdk", g)
        obj("serviceaccounts/sdk.yaml", "rbac.authorization.k8s.io/v1", "RoleBinding",
            "agones-sdk-access", g)
    for d in ["agones-controller", "agones-extensions", "agones-allocator", "agones-ping"]:
        obj("deployments", "apps/v1", "Deployment", d, ns)
    for svc in ["agones-controller-service", "agones-controller-metrics-service",
                "agones-allocator", "agones-allocator-metrics-service",
                "agones-ping-http-service", "agones-ping-udp-service"]:
        obj("service", "v1", "Service", svc, ns)
    for sec in ["agones-cert", "allocator-tls", "allocator-tls-ca", "allocator-client-ca"]:
        obj("secrets", "v1", "Secret", sec, ns)
    obj("controller.yaml", "policy/v1", "PodDisruptionBudget", "agones-controller-pdb", ns)
    obj("extensions.yaml", "admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration",
        "agones-validation-webhook")
    obj("extensions.yaml", "admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration",
        "agones-mutation-webhook")
    obj("extensions.yaml", "apiregistration.k8s.io/v1", "APIService",
        "v1.allocation.agones.dev")
    obj("priority-class.yaml", "scheduling.k8s.io/v1", "PriorityClass", "agones-system")
    metrics = get(values, "agones.metrics") or {}
    if metrics.get("prometheusEnabled", True) and \
            (metrics.get("serviceMonitor") or {}).get("enabled", False):
        obj("service-monitor.yaml", "monitoring.coreos.com/v1", "ServiceMonitor",
            "agones-controller-monitor", ns)
    for source, d in docs:
        sys.stdout.write("---\n# Source: agones/templates/%s\n" % source)
        sys.stdout.write(yaml.safe_dump(d, sort_keys=False))
# ----- end of preflight's section -----


def main():
    argv = sys.argv[1:]
    with open(os.path.join(STATE, "calls.log"), "a") as f:
        f.write(" ".join(argv) + "\n")
    cmd = argv[0] if argv else ""
    if cmd == "upgrade":
        return upgrade(argv[1:])
    if cmd == "repo":
        return repo(argv[1:])
    if cmd == "show":  # preflight's section
        return show(argv[1:])
    if cmd == "template":  # preflight's section
        return template(argv[1:])
    if cmd == "version":
        flags(argv[1:], set(), {"--short"})
        print("v3.16.4+gfake")
        return
    if cmd == "status":
        pos, vals, _ = flags(argv[1:], {"--namespace", "-n", "-o", "--output"}, set())
        r = latest(load())
        if not r:
            fail("release: not found")
        ns = vals.get("--namespace", ["default"])[0]
        print(json.dumps(release_doc(pos[0], ns, r)))
        return
    if cmd == "list":
        pos, vals, on = flags(argv[1:], {"--namespace", "-n", "--filter", "-o", "--output"},
                              {"--all", "-a"})
        r = latest(load())
        ns = vals.get("--namespace", ["default"])[0]
        shown = r and ("--all" in on or "-a" in on or r["status"] in ("deployed", "failed"))
        if shown and not re.search(vals.get("--filter", [""])[0], "agones"):
            shown = False
        print(json.dumps([{"name": "agones", "namespace": ns, "revision": str(r["revision"]),
                           "updated": "", "status": r["status"], "chart": "agones-" + r["chart"],
                           "app_version": r["chart"]}] if shown else []))
        return
    if cmd == "get":
        if argv[1:2] != ["values"]:
            fail('unknown command "%s" for "helm get"' % " ".join(argv[1:2]))
        pos, vals, on = flags(argv[2:], {"--namespace", "-n", "-o", "--output", "--revision"},
                              {"--all", "-a"})
        r = latest(load())
        if not r:
            fail("release: not found")
        if "--all" in on or "-a" in on:
            # Computed values: the chart's defaults with the release's values over them.
            print(json.dumps(computed(r)))
        else:
            print(json.dumps(r["config"] or None))
        return
    if cmd == "rollback":
        pos, vals, on = flags(argv[1:], {"--namespace", "-n", "--timeout"}, {"--wait"})
        revs = load()
        cur = latest(revs)
        if not cur:
            fail("release: not found")
        # prepareRollback: no revision given is the one below the last, whatever it was.
        to = int(pos[1]) if len(pos) > 1 else cur["revision"] - 1
        if to < 1 or to > len(revs):
            fail("release has no %d version" % to)
        timeout = duration(vals.get("--timeout", ["5m0s"])[0])
        if not rollback_to(revs, revs[to - 1], "Rollback to %d" % to, timeout):
            fail('Rollback "agones" failed: context deadline exceeded')
        print("Rollback was a success! Happy Helming!")
        return
    if cmd == "history":
        pos, vals, _ = flags(argv[1:], {"--namespace", "-n", "-o", "--output", "--max"}, set())
        revs = load()
        if not revs:
            fail("release: not found")
        # cmd/helm/history.go releaseInfo, oldest first.
        print(json.dumps([{"revision": r["revision"], "updated": r.get("updated", ""),
                           "status": r["status"], "chart": "agones-" + r["chart"],
                           "app_version": r["chart"], "description": r["description"]}
                          for r in revs]))
        return
    fail('unknown command "%s" for "helm"' % cmd)


main()
