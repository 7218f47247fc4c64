#!/usr/bin/env bash
# Benchmark of upsoak-sim at 10,000 GameServers in one Fleet (release build, loopback only):
# time to all Ready, list latency, RSS, and allocation throughput and latency measured by wrk.
# Usage: bench/sim-10k.sh [REPLICAS] [WRK_SECONDS]   (needs wrk: apt-get install wrk)
set -euo pipefail
cd "$(dirname "$0")/.."
REPLICAS=${1:-10000}
WRK_SECONDS=${2:-1}
# The modelled pick-to-commit latency (the default config's is 2ms); 0ms measures the
# simulator's own cost.
ALLOC_LATENCY=${ALLOC_LATENCY:-2ms}
command -v wrk >/dev/null || { echo "error: wrk is not installed (apt-get install wrk)"; exit 2; }
cargo build --release --locked -p upsoak-sim >/dev/null 2>&1
dir=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$dir"' EXIT
cat sim/config/default.yaml - > "$dir/sim.yaml" <<YAML
game: { port_min: 20000, port_max: 39999 }
allocation: { latency: $ALLOC_LATENCY }
fleets: [ { name: bench, replicas: $REPLICAS } ]
YAML
target/release/upsoak-sim --config "$dir/sim.yaml" > "$dir/out" 2> "$dir/log" &
pid=$!
start=$(date +%s.%N)
for _ in $(seq 200); do grep -q listening "$dir/out" 2>/dev/null && break; sleep 0.05; done
url=$(sed -n 's/^listening on //p' "$dir/out")
ready=0
while [ "$ready" != "$REPLICAS" ]; do
  sleep 0.2
  ready=$(curl -s "$url/metrics" | sed -n 's/^agones_fleets_replicas_count{name="bench",namespace="default",type="ready"} //p')
  ready=${ready:-0}
done
end=$(date +%s.%N)
printf 'replicas: %d, allocation latency modelled: %s\ntime to all Ready: %.1f s\n' "$REPLICAS" "$ALLOC_LATENCY" "$(echo "$end - $start" | bc)"
for i in 1 2 3 4 5; do
  curl -s -o /dev/null -w '%{time_total}\n' "$url/apis/agones.dev/v1/namespaces/default/gameservers"
done | sort -n | sed -n '3p' | awk '{printf "list %d GameServers (median of 5): %.0f ms\n", '"$REPLICAS"', $1 * 1000}'
printf 'RSS at %d GameServers: %d MB\n' "$REPLICAS" $(( $(awk '/VmRSS/ {print $2}' /proc/$pid/status) / 1024 ))
cpu0=$(awk '{print $14 + $15}' /proc/$pid/stat)
echo "wrk -t1 -c32 -d${WRK_SECONDS}s POST gameserverallocations:"
wrk -t1 -c32 -d"${WRK_SECONDS}s" --latency -s bench/alloc.lua "$url/apis/allocation.agones.dev/v1/namespaces/default/gameserverallocations" | sed 's/^/  /'
cpu1=$(awk '{print $14 + $15}' /proc/$pid/stat)
printf 'simulator CPU during wrk: %.2f cores\n' "$(echo "($cpu1 - $cpu0) / 100 / $WRK_SECONDS" | bc -l)"
curl -s "$url/metrics" | grep -E '^agones_gameserver_allocations_duration_seconds_count' | sed 's/^/  /'
printf 'RSS after: %d MB\n' $(( $(awk '/VmRSS/ {print $2}' /proc/$pid/status) / 1024 ))
