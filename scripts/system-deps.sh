#!/usr/bin/env bash
# Installs the Debian packages the product and its tests use, when they are missing:
# git, PostgreSQL 15 (the tests start their own server), Chromium (browser tests), kubectl
# (kustomize builds), wrk (benchmarks' load). Terraform is a single binary the platform team
# provides on PATH.
# --demo: only what `make demo` needs.
set -euo pipefail

need=()
command -v git >/dev/null || need+=(git)
if [ "${1:-}" != "--demo" ]; then
  command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
    || need+=(postgresql-15)
  command -v chromium >/dev/null || need+=(chromium)
  command -v kubectl >/dev/null || need+=(kubectl)
  command -v runuser >/dev/null || need+=(util-linux)
  command -v npm >/dev/null || need+=(npm)  # GitHub's npm descriptions (github_spec tests)
  command -v wrk >/dev/null || need+=(wrk)  # bench/catalog.py loads the server with it
fi
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != "0" ]; then
    echo "missing system packages: ${need[*]} (run as root or install them)" >&2
    exit 1
  fi
  echo "installing: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if ! command -v terraform >/dev/null; then
  echo "terraform CLI not found on PATH; the reconciler and its tests need it" >&2
  exit 1
fi
# The reconciler reads `terraform init|plan|apply -json` diagnostics; `init -json` exists since
# Terraform 1.9.0.
tf_version=$(terraform version -json 2>/dev/null | sed -n 's/.*"terraform_version": *"\([0-9.]*\)".*/\1/p')
if [ "$(printf '%s\n' 1.9.0 "$tf_version" | sort -V | head -n1)" != "1.9.0" ]; then
  echo "terraform $tf_version is too old: the reconciler needs 1.9.0 or newer" >&2
  exit 1
fi
