"""`caas drift [--json]` on the embedded setup (SQLite, local forge): exit 0 when git and the
catalog agree, 1 with the findings when they do not; unknown sides say why."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from gitops.git import seed_repository
from tests.catalog.drift.conftest import QUOTA, Main
from tests.scaffolder.conftest import write_skeleton


def _caas(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("CAAS_")},
           "CAAS_DATA_DIR": str(data), "CAAS_LOG_FORMAT": "text", "CAAS_LOG_LEVEL": "WARNING"}
    return subprocess.run([sys.executable, "-m", "portal.cli", *args], env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def test_drift_command(tmp_path: Path) -> None:
    data = tmp_path / ".caas"
    tree = write_skeleton(tmp_path / "skeleton")
    seed_repository(data / "gitops.git", tree)
    assert _caas(data, "catalog", "reindex").returncode == 0

    clean = _caas(data, "drift")
    assert clean.returncode == 0, clean.stderr
    assert "0 drifted, 0 unknown" in clean.stdout
    assert "cluster   not connected" in clean.stdout and "keycloak  not configured" in clean.stdout

    main = Main(data / "gitops.git", tree)
    main.write(QUOTA, main.read(QUOTA).replace('requests.cpu: "2"', 'requests.cpu: "7"'))
    main.commit("hand edit")
    text = _caas(data, "drift", "--side", "git")
    assert text.returncode == 1, text.stderr
    assert ("drift   git       namespace:platform/platform-tools: edited by hand" in text.stdout
            and "[fix: Open a re-render PR]" in text.stdout)

    report = _caas(data, "drift", "--json", "--side", "git", "--side", "catalog")
    assert report.returncode == 1, report.stderr
    doc = json.loads(report.stdout)
    assert sorted((f["side"], f["entity"]) for f in doc["findings"]) == [
        ("catalog", "namespace:platform/platform-tools"),  # indexed before the edit
        ("git", "namespace:platform/platform-tools")]
    assert doc["counts"] == {"namespace/catalog": 1, "namespace/git": 1}

    bad = _caas(data, "drift", "--side", "disk")
    assert bad.returncode == 2 and "side 'disk' must be one of" in bad.stderr


def test_side_limits_the_report_and_the_exit_code(tmp_path: Path) -> None:
    """``--side catalog`` checks the catalog only; it used to list (and exit 1 on) the git
    findings an earlier run had stored."""
    data = tmp_path / ".caas"
    tree = write_skeleton(tmp_path / "skeleton")
    seed_repository(data / "gitops.git", tree)
    main = Main(data / "gitops.git", tree)
    main.write(QUOTA, main.read(QUOTA).replace('requests.cpu: "2"', 'requests.cpu: "7"'))
    main.commit("hand edit")
    assert _caas(data, "catalog", "reindex").returncode == 0
    assert _caas(data, "drift", "--side", "git").returncode == 1
    catalog = _caas(data, "drift", "--json", "--side", "catalog")
    assert catalog.returncode == 0, catalog.stdout
    doc = json.loads(catalog.stdout)
    assert doc["findings"] == [] and doc["counts"] == {}
    assert [s["side"] for s in doc["sides"]] == ["catalog"]
