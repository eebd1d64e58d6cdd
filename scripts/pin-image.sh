#!/usr/bin/env bash
# Pins the portal's manifests to one image digest (the release step after `make image`):
# the kustomize images override in gitops-skeleton/platform/caas-portal/manifests and the
# manifests' own image references (which the Gatekeeper image-tag rule sees unbuilt).
# Usage: scripts/pin-image.sh sha256:<64 hex>
set -euo pipefail
cd "$(dirname "$0")/.."
digest="${1:?usage: scripts/pin-image.sh sha256:<64 hex>}"
[[ "$digest" =~ ^sha256:[0-9a-f]{64}$ ]] || { echo "not a sha256 digest: $digest" >&2; exit 1; }
dir=gitops-skeleton/platform/caas-portal/manifests
sed -i -E "s/sha256:[0-9a-f]{64}/$digest/g" "$dir"/*.yaml
grep -q "digest: $digest" "$dir/kustomization.yaml"
echo "pinned $dir to $digest"
