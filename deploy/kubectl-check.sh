#!/usr/bin/env bash
# Checks that kubectl is at least 1.27, the oldest whose kustomize renders deploy/overlays
# (`labels`, `components`; Debian's kubernetes-client is 1.20 and fails on both). With
# --install, a missing or older kubectl is installed with apt when apt offers >= 1.27 (that is,
# when Kubernetes' apt repository is configured); otherwise, and without --install, it says how
# to get one and fails. APT_GET is the apt-get command (`make deps` passes it, with sudo if needed).
set -euo pipefail
MIN_MINOR=27
APT_GET=${APT_GET:-apt-get}

# MAJOR MINOR of `kubectl version --client -o json` (gitVersion "v1.32.4"), or nothing.
version() {
  command -v kubectl >/dev/null || return 0
  kubectl version --client -o json 2>/dev/null \
    | sed -n 's/.*"gitVersion": *"v\([0-9][0-9]*\)\.\([0-9][0-9]*\)\..*/\1 \2/p' | head -n1
}
recent() { # MAJOR MINOR
  [ "${1:-0}" -gt 1 ] || { [ "${1:-0}" = 1 ] && [ "${2:-0}" -ge "$MIN_MINOR" ]; }
}

v=$(version)
# shellcheck disable=SC2086
if recent $v; then
  exit 0
fi
found=${v:+${v/ /.}}
found=${found:-none}

if [ "${1:-}" = --install ] && command -v apt-cache >/dev/null; then
  candidate=$(apt-cache policy kubectl 2>/dev/null \
    | sed -n 's/^ *Candidate: *\([0-9][0-9]*\)\.\([0-9][0-9]*\).*/\1 \2/p')
  # shellcheck disable=SC2086
  if recent $candidate; then
    echo "installing: kubectl ${candidate/ /.} (found: $found)"
    DEBIAN_FRONTEND=noninteractive $APT_GET install -y -qq kubectl
    v=$(version)
    # shellcheck disable=SC2086
    if recent $v; then exit 0; fi
  fi
fi

arch=$(uname -m); case "$arch" in x86_64) arch=amd64 ;; aarch64) arch=arm64 ;; esac
cat >&2 <<HINT
error: kubectl >= 1.$MIN_MINOR is needed to render deploy/overlays (found: $found).
Install Kubernetes' official binary:
  V=\$(curl -fsSL https://dl.k8s.io/release/stable.txt)
  curl -fLO "https://dl.k8s.io/release/\$V/bin/linux/$arch/kubectl"
  curl -fLO "https://dl.k8s.io/release/\$V/bin/linux/$arch/kubectl.sha256"
  echo "\$(cat kubectl.sha256)  kubectl" | sha256sum --check
  sudo install -m 0755 kubectl /usr/local/bin/kubectl
or Kubernetes' apt repository (https://kubernetes.io/docs/tasks/tools/install-kubectl-linux/):
  sudo mkdir -p -m 755 /etc/apt/keyrings
  curl -fsSL https://pkgs.k8s.io/core:/stable:/v1.32/deb/Release.key \\
    | sudo gpg --dearmor -o /etc/apt/keyrings/kubernetes-apt-keyring.gpg
  echo 'deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] https://pkgs.k8s.io/core:/stable:/v1.32/deb/ /' \\
    | sudo tee /etc/apt/sources.list.d/kubernetes.list
  sudo apt-get update && sudo apt-get install -y kubectl
(on macOS: brew install kubectl), then run make again.
HINT
exit 1
