"""A real GitOps repository for drift: the product's ``gitops-skeleton/`` (units rendered by
the templates, with their ``.caas-answers.yaml``) plus two hand-written teams, seeded as a bare
repository; ``Main`` commits edits on top of it as a person pushing to main would."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from catalog import service as catalog_service
from gitops.git import commit_directory, out, seed_repository
from gitops.gitreader import GitReader
from portal.settings import Settings
from scaffolder.registry import Registry
from tests.scaffolder.conftest import write_skeleton

QUOTA = "tenants/platform/platform-tools/base/resourcequota.yaml"
APPPROJECT = "teams/platform/appproject.yaml"


class Main:
    """The work tree of ``main``: edit files, then ``commit``."""

    def __init__(self, git_dir: Path, tree: Path) -> None:
        self.git_dir, self.tree = git_dir, tree

    @property
    def head(self) -> str:
        return out(self.git_dir, "rev-parse", "main").strip()

    def read(self, path: str) -> str:
        return (self.tree / path).read_text()

    def write(self, path: str, content: str | None) -> None:
        target = self.tree / path
        if content is None:
            if target.is_dir():
                import shutil

                shutil.rmtree(target)
            else:
                target.unlink()
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)

    def commit(self, message: str = "a change pushed to main") -> str:
        return commit_directory(self.git_dir, self.tree, branch="main", message=message,
                                parents=[self.head])


@pytest.fixture
def main(settings: Settings, tmp_path: Path) -> Main:
    tree = write_skeleton(tmp_path / "skeleton")
    seed_repository(settings.resolved_gitops_repo, tree)
    return Main(settings.resolved_gitops_repo, tree)


@pytest.fixture
def registry(settings: Settings) -> Registry:
    return Registry(settings)


def reindex(engine: Engine, main: Main) -> None:
    with Session(engine) as session:
        catalog_service.reindex(session, forge=GitReader(main.git_dir))


def wait_run(client: TestClient, headers: dict[str, str], run_id: int,
             timeout_s: float = 180) -> dict[str, Any]:
    """Poll ``GET /api/drift/runs/{id}`` until the run has ended; its JSON."""
    deadline = time.monotonic() + timeout_s
    while True:
        got = client.get(f"/api/drift/runs/{run_id}", headers=headers)
        assert got.status_code == 200, got.text
        body: dict[str, Any] = got.json()
        if body["state"] != "running":
            return body
        assert time.monotonic() < deadline, f"run {run_id} still running: {body}"
        time.sleep(0.1)
