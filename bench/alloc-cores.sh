#!/usr/bin/env bash
# Allocation throughput of upsoak-sim against the cores it gets (issue 10, the world lock):
# the simulator pinned with taskset to one core, then to two, with wrk pinned beside it;
# GameServerAllocations answered Allocated per second at -c64 and -c512, and GET /version per
# second for comparison. Each allocation figure comes from a fresh simulator whose one Fleet
# is all Ready, with `allocation.latency: 0ms` (the simulator's own cost): Allocated answers,
# counted by the simulator's own histogram over a 0.4 s window inside wrk's run, with the
# simulator's CPU use over it; a window in which the Fleet ran out says so.
#
# Usage: bench/alloc-cores.sh            (builds target/release/upsoak-sim)
#        BIN=path/to/upsoak-sim bench/alloc-cores.sh   (measures that binary, builds nothing)
# CPUs: ONE (0) and TWO (0,1) for the simulator; APART (1) for wrk beside ONE on a core of its
#   own; on two cores "beside" means sharing. On a machine with four or more, use e.g.
#   ONE=0 TWO=0,1 APART=2,3 SHARED=2,3 to keep wrk off the simulator's cores in every row.
# Knobs: REPLICAS (18000: each GameServer holds a UDP socket, and `ulimit -n` is often 20000),
#   WINDOW (0.4 s counted, within wrk's run: 18000 servers last 0.9 s at 20,000/s),
#   SECS per wrk run (2), RUNS per figure (3; the median is printed).
# Needs wrk (apt-get install wrk) and taskset (util-linux).
set -euo pipefail
cd "$(dirname "$0")/.."
REPLICAS=${REPLICAS:-18000}
SECS=${SECS:-2}
WINDOW=${WINDOW:-0.4}
ONE=${ONE:-0}
TWO=${TWO:-0,1}
APART=${APART:-1}
SHARED=${SHARED:-$TWO}
RUNS=${RUNS:-3}
command -v wrk >/dev/null || { echo "error: wrk is not installed (apt-get install wrk)"; exit 2; }
command -v taskset >/dev/null || { echo "error: taskset is not installed (apt-get install util-linux)"; exit 2; }
if [ -z "${BIN:-}" ]; then
  cargo build --release --locked -p upsoak-sim >/dev/null 2>&1
  BIN=target/release/upsoak-sim
fi
[ "$(nproc --all)" -ge 2 ] || { echo "error: needs at least 2 cores"; exit 2; }

dir=$(mktemp -d)
pid=
stop_sim() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  pid=
}
trap 'stop_sim; rm -rf "$dir"' EXIT
cat sim/config/default.yaml - > "$dir/sim.yaml" <<YAML
game: { port_min: 20000, port_max: 49999 }
allocation: { latency: 0ms }
fleets: [ { name: bench, replicas: $REPLICAS } ]
YAML
cp sim/config/default.yaml "$dir/empty.yaml"

# start_sim CPUS [CONFIG WANT]: a fresh simulator pinned to CPUS, once WANT (default REPLICAS)
# servers are Ready; sets $url.
start_sim() {
  local config=${2:-$dir/sim.yaml} want=${3:-$REPLICAS}
  taskset -c "$1" "$BIN" --config "$config" > "$dir/out" 2> "$dir/log" &
  pid=$!
  for _ in $(seq 400); do grep -q listening "$dir/out" 2>/dev/null && break; sleep 0.05; done
  url=$(sed -n 's/^listening on //p' "$dir/out")
  [ -n "$url" ] || { echo "error: the simulator did not start:" >&2; cat "$dir/log" >&2; stop_sim; exit 4; }
  local ready=0 deadline=$((SECONDS + 120))
  while [ "$ready" != "$want" ]; do
    [ $SECONDS -lt $deadline ] || { echo "error: only $ready of $want Ready after 120 s" >&2; stop_sim; exit 4; }
    sleep 0.2
    ready=$(curl -s -m 10 "$url/metrics" | sed -n 's/^agones_fleets_replicas_count{name="bench",namespace="default",type="ready"} //p')
    ready=${ready:-0}
  done
}

# answered: Allocated and UnAllocated answers so far ("A U"), from one scrape of the
# simulator's histogram.
answered() {
  curl -s -m 10 "$url/metrics" | awk '/^agones_gameserver_allocations_duration_seconds_count/ {
      if (index($0, "status=\"Allocated\"")) a += $NF
      if (index($0, "status=\"UnAllocated\"")) u += $NF
    } END {printf "%d %d", a, u}'
}

# alloc_rate SIM_CPUS WRK_CPUS CONNS: Allocated/s of one run on a fresh simulator, counted by
# the simulator over a window of WINDOW seconds that starts 0.2 s into wrk's run (so neither
# connecting nor an emptied Fleet is in it).
alloc_rate() {
  start_sim "$1"
  local threads; threads=$(echo "$2" | tr ',' '\n' | wc -l)
  taskset -c "$2" wrk -t"$threads" -c"$3" -d"${SECS}s" -s bench/alloc-post.lua \
    "$url/apis/allocation.agones.dev/v1/namespaces/default/gameserverallocations" > "$dir/wrk" &
  local wrk_pid=$! t0 a0 u0 c0 t1 a1 u1 c1
  sleep 0.2
  t0=$(date +%s.%N); c0=$(cpu_ticks); read -r a0 u0 <<< "$(answered)"
  sleep "$WINDOW"
  t1=$(date +%s.%N); c1=$(cpu_ticks); read -r a1 u1 <<< "$(answered)"
  wait "$wrk_pid"
  stop_sim
  if [ $((u1 - u0)) -gt 0 ]; then
    echo "warning: the Fleet ran out within the window ($((u1 - u0)) UnAllocated): raise REPLICAS or lower WINDOW" >&2
  fi
  echo "$a0 $a1 $t0 $t1 $c0 $c1 $(getconf CLK_TCK)" \
    | awk '{printf "%.0f/%.2f", ($2 - $1) / ($4 - $3), ($6 - $5) / $7 / ($4 - $3)}'
}

# cpu_ticks: CPU time the simulator has used, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }

# version_rate SIM_CPUS WRK_CPUS CONNS: GET /version per second.
version_rate() {
  start_sim "$1" "$dir/empty.yaml" 0
  local threads; threads=$(echo "$2" | tr ',' '\n' | wc -l)
  taskset -c "$2" wrk -t"$threads" -c"$3" -d"${SECS}s" "$url/version" > "$dir/wrk"
  stop_sim
  sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' "$dir/wrk" | awk '{printf "%.0f/-", $1}'
}

# median: of RATE/CPU words, the median rate.
median() { tr ' ' '\n' | grep . | cut -d/ -f1 | sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }

# figure NAME FUNCTION ARGS...: RUNS runs, their values and median, and the load average.
figure() {
  local name=$1; shift
  local vals=() load
  load=$(cut -d' ' -f1 /proc/loadavg)
  for _ in $(seq "$RUNS"); do vals+=("$("$@")"); done
  printf '%-50s median %6s /s   runs (/s / simulator cores): %s   load: %s\n' \
    "$name" "$(echo "${vals[*]}" | median)" "${vals[*]}" "$load"
}

echo "binary: $BIN; Fleet of $REPLICAS Ready; wrk runs of ${SECS} s, Allocated counted over ${WINDOW} s of each; median of $RUNS runs"
echo "machine: $(nproc --all) cores; $(uptime | sed 's/.*load/load/')"
for c in 64 512; do
  figure "sim cpu $ONE, wrk cpu $APART, -c$c" alloc_rate "$ONE" "$APART" "$c"
  figure "sim cpu $ONE, wrk cpu $ONE (beside it), -c$c" alloc_rate "$ONE" "$ONE" "$c"
  figure "sim cpus $TWO, wrk cpus $SHARED, -c$c" alloc_rate "$TWO" "$SHARED" "$c"
done
figure "GET /version: sim cpu $ONE, wrk cpu $APART, -c64" version_rate "$ONE" "$APART" 64
figure "GET /version: sim cpu $ONE, wrk cpu $ONE, -c64" version_rate "$ONE" "$ONE" 64
figure "GET /version: sim cpus $TWO, wrk cpus $SHARED, -c64" version_rate "$TWO" "$SHARED" 64
