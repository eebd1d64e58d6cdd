#!/usr/bin/env bash
# Install Keycloak's admin client (tests/keycloak_npm, pinned by its package-lock.json) for the
# tests marked `keycloak_spec`. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" "${PYTHON:-.venv/bin/python}" -m tests.fakes.keycloak_npm
