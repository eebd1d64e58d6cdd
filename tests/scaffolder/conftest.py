"""The GitOps repository the tests scaffold into: the real ``gitops-skeleton/`` (policies,
the platform team and tenant, the ``dev`` environment) plus two teams and a ``prod``
environment, seeded as a bare repository by the product's own ``seed_repository``."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gitops.git import seed_repository
from portal.settings import REPO_ROOT, Settings

SKELETON = REPO_ROOT / "gitops-skeleton"


def write_skeleton(root: Path, *, teams: tuple[str, ...] = ("payments", "search")) -> Path:
    shutil.copytree(SKELETON, root)
    for team in teams:
        (root / "teams" / team).mkdir(parents=True, exist_ok=True)
        (root / "teams" / team / "team.yaml").write_text(f"name: {team}\n")
    dev = (root / "envs" / "dev" / "infra.yaml").read_text()
    (root / "envs" / "prod").mkdir(parents=True, exist_ok=True)
    (root / "envs" / "prod" / "infra.yaml").write_text(
        dev.replace("name: dev", "name: prod").replace("tier: dev", "tier: prod"))
    return root


def seed(settings: Settings, tmp_path: Path, **kwargs: tuple[str, ...]) -> Path:
    skeleton = write_skeleton(tmp_path / "skeleton", **kwargs)
    seed_repository(settings.resolved_gitops_repo, skeleton)
    return settings.resolved_gitops_repo


@pytest.fixture
def gitops(settings: Settings, tmp_path: Path) -> Path:
    return seed(settings, tmp_path)
