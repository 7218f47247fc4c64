#!/usr/bin/env bash
# `make deploy-check`: the deploy/ tree is current, renders, validates and passes promtool and
# amtool. PYTHON is the venv that `make` fills from deploy/requirements.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-target/deploy-venv/bin/python}
OUT=target/deploy-check
rm -rf "$OUT"
mkdir -p "$OUT"

# kustomize in kubectl < 1.27 cannot render the overlays; this says how to get a newer one.
./deploy/kubectl-check.sh

# Copies kustomize needs inside its directories (it reads no file outside them), and the
# example overlay's copies, which must start from what deploy/base ships.
stale=0
for pair in chaos/spaces/agones.yaml:deploy/base/agones-space.yaml \
            rules/slos.yaml:deploy/base/slos.yaml \
            rules/upsoak-rules.yaml:deploy/overlays/plain-prometheus/upsoak-rules.yaml \
            deploy/base/sidecar.yaml:deploy/overlays/example/sidecar.yaml \
            deploy/base/agones-space.yaml:deploy/overlays/example/agones-space.yaml; do
  src=${pair%%:*} copy=${pair#*:}
  if ! cmp -s "$src" "$copy"; then
    echo "error: $copy is stale; refresh it with: cp $src $copy" >&2
    stale=1
  fi
done
[ "$stale" = 0 ] || exit 1
echo "copies of the space, the SLO specs, the rules and the example's sidecar and space are current"

# The webhook token is a git-ignored file every overlay generates its Secret from (README's
# first deploy step makes it); a fresh clone has none, so make a random one to render with.
TOKEN=deploy/components/webhook-token/webhook.token
if [ ! -s "$TOKEN" ]; then
  od -An -tx1 -N32 /dev/urandom | tr -d ' \n' > "$TOKEN"
  echo "made $TOKEN (a random token; git ignores it)"
fi

for overlay in prometheus-operator plain-prometheus example; do
  kubectl kustomize "deploy/overlays/$overlay" > "$OUT/$overlay.yaml"
  "$PYTHON" deploy/check.py "$OUT/$overlay.yaml" "$OUT/$overlay"
  while read -r f; do
    [ -n "$f" ] || continue
    case "$f" in
      *prometheus.yml) promtool check config "$f" ;;
      *) promtool check rules "$f" ;;
    esac
  done < "$OUT/$overlay/promtool-inputs"
done

AM=deploy/alertmanager/alertmanager.yml
amtool check-config "$AM"
route() { # RECEIVER LABEL=VALUE...: the alert is routed to exactly RECEIVER
  local want=$1; shift
  amtool config routes test --config.file="$AM" --verify.receivers="$want" "$@" >/dev/null 2>&1 \
    || { echo "error: $AM does not route {$*} to $want" >&2; exit 1; }
}
route upsoak-page alertname=UpsoakSloViolation severity=critical group=allocation slo=allocation-success
route upsoak-chat alertname=UpsoakSloViolation severity=warning group=allocation slo=allocation-latency-p99
route upsoak-log alertname=UpsoakSloViolation severity=info group=fleets slo=x
route upsoak-ticket alertname=UpsoakSloViolation group=fleets slo=x
route upsoak-agent alertname=AgonesControllerDown namespace=agones-system
echo "$AM routes UpsoakSloViolation by severity"
