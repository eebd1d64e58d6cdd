"""`caas catalog reindex` on the embedded setup (SQLite, local forge)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine, text

from tests.catalog import gitops
from tests.catalog.conftest import base_files


def test_reindex_command(tmp_path: Path) -> None:
    data = tmp_path / ".caas"
    repo = gitops.Repo(data / "gitops.git")
    files = base_files()
    files["envs/prod/infra.yaml"] = "tier: [prod"  # malformed: flagged, the rest indexed
    repo.commit(files)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("CAAS_")},
           "CAAS_DATA_DIR": str(data), "CAAS_GITOPS_REPO": str(repo.git_dir),
           "CAAS_LOG_FORMAT": "text", "CAAS_LOG_LEVEL": "WARNING"}
    proc = subprocess.run([sys.executable, "-m", "portal.cli", "catalog", "reindex"], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "10 added, 0 updated, 0 removed, 1 flagged" in proc.stdout
    assert "flagged: environment:prod" in proc.stdout
    engine = create_engine(f"sqlite:///{data / 'caas.db'}")
    with engine.connect() as conn:
        count = conn.execute(text("SELECT count(*) FROM catalog_entities")).scalar()
        state = conn.execute(text("SELECT \"commit\" FROM catalog_index_state")).scalar()
    engine.dispose()
    assert (count, state) == (10, repo.head)
