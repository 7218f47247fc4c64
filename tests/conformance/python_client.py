"""The simulator's Kubernetes API driven by Python's official `kubernetes` client (PyPI,
pinned in tests/conformance/requirements.txt): an independent client from another ecosystem.

Run by tests/tests/conformance.rs as `python python_client.py URL NAMESPACE FLEET`. Each step
prints `ok: <step>`; the first step that fails raises, so the exit status is non-zero and the
traceback names the step. Waits poll real state with a deadline; nothing sleeps to synchronise.
"""

import sys
import time

from kubernetes import client, dynamic, watch
from kubernetes.client.rest import ApiException

AGONES = ("agones.dev", "v1")
ALLOCATION = ("allocation.agones.dev", "v1")
FLEET_LABEL = "agones.dev/fleet"
POLL = 0.05


def step(name):
    print(f"ok: {name}", flush=True)


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def eventually(what, f, secs=20):
    """Polls `f` until it returns something truthy; raises naming `what` after `secs`."""
    deadline = time.monotonic() + secs
    last = None
    while time.monotonic() < deadline:
        last = f()
        if last:
            return last
        time.sleep(POLL)
    raise AssertionError(f"waiting {secs}s for {what}; last: {last!r}")


def expect_error(code, reason, f):
    """Runs `f`, which must fail with HTTP `code` and a Status of `reason`."""
    try:
        f()
    except ApiException as e:
        check(e.status == code, f"expected {code} {reason}, got {e.status}: {e.body}")
        check(f'"reason":"{reason}"' in (e.body or "").replace(" ", ""),
              f"expected reason {reason} in the Status: {e.body}")
        return e
    raise AssertionError(f"expected {code} {reason}, the call succeeded")


def fleet(name, replicas):
    return {
        "apiVersion": "agones.dev/v1",
        "kind": "Fleet",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "template": {"spec": {
                "ports": [{"name": "default", "containerPort": 7654}],
                "template": {"spec": {"containers": [{
                    "name": "simple-game-server",
                    "image": "us-docker.pkg.dev/agones-images/examples/simple-game-server:0.43",
                }]}},
            }},
        },
    }


def main():
    url, ns, name = sys.argv[1:4]
    cfg = client.Configuration()
    cfg.host = url
    api_client = client.ApiClient(cfg)
    co = client.CustomObjectsApi(api_client)
    selector = f"{FLEET_LABEL}={name}"

    def gameservers(field_selector=""):
        return co.list_namespaced_custom_object(
            *AGONES, ns, "gameservers", label_selector=selector,
            field_selector=field_selector)["items"]

    def ready_count():
        return len(gameservers("status.state=Ready"))

    # ----- discovery: the client's own paths end in a slash (/version/, /api/, /apis/) -----
    v = client.VersionApi(api_client).get_code()
    check(v.major == "1" and v.git_version, f"/version/: {v}")
    core = client.CoreApi(api_client).get_api_versions()
    check("v1" in core.versions, f"/api/: {core}")
    groups = {g.name for g in client.ApisApi(api_client).get_api_versions().groups}
    check({"agones.dev", "allocation.agones.dev"} <= groups, f"/apis/: {groups}")
    resources = {r.name for r in co.get_api_resources(*AGONES).resources}
    check({"fleets", "fleets/scale", "gameservers"} <= resources, f"agones.dev/v1: {resources}")
    dyn = dynamic.DynamicClient(api_client)
    fleets_res = dyn.resources.get(api_version="agones.dev/v1", kind="Fleet")
    check(fleets_res.namespaced and fleets_res.name == "fleets", f"dynamic discovery: {fleets_res}")
    step("discovery")

    # ----- create, and a second create of the same name -----
    created = co.create_namespaced_custom_object(*AGONES, ns, "fleets", fleet(name, 2))
    check(created["metadata"].get("uid") and created["metadata"].get("generation") == 1,
          f"created: {created['metadata']}")
    expect_error(409, "AlreadyExists",
                 lambda: co.create_namespaced_custom_object(*AGONES, ns, "fleets", fleet(name, 2)))
    step("create")

    got = co.get_namespaced_custom_object(*AGONES, ns, "fleets", name)
    check(got["metadata"]["uid"] == created["metadata"]["uid"], "get returns the created Fleet")
    expect_error(404, "NotFound",
                 lambda: co.get_namespaced_custom_object(*AGONES, ns, "fleets", name + "-absent"))
    step("get")

    # ----- list with label and field selectors -----
    eventually("2 Ready GameServers", lambda: ready_count() == 2)
    names = [g["metadata"]["name"] for g in gameservers()]
    one = co.list_namespaced_custom_object(
        *AGONES, ns, "gameservers", field_selector=f"metadata.name={names[0]}")["items"]
    check([g["metadata"]["name"] for g in one] == [names[0]], f"metadata.name selector: {one}")
    none = co.list_namespaced_custom_object(
        *AGONES, ns, "gameservers", label_selector=f"{FLEET_LABEL}={name}-other")["items"]
    check(none == [], f"a selector of another fleet matches nothing: {none}")
    in_set = co.list_namespaced_custom_object(
        *AGONES, ns, "gameservers", label_selector=f"{FLEET_LABEL} in ({name},nope)")["items"]
    check(len(in_set) == 2, f"a set-based selector: {len(in_set)} items")
    all_ns = co.list_custom_object_for_all_namespaces(*AGONES, "fleets")["items"]
    check(name in [f["metadata"]["name"] for f in all_ns], "the Fleet in the all-namespaces list")
    step("list with selectors")

    # ----- watch from a list's resourceVersion: a scale-up shows as ADDED events -----
    rv = co.list_namespaced_custom_object(
        *AGONES, ns, "gameservers", label_selector=selector)["metadata"]["resourceVersion"]
    co.patch_namespaced_custom_object_scale(
        *AGONES, ns, "fleets", name, {"spec": {"replicas": 3}},
        _content_type="application/merge-patch+json")
    added = set()
    w = watch.Watch()
    for ev in w.stream(co.list_namespaced_custom_object, *AGONES, ns, "gameservers",
                       label_selector=selector, resource_version=rv, timeout_seconds=20):
        check(ev["type"] in ("ADDED", "MODIFIED", "DELETED", "BOOKMARK"), f"event type {ev['type']}")
        if ev["type"] == "ADDED":
            added.add(ev["object"]["metadata"]["name"])
        if added - set(names):
            w.stop()
    check(added - set(names), f"no ADDED event for the new GameServer (saw {added})")
    step("watch")

    # ----- patches: merge, JSON, server-side apply -----
    p = co.patch_namespaced_custom_object(
        *AGONES, ns, "fleets", name, {"metadata": {"labels": {"conformance": "merge"}}},
        _content_type="application/merge-patch+json")
    check(p["metadata"]["labels"].get("conformance") == "merge", f"merge patch: {p['metadata']}")
    p = co.patch_namespaced_custom_object(
        *AGONES, ns, "fleets", name,
        [{"op": "replace", "path": "/metadata/labels/conformance", "value": "json"}],
        _content_type="application/json-patch+json")
    check(p["metadata"]["labels"].get("conformance") == "json", f"JSON patch: {p['metadata']}")
    p = co.patch_namespaced_custom_object(
        *AGONES, ns, "fleets", name,
        {"apiVersion": "agones.dev/v1", "kind": "Fleet",
         "metadata": {"name": name, "labels": {"applied": "python"}}},
        field_manager="conformance-python", _content_type="application/apply-patch+yaml")
    check(p["metadata"]["labels"].get("applied") == "python", f"apply: {p['metadata']}")
    # An apply must name its field manager: 422 (k8s.io/apimachinery
    # `pkg/apis/meta/v1/validation/validation.go`, `ValidatePatchOptions`).
    expect_error(422, "Invalid",
                 lambda: co.patch_namespaced_custom_object(
                     *AGONES, ns, "fleets", name,
                     {"apiVersion": "agones.dev/v1", "kind": "Fleet", "metadata": {"name": name}},
                     _content_type="application/apply-patch+yaml"))
    # Custom resources have no strategic merge patch: 415 (k8s.io/apiextensions-apiserver
    # `pkg/apiserver/customresource_handler.go`, `serveResource`: only JSON, merge and apply).
    expect_error(415, "UnsupportedMediaType",
                 lambda: co.patch_namespaced_custom_object(
                     *AGONES, ns, "fleets", name, {"metadata": {"labels": {"x": "y"}}},
                     _content_type="application/strategic-merge-patch+json"))
    step("patch")

    # ----- the scale subresource -----
    s = co.get_namespaced_custom_object_scale(*AGONES, ns, "fleets", name)
    check(s["kind"] == "Scale" and s["spec"]["replicas"] == 3, f"scale: {s}")
    s["spec"]["replicas"] = 4
    s = co.replace_namespaced_custom_object_scale(*AGONES, ns, "fleets", name, s)
    check(s["spec"]["replicas"] == 4, f"replace scale: {s}")
    eventually("4 Ready GameServers", lambda: ready_count() == 4)
    check(co.get_namespaced_custom_object(*AGONES, ns, "fleets", name)["spec"]["replicas"] == 4,
          "the scale wrote spec.replicas")
    step("scale")

    # ----- lists in chunks: limit and continue, as "Retrieving large results sets in chunks"
    # (Kubernetes API concepts) describes; the client passes the token back as `_continue` -----
    full = sorted(g["metadata"]["name"] for g in gameservers())
    pages, seen, token, rvs = 0, [], None, set()
    while True:
        page = co.list_namespaced_custom_object(
            *AGONES, ns, "gameservers", label_selector=selector, limit=2,
            **({"_continue": token} if token else {}))
        check(len(page["items"]) <= 2, f"a page of limit=2 has {len(page['items'])} items")
        seen += [g["metadata"]["name"] for g in page["items"]]
        rvs.add(page["metadata"]["resourceVersion"])
        pages += 1
        token = page["metadata"].get("continue")
        if pages == 1:
            check(token, f"the first page of 4 with limit=2 has a continue token: {page['metadata']}")
        if not token:
            break
        check(pages < 10, "the pages end")
    check(sorted(seen) == full and len(seen) == len(set(seen)) == 4,
          f"every GameServer once over {pages} pages: {seen} vs {full}")
    check(len(rvs) == 1, f"every page at the first page's resourceVersion: {rvs}")
    expect_error(400, "BadRequest",
                 lambda: co.list_namespaced_custom_object(
                     *AGONES, ns, "gameservers", limit=2, _continue="bm90LWEtdG9rZW4"))
    # The GameServers carry Agones' nulls: `players` without PlayerTracking, as
    # `GameServerStatus.Players` has no omitempty (pkg/apis/agones/v1/gameserver.go).
    status = gameservers()[0]["status"]
    check("players" in status and status["players"] is None and status["reservedUntil"] is None,
          f"null players and reservedUntil: {status}")
    step("list in chunks")

    # ----- optimistic concurrency: an update with a stale resourceVersion is a 409 -----
    stale = co.get_namespaced_custom_object(*AGONES, ns, "fleets", name)
    fresh = dict(stale, metadata=dict(stale["metadata"], labels={"conformance": "update"}))
    updated = co.replace_namespaced_custom_object(*AGONES, ns, "fleets", name, fresh)
    check(updated["metadata"]["resourceVersion"] != stale["metadata"]["resourceVersion"],
          "an update changes the resourceVersion")
    expect_error(409, "Conflict",
                 lambda: co.replace_namespaced_custom_object(*AGONES, ns, "fleets", name, stale))
    step("stale update")

    # ----- allocation -----
    gsa = co.create_namespaced_custom_object(*ALLOCATION, ns, "gameserverallocations", {
        "apiVersion": "allocation.agones.dev/v1", "kind": "GameServerAllocation",
        "spec": {"selectors": [{"matchLabels": {FLEET_LABEL: name}}]}})
    check(gsa["status"]["state"] == "Allocated", f"allocation: {gsa.get('status')}")
    gs = co.get_namespaced_custom_object(*AGONES, ns, "gameservers", gsa["status"]["gameServerName"])
    check(gs["status"]["state"] == "Allocated", f"the allocated GameServer: {gs['status']}")
    allocated = gameservers("status.state=Allocated")
    check([g["metadata"]["name"] for g in allocated] == [gs["metadata"]["name"]],
          f"the field selector finds the one Allocated server: {len(allocated)}")
    step("allocation")

    # ----- deletion: the Fleet goes, and its GameServers with it -----
    st = co.delete_namespaced_custom_object(*AGONES, ns, "fleets", name)
    check(st.get("kind") in ("Status", "Fleet"), f"delete answer: {st}")
    expect_error(404, "NotFound", lambda: co.get_namespaced_custom_object(*AGONES, ns, "fleets", name))
    eventually("the Fleet's GameServers deleted", lambda: gameservers() == [])
    step("delete")


if __name__ == "__main__":
    main()
