"""GitHub's REST description and example deliveries from npm (``tests/github_npm``).

``ensure_installed() -> Path`` runs ``npm ci`` when ``node_modules`` does not hold exactly the
versions ``package-lock.json`` pins (idempotent; a lock file guards concurrent runs) and returns
the ``node_modules`` folder. ``openapi() -> dict`` is ``@octokit/openapi``'s dereferenced
description of api.github.com; ``webhook_examples(event) -> list[dict]`` the examples of one event
from ``@octokit/webhooks-examples``. ``python -m tests.fakes.github_npm`` installs them (CI).
"""

from __future__ import annotations

import fcntl
import functools
import json
import subprocess
from pathlib import Path
from typing import Any

FOLDER = Path(__file__).resolve().parents[1] / "github_npm"
MODULES = FOLDER / "node_modules"


def _pinned(lock: Path) -> dict[str, str]:
    packages = json.loads(lock.read_text())["packages"]
    return {name: str(entry.get("version")) for name, entry in packages.items() if name}


def ensure_installed(folder: Path = FOLDER) -> Path:
    """``npm ci`` in ``folder`` (a committed package.json + package-lock.json) unless its
    ``node_modules`` already holds exactly the pinned versions; returns ``node_modules``."""
    modules = folder / "node_modules"
    installed = modules / ".package-lock.json"
    with (folder / ".install.lock").open("w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        if not installed.exists() or _pinned(installed) != _pinned(folder / "package-lock.json"):
            subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                           cwd=folder, check=True, timeout=600)
    return modules


@functools.cache
def openapi() -> dict[str, Any]:
    path = ensure_installed() / "@octokit/openapi/generated/api.github.com.deref.json"
    return dict(json.loads(path.read_text()))


@functools.cache
def _examples() -> dict[str, list[dict[str, Any]]]:
    path = ensure_installed() / "@octokit/webhooks-examples/api.github.com/index.json"
    return {entry["name"]: entry["examples"] for entry in json.loads(path.read_text())}


def webhook_examples(event: str) -> list[dict[str, Any]]:
    return [json.loads(json.dumps(example)) for example in _examples()[event]]


if __name__ == "__main__":
    print(ensure_installed())
