#!/usr/bin/env bash
# The Producer's allocation rate against the simulator, next to wrk's raw rate on the same
# endpoint, in one run (release builds, loopback only).
# - "keep": allocated servers stay allocated, as with wrk: both measure the request path only.
# - "exit": each allocated server is told EXIT over UDP at once, so the simulator also deletes
#   and replaces it: the full loop a soak runs.
# wrk runs with as many connections as the Producer may have allocations in flight
# (`max_in_flight` 512 in chaos/examples/produce.rs), so both have the same concurrency: a
# closed loop of fewer connections is bound by latency, not by the endpoint.
# Usage: bench/producer.sh [RATE...]   (default: 2000 4000 8000 12000)
# SECS (default 1) keeps a 12,000/s row within the REPLICAS (16,000) Ready servers.
set -euo pipefail
cd "$(dirname "$0")/.."
RATES=(${@:-2000 4000 8000 12000})
SECS=${SECS:-1}
REPLICAS=${REPLICAS:-16000}
WRK_CONNECTIONS=${WRK_CONNECTIONS:-512}
command -v wrk >/dev/null || { echo "error: wrk is not installed (apt-get install wrk)"; exit 2; }
cargo build --release --locked -p upsoak-sim -p upsoak-chaos --bins --examples >/dev/null 2>&1
dir=$(mktemp -d)
pid=""
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
start_sim() {
  cat sim/config/default.yaml - > "$dir/sim.yaml" <<YAML
lifecycle: { scheduled_after: 100ms, request_ready_after: 100ms, ready_after: 100ms, delete_after_shutdown: 100ms, tick: 20ms }
game: { port_min: 20000, port_max: 39999 }
fleets: [ { name: bench, replicas: $REPLICAS } ]
YAML
  target/release/upsoak-sim --config "$dir/sim.yaml" > "$dir/out" 2> "$dir/log" &
  pid=$!
  for _ in $(seq 200); do grep -q listening "$dir/out" 2>/dev/null && break; sleep 0.05; done
  url=$(sed -n 's/^listening on //p' "$dir/out")
  for _ in $(seq 600); do
    r=$(curl -s "$url/metrics" | sed -n 's/^agones_fleets_replicas_count{name="bench",namespace="default",type="ready"} //p')
    [ "${r:-0}" = "$REPLICAS" ] && break; sleep 0.1
  done
}
stop_sim() { kill $pid; wait $pid 2>/dev/null || true; pid=""; }
cpu() { awk '{print $14 + $15}' /proc/$pid/stat; }
start_sim
echo "== wrk -t1 -c${WRK_CONNECTIONS} -d${SECS}s (closed loop, raw rate of the endpoint)"
c0=$(cpu)
wrk -t1 -c"$WRK_CONNECTIONS" -d"${SECS}s" -s bench/alloc.lua "$url/apis/allocation.agones.dev/v1/namespaces/default/gameserverallocations" | grep -E "Requests/sec|Allocated|p50"
printf 'simulator CPU: %.2f cores\n' "$(echo "($(cpu) - $c0) / 100 / $SECS" | bc -l)"
stop_sim
for mode in keep exit; do
  for rate in "${RATES[@]}"; do
    start_sim
    echo "== producer at $rate/s for ${SECS}s, sessions: $mode"
    c0=$(cpu)
    target/release/examples/produce "$url" bench "$rate" "$SECS" "$mode"
    printf 'simulator CPU: %.2f cores\n' "$(echo "($(cpu) - $c0) / 100 / $SECS" | bc -l)"
    stop_sim
  done
done
