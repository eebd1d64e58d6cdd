#!/usr/bin/env bash
# Install GitHub's OpenAPI description and webhook examples (tests/github_npm, pinned by its
# package-lock.json) for the tests marked `github_spec`. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" "${PYTHON:-.venv/bin/python}" -m tests.fakes.github_npm
