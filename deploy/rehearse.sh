#!/usr/bin/env bash
# make rehearse: the shipped overlays, rendered and run as they render against the simulator at
# its realistic default speed (tests/src/rehearse/), each in a network namespace of its own so
# that the rendered ports are used as they are. Three rehearsals at once: each overlay clean, and
# the prometheus-operator overlay with 2 % allocation failures while one version is installed.
# Durations are the only overrides (printed by each rehearsal); see BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."

TRANSITIONS=${REHEARSE_TRANSITIONS:-6}
PERIOD=${REHEARSE_PERIOD:-8m}
SETTLE=${REHEARSE_SETTLE:-2m}
JUDGE=${REHEARSE_JUDGE_WINDOW:-4m}
# A version the shipped walk (seed 1 from Agones 1.60.0) enters once in its first six
# transitions: 1.60.0 → 1.58.0 → 1.56.0 → 1.57.0 → 1.55.0 → 1.55.0 → 1.57.0.
FAULT_VERSION=${REHEARSE_FAULT_VERSION:-1.56.0}
OUT=${REHEARSE_OUT:-target/rehearse}
BIN=${REHEARSE_BIN:-target/debug/upsoak-rehearse}

if ! unshare --net --pid --fork --kill-child true 2>/dev/null; then
  echo "error: \`unshare --net --pid\` is not permitted here: each rehearsal needs a network namespace of its own (its rendered ports) and a PID namespace (nothing outlives it) (run as root, or where unprivileged user namespaces are allowed: unshare -rn)" >&2
  exit 2
fi
# The README's first deploy step: the webhook token every overlay makes its Secret from.
TOKEN=deploy/components/webhook-token/webhook.token
[ -s "$TOKEN" ] || od -An -tx1 -N32 /dev/urandom | tr -d ' \n' > "$TOKEN"

rm -rf "$OUT"
mkdir -p "$OUT"
run() { # name overlay [extra args]
  local name=$1 overlay=$2; shift 2
  unshare --net --pid --fork --kill-child sh -c 'ip link set lo up && exec "$@"' rehearse "$BIN" \
    --overlay "deploy/overlays/$overlay" --work "$OUT/$name" --transitions "$TRANSITIONS" \
    --set "upsoak-chaos:UPSOAK_WANDERER__SCHEDULE__PERIOD=$PERIOD" \
    --set "upsoak-agent:UPSOAK_SETTLE=$SETTLE" --set "upsoak-agent:UPSOAK_JUDGE_WINDOW=$JUDGE" \
    --json "$OUT/$name.json" --markdown "$OUT/$name.md" "$@" > "$OUT/$name.log" 2>&1
}
start=$(date +%s)
run plain-prometheus plain-prometheus & p1=$!
run prometheus-operator prometheus-operator & p2=$!
run fault prometheus-operator --fault-version "$FAULT_VERSION" --fault-rate 0.02 & p3=$!
rc=0
for p in $p1 $p2 $p3; do wait $p || rc=1; done
for name in plain-prometheus prometheus-operator fault; do
  echo "== $name"
  if [ -s "$OUT/$name.md" ]; then cat "$OUT/$name.md"; else tail -20 "$OUT/$name.log"; fi
done
echo "rehearse: $(( $(date +%s) - start )) s; logs and state under $OUT/"
exit $rc
