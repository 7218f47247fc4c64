#!/usr/bin/env bash
# `make demo`: the whole loop on one machine. The simulator (an embedded Agones), Prometheus
# (1 s scrapes), Alertmanager, the sidecar (Wanderer: a transition about every 40 s; Producer:
# open-model load) and the agent. Agones 1.59.0 in the simulator carries a regression
# (allocations 6x slower, plus 40 ms), and the seed is chosen so the walk passes through it: the run shows
# that transition judged fail with its evidence, and the clean ones pass.
# Each judged upgrade's disruption numbers (canaries lost, longest heartbeat gap, allocation
# outage) are shown in the progress lines and the report.
# Ends with the report. Exits 0 when the transition to 1.59.0 was judged fail and every clean
# transition passed (the demo showed what it should), 1 when the regression was missed or a
# clean transition failed, and another code when something broke.
# Everything it starts is stopped at the end and on Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/../.."

DURATION=${DEMO_DURATION:-180}
PERIOD=${DEMO_PERIOD:-40s}
BIN=${BIN:-target/release}
RUN_DIR="$PWD/run/demo-$(date +%Y%m%d-%H%M%S)"
# The version that carries the injected regression (deploy/local/sim-demo.yaml).
REGRESSED_VERSION=1.59.0
mkdir -p "$RUN_DIR"
# The shipped space with the allocator's batch wait held at 200 ms. Agones' batch loop makes
# every allocation wait 0 to that long (the simulator models it: sim/src/world/allocation.rs),
# and the demo judges latency against its first steady window: walked over 100-1000 ms, the wait
# alone would move p99 by design. A soak that walks it judges latency against windows at the same
# wait (`baseline_by`, README). `constraints` is the space file's last section.
SPACE="$RUN_DIR/space.yaml"
{ cat chaos/spaces/agones.yaml; echo '  - tunable:allocationBatchWaitTime == 200'; } > "$SPACE"
"$BIN/upsoak-chaos" validate "$SPACE" > /dev/null || { echo "error: the demo's space ($SPACE) is invalid"; exit 1; }

pids=()
cleanup() {
  trap - EXIT INT TERM
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'echo; echo "interrupted: stopping everything"; exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_line() { # FILE: wait for "listening on URL" and print the URL
  for _ in $(seq 200); do grep -q '^listening on ' "$1" 2>/dev/null && break; sleep 0.05; done
  sed -n 's/^listening on //p' "$1" | head -1
}
wait_ready() { for _ in $(seq 200); do curl -sf "$1" >/dev/null && return 0; sleep 0.1; done; echo "error: $1 never became ready"; exit 1; }

# A seed whose walk reaches 1.59.0 at step 2 or 3, so a clean transition comes first.
SEED=${DEMO_SEED:-}
if [ -z "$SEED" ]; then
  for s in $(seq 1 200); do
    v=$("$BIN/upsoak-chaos" plan --space "$SPACE" --seed "$s" --steps 3 --format json \
      | python3 -c 'import json,sys; d=json.load(sys.stdin); print(",".join(x["version"] for x in d["steps"]))')
    IFS=, read -r v0 v1 v2 v3 <<<"$v"
    if [ "$v1" != 1.59.0 ] && { [ "$v2" = 1.59.0 ] || [ "$v3" = 1.59.0 ]; }; then SEED=$s; break; fi
  done
fi
echo "upsoak demo: ${DURATION}s, seed $SEED, a transition every ~$PERIOD; run directory $RUN_DIR"
echo "the walk (upsoak-chaos plan --space $SPACE --seed $SEED --steps 4):"
"$BIN/upsoak-chaos" plan --space "$SPACE" --seed "$SEED" --steps 4 | sed 's/^/  /'

# 1. The simulator.
# The built-in default with the walk's start installed (at the batch wait the demo's space
# holds), then the demo's settings.
sed 's/^  version: 1.60.0$/  version: 1.55.0\n  tunables: { allocationBatchWaitTime: 200 }/' sim/config/default.yaml \
  | cat - deploy/local/sim-demo.yaml > "$RUN_DIR/sim.yaml"
"$BIN/upsoak-sim" --listen 127.0.0.1:0 --config "$RUN_DIR/sim.yaml" > "$RUN_DIR/sim.out" 2> "$RUN_DIR/sim.log" &
pids+=($!)
SIM=$(wait_line "$RUN_DIR/sim.out")
[ -n "$SIM" ] || { echo "error: upsoak-sim did not start:"; cat "$RUN_DIR/sim.log"; exit 1; }

# 2. The sidecar.
cat > "$RUN_DIR/sidecar.yaml" <<YAML
listen: 127.0.0.1:0
state_dir: $RUN_DIR/chaos
kube_server: $SIM
wanderer:
  space: $SPACE
  seed: $SEED
  strategy: coverage
  schedule: { period: $PERIOD, jitter: 0.1 }
  apply_timeout: 60s
  applier: { kind: sim, url: "$SIM" }
producer:
  fleets: [ { name: simple-game-server, min_replicas: 50, max_replicas: 70, scale_every_min: 15s, scale_every_max: 30s } ]
  allocation_rate: 6
  arrivals: poisson                         # an open model: no phase lock with the 200 ms batch loop (issue 24)
  session: { min_length: 1s, max_length: 4s, max_players: 4 }
  capacity: { replace_time: 1s }            # the demo's lifecycle: 0.6 s to Ready
  window: 10s
YAML
"$BIN/upsoak-chaos" run --config "$RUN_DIR/sidecar.yaml" > "$RUN_DIR/chaos.out" 2> "$RUN_DIR/chaos.log" &
pids+=($!)
CHAOS=$(wait_line "$RUN_DIR/chaos.out")
[ -n "$CHAOS" ] || { echo "error: upsoak-chaos did not start:"; cat "$RUN_DIR/chaos.log"; exit 1; }

# 3. Alertmanager: upsoak alerts to the agent's webhook receiver, with the token it requires.
AGENT_PORT=$(free_port)
AM_PORT=$(free_port)
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$RUN_DIR/webhook.token"
cat > "$RUN_DIR/alertmanager.yml" <<YAML
route:
  receiver: upsoak
  group_by: [alertname, slo]
  group_wait: 1s
  group_interval: 5s
receivers:
  - name: upsoak
    webhook_configs:
      - url: http://127.0.0.1:$AGENT_PORT/api/v1/alertmanager
        http_config:
          authorization:
            credentials_file: $RUN_DIR/webhook.token
YAML
amtool check-config "$RUN_DIR/alertmanager.yml" >/dev/null
prometheus-alertmanager --config.file="$RUN_DIR/alertmanager.yml" --storage.path="$RUN_DIR/alertmanager" \
  --web.listen-address=127.0.0.1:$AM_PORT --cluster.listen-address= > "$RUN_DIR/alertmanager.log" 2>&1 &
pids+=($!)
AM=http://127.0.0.1:$AM_PORT

# 4. Prometheus, scraping the simulator, the sidecar and the agent every second.
PROM_PORT=$(free_port)
hostport() { echo "${1#http://}"; }
cat > "$RUN_DIR/prometheus.yml" <<YAML
global: { scrape_interval: 1s, evaluation_interval: 1s }
scrape_configs:
  - job_name: agones
    static_configs: [ { targets: ['$(hostport "$SIM")'] } ]
  - job_name: upsoak-chaos
    static_configs: [ { targets: ['$(hostport "$CHAOS")'] } ]
  - job_name: upsoak-agent
    static_configs: [ { targets: ['127.0.0.1:$AGENT_PORT'] } ]
YAML
prometheus --config.file="$RUN_DIR/prometheus.yml" --storage.tsdb.path="$RUN_DIR/prometheus" \
  --web.listen-address=127.0.0.1:$PROM_PORT > "$RUN_DIR/prometheus.log" 2>&1 &
pids+=($!)
PROM=http://127.0.0.1:$PROM_PORT
wait_ready "$PROM/-/ready"
wait_ready "$AM/-/ready"
echo
echo "simulator  $SIM        (kubectl --server=$SIM get fleets,gameservers)"
echo "sidecar    $CHAOS/metrics"
echo "prometheus $PROM"
echo "alertmanager $AM"
echo

q() { # PromQL instant query -> first value, or "-"
  curl -s "$PROM/api/v1/query" --data-urlencode "query=$1" \
    | python3 -c 'import json,sys
try:
  r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else "-")
except Exception: print("-")'
}
qlabel() {
  curl -s "$PROM/api/v1/query" --data-urlencode "query=$1" \
    | python3 -c 'import json,sys
try:
  r=json.load(sys.stdin)["data"]["result"]; print(r[0]["metric"].get(sys.argv[1],"-") if r else "-")
except Exception: print("-")' "$2"
}
START=$SECONDS
progress() {
  local gen ver rate verdicts
  gen=$(q 'upsoak_wanderer_generation')
  ver=$(qlabel 'upsoak_wanderer_config_info' version)
  rate=$(q 'sum(rate(upsoak_producer_allocations_total{result="Allocated"}[5s]))')
  verdicts=$(q 'sum(upsoak_agent_transitions_judged_total{verdict="pass"})')/$(q 'sum(upsoak_agent_transitions_judged_total{verdict="fail"})')
  printf '[%4ds] generation %s  version %-7s allocations/s %-6.1f  judged pass/fail %s\n' \
    $((SECONDS - START)) "$gen" "$ver" "$(printf '%.1f' "${rate/-/0}")" "$verdicts"
  # The latest judged disruption window (apply start -> settle end), once the agent judged one.
  local dj lost gap outage
  dj=$(q 'sum(upsoak_agent_disruption_windows_judged_total)')
  if [ "$dj" != "-" ] && [ "$dj" != "0" ]; then
    lost=$(q 'upsoak_agent_slo_value{group="disruption",slo="canaries-lost"}')
    gap=$(q 'upsoak_agent_slo_value{group="disruption",slo="canary-longest-gap"}')
    outage=$(q 'upsoak_agent_slo_value{group="disruption",slo="allocation-outage-seconds"}')
    printf '        last upgrade (disruption window %s judged): canaries lost %s, longest gap %ss, allocation outage %ss\n' \
      "$dj" "$lost" "$gap" "$outage"
  fi
}

# 5. A baseline from the first steady window, before the first transition.
while [ $((SECONDS - START)) -lt 24 ]; do progress; sleep 4; done
"$BIN/upsoak-agent" baseline record --prometheus "$PROM" --from -18s --to now --step 1s \
  --specs deploy/local/slos-demo.yaml --out "$RUN_DIR/baseline.json" | sed 's/^/  /'

# 6. The agent.
"$BIN/upsoak-agent" run --prometheus "$PROM" --specs deploy/local/slos-demo.yaml \
  --baseline "$RUN_DIR/baseline.json" --state-dir "$RUN_DIR/agent" --listen 127.0.0.1:$AGENT_PORT \
  --webhook-token-file "$RUN_DIR/webhook.token" \
  --alertmanager "$AM" --kube-server "$SIM" --annotations-file "$RUN_DIR/grafana-annotations.jsonl" \
  --settle 10s --judge-window 20s --probe-interval 1s \
  > "$RUN_DIR/agent.out" 2> "$RUN_DIR/agent.log" &
AGENT_PID=$!
pids+=($AGENT_PID)

while [ $((SECONDS - START)) -lt "$DURATION" ]; do progress; sleep 5; done

# 7. Stop the sidecar and the agent, then read what was judged.
for p in "${pids[@]:1:1}" "$AGENT_PID"; do kill -TERM "$p" 2>/dev/null || true; done
wait "$AGENT_PID" 2>/dev/null || true
echo
echo "== alerts Alertmanager holds"
curl -s "$AM/api/v2/alerts" | python3 -c 'import json,sys
for a in json.load(sys.stdin):
  l=a["labels"]; print("  %s slo=%s/%s window=%s severity=%s %s -> %s  (%s)" % (l.get("alertname"), l.get("group"), l.get("slo"), l.get("window", "-"), l.get("severity"), l.get("from_version"), l.get("to_version"), a["status"]["state"]))' || true
echo
echo "== Grafana annotations (no Grafana URL given: recorded, not posted) in $RUN_DIR/grafana-annotations.jsonl"
sed 's/^/  /' "$RUN_DIR/grafana-annotations.jsonl" 2>/dev/null | head -12 || true
echo
echo "== report"
"$BIN/upsoak-agent" report --state-dir "$RUN_DIR/agent" --format html > "$RUN_DIR/report.html" 2>/dev/null || true
set +e
"$BIN/upsoak-agent" report --state-dir "$RUN_DIR/agent" --format text
code=$?
set -e
echo
echo "HTML report: $RUN_DIR/report.html"
echo "journal:     $RUN_DIR/chaos/journal.jsonl"
echo "logs:        $RUN_DIR/*.log"
# The demo succeeds when it shows what it should: the transition that brings the injected
# regression (1.59.0) judged fail, and no clean transition judged fail. Its own exit code
# says that; the verdict's exit code (what `upsoak-agent report` returns to a CI pipeline:
# 0 pass, 1 fail, 3 inconclusive, 4 runtime failure) is printed beside it.
case $code in
  0) echo "verdict: PASS (upsoak-agent report exit 0)";;
  1) echo "verdict: FAIL (upsoak-agent report exit 1)";;
  3) echo "verdict: INCONCLUSIVE (upsoak-agent report exit 3)";;
  *) echo "upsoak-agent report failed (exit $code)"; exit "$code";;
esac
# The report exits with the verdict's code (1 for the FAIL the demo expects); a report that
# could not be written leaves a file the check below cannot read, and the demo fails there.
"$BIN/upsoak-agent" report --state-dir "$RUN_DIR/agent" --format json > "$RUN_DIR/report.json" || true
python3 - "$RUN_DIR/report.json" "$REGRESSED_VERSION" <<'PY'
import json, sys
report, bad = json.load(open(sys.argv[1])), sys.argv[2]
caught, missed, false_fails = [], [], []
def number(d, slo):
    v = d["slos"].get("disruption/" + slo, {}).get("evidence", {}).get("value")
    return "-" if v is None else "%g" % v
for t in report["transitions"]:
    d = t.get("disruption")
    if d:
        print("generation %s: upgrade (disruption window %ss) %s: canaries lost %s, longest gap %ss, allocation outage %ss, controller unready %ss" % (
            t["generation"], d["window_end"] - d["window_start"], d["verdict"], number(d, "canaries-lost"),
            number(d, "canary-longest-gap"), number(d, "allocation-outage-seconds"),
            number(d, "controller-unready-seconds")))
    judged = t.get("judged")
    if not judged:
        continue
    to, verdict = t["to"].get("version", "?"), judged["verdict"]
    if d and d["verdict"] == "fail":
        verdict = "fail"
    failing = sorted(name for name, v in list(judged["slos"].items()) + list((d or {}).get("slos", {}).items())
                     if v["evidence"]["verdict"] == "fail")
    line = "generation %s: %s -> %s judged %s%s" % (
        t["generation"], t["from"].get("version", "?"), to, verdict,
        " (" + ", ".join(failing) + ")" if failing else "")
    if to == bad and verdict == "fail":
        caught.append(line)
    elif to == bad:
        missed.append(line)
    elif verdict == "fail":
        false_fails.append(line)
for line in caught:
    print("demo: caught the injected regression: " + line)
for line in missed:
    print("demo: MISSED the injected regression: " + line)
for line in false_fails:
    print("demo: a clean transition was judged fail: " + line)
if caught and not missed and not false_fails:
    print("demo: OK, the regression in %s was caught and every clean transition passed" % bad)
    sys.exit(0)
if not caught and not missed:
    print("demo: the walk never reached a judged transition to %s; run longer (DEMO_DURATION)" % bad)
sys.exit(1)
PY
