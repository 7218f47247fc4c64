#!/usr/bin/env bash
# `make demo`: the simulator with a Fleet, scaled and allocated from for DEMO_DURATION seconds,
# printing the Fleet as it changes. Everything it starts is stopped at the end and on Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/../.."

DURATION=${DEMO_DURATION:-60}
SEED=${DEMO_SEED:-$RANDOM}
BIN=${BIN:-target/release}
RUN_DIR="run/demo-$(date +%Y%m%d-%H%M%S)"
NS=default
FLEET=simple-game-server
mkdir -p "$RUN_DIR"

pids=()
cleanup() {
  trap - EXIT INT TERM
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'echo; echo "interrupted: stopping"; exit 130' INT TERM

# The built-in default (Agones 1.55–1.60) plus the demo's timings and Fleet.
"$BIN/upsoak-sim" --help >/dev/null
cat sim/config/default.yaml deploy/local/sim-demo.yaml > "$RUN_DIR/sim.yaml"
"$BIN/upsoak-sim" --listen 127.0.0.1:0 --config "$RUN_DIR/sim.yaml" --seed "$SEED" \
  > "$RUN_DIR/sim.out" 2> "$RUN_DIR/sim.log" &
pids+=($!)
for _ in $(seq 100); do grep -q '^listening on ' "$RUN_DIR/sim.out" 2>/dev/null && break; sleep 0.05; done
URL=$(sed -n 's/^listening on //p' "$RUN_DIR/sim.out")
[ -n "$URL" ] || { echo "error: upsoak-sim did not start; see $RUN_DIR/sim.log"; exit 1; }
KUBECTL=(kubectl "--server=$URL" "--namespace=$NS")
export KUBECONFIG=/dev/null

echo "upsoak demo: simulator at $URL (seed $SEED), run directory $RUN_DIR, ${DURATION}s"
echo "  try: kubectl --server=$URL get fleets,gameservers"
echo

# The Fleet as it changes, straight from a watch.
"${KUBECTL[@]}" get fleet "$FLEET" -w --output-watch-events 2>/dev/null \
  | while IFS= read -r line; do printf '%s  %s\n' "$(date +%T)" "$line"; done &
pids+=($!)

allocate() {
  curl -s -X POST -H 'content-type: application/json' \
    "$URL/apis/allocation.agones.dev/v1/namespaces/$NS/gameserverallocations" \
    -d "{\"apiVersion\":\"allocation.agones.dev/v1\",\"kind\":\"GameServerAllocation\",\"spec\":{\"selectors\":[{\"matchLabels\":{\"agones.dev/fleet\":\"$FLEET\"}}]}}"
}

RANDOM=$SEED
declare -A results=()
sessions=()
end=$((SECONDS + DURATION))
next_scale=$SECONDS
while [ $SECONDS -lt $end ]; do
  if [ $SECONDS -ge $next_scale ]; then
    replicas=$((3 + RANDOM % 8))
    "${KUBECTL[@]}" scale fleet "$FLEET" --replicas="$replicas" >/dev/null
    printf '%s  -- scaled %s to %d replicas\n' "$(date +%T)" "$FLEET" "$replicas"
    next_scale=$((SECONDS + 8 + RANDOM % 8))
  fi
  out=$(allocate || true)
  state=$(sed -n 's/.*"state":"\([A-Za-z]*\)".*/\1/p' <<<"$out")
  state=${state:-error}
  results[$state]=$(( ${results[$state]:-0} + 1 ))
  if [ "$state" = Allocated ]; then
    port=$(sed -n 's/.*"ports":\[{"name":"[^"]*","port":\([0-9]*\)}.*/\1/p' <<<"$out")
    [ -n "$port" ] && sessions+=("$port")
  fi
  # End the oldest session now and then: EXIT over the game protocol, as a game server would.
  if [ ${#sessions[@]} -gt 2 ]; then
    printf 'EXIT' > "/dev/udp/127.0.0.1/${sessions[0]}" || true
    sessions=("${sessions[@]:1}")
  fi
  sleep 1
done

echo
echo "allocations by result:"
for k in "${!results[@]}"; do printf '  %-12s %d\n' "$k" "${results[$k]}"; done
echo
"${KUBECTL[@]}" get fleet "$FLEET"
echo
echo "simulator metrics (agones_*):"
curl -s "$URL/metrics" | grep -E '^agones_(gameservers_count|fleets_replicas_count|gameservers_allocations_total)' | sed 's/^/  /'
echo
echo "logs: $RUN_DIR/sim.log"
