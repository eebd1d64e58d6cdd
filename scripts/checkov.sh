#!/usr/bin/env bash
# Runs checkov (Bridgecrew's IaC scanner, from PyPI) on the AWS Terraform units and the GitOps
# skeleton. checkov pins its own dependency tree (boto3, networkx, ...) that conflicts with the
# test extras, so it lives in its own virtual environment, .venv-checkov, created here once.
#   scripts/checkov.sh            install if needed, scan, exit non-zero on any failed check
#   scripts/checkov.sh --install  only create/refresh the venv
# Suppressions live inline next to the resource, each with its reason on the same line
# (`#checkov:skip=CKV_X:reason` in HCL, `checkov.io/skip1: CKV_X=reason` annotations in YAML).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${CHECKOV_VENV:-.venv-checkov}"
VERSION="${CHECKOV_VERSION:-3.3.30}"
STAMP="$VENV/.installed-$VERSION"
# Parallel test workers call this at once: one installs under the lock, the others wait for it.
exec 9>"$VENV.lock"
flock 9
if [ ! -f "$STAMP" ]; then
  test -x "$VENV/bin/python" || python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q "checkov==$VERSION"
  touch "$STAMP"
fi
flock -u 9
[ "${1:-}" = "--install" ] && exit 0
export BC_SKIP_MAPPING=TRUE CHECKOV_RUN_SCA_PACKAGE_SCAN_V2=false
status=0
"$VENV/bin/checkov" --quiet --compact --skip-download --framework terraform \
  -d terraform/aws "$@" || status=1
"$VENV/bin/checkov" --quiet --compact --skip-download --framework kubernetes kustomize \
  -d gitops-skeleton "$@" || status=1
exit $status
