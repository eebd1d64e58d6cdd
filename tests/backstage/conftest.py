"""Backstage's npm packages, installed once with ``npm ci`` from the committed lock file."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.github_npm import ensure_installed

NODE_DIR = Path(__file__).resolve().parent / "node"
SCRIPT = NODE_DIR / "backstage.cjs"


@pytest.fixture(scope="session")
def backstage_node() -> Path:
    """``npm ci`` unless node_modules already holds exactly the committed lock (idempotent,
    guarded by a file lock against parallel workers); the folder with ``backstage.cjs``."""
    ensure_installed(NODE_DIR)
    return NODE_DIR


def run_node(mode: str, payload: Any, work: Path) -> Any:
    """Run ``backstage.cjs <mode>`` on ``payload`` (written as JSON) and return its JSON output."""
    node = shutil.which("node")
    assert node, "node is needed for the backstage suite"
    data = work / f"{mode}-input.json"
    data.write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")
    done = subprocess.run([node, str(SCRIPT), mode, str(data)], capture_output=True, text=True,
                          timeout=900, check=False, cwd=NODE_DIR)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout)
