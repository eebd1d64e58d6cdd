"""A GitOps repository seeded with one team and two environments, and the real templates."""

from __future__ import annotations

from pathlib import Path

import pytest

from portal.settings import Settings
from scaffolder.gitrepo import seed_repository

INFRA = """apiVersion: caas.io/v1
kind: Environment
metadata:
  name: {env}
spec:
  provider: local
  tier: {tier}
  capacity:
    cpu: "{cpu}"
    memory: 64Gi
"""


def write_skeleton(root: Path, *, teams: tuple[str, ...] = ("payments", "search"),
                   dev_cpu: str = "40") -> Path:
    for team in teams:
        (root / "teams" / team).mkdir(parents=True, exist_ok=True)
        (root / "teams" / team / "team.yaml").write_text(f"name: {team}\n")
    for env, tier, cpu in (("dev", "dev", dev_cpu), ("prod", "prod", "400")):
        (root / "envs" / env).mkdir(parents=True, exist_ok=True)
        (root / "envs" / env / "infra.yaml").write_text(INFRA.format(env=env, tier=tier, cpu=cpu))
    (root / "README.md").write_text("GitOps repository\n")
    return root


def seed(settings: Settings, tmp_path: Path, **kwargs: object) -> Path:
    skeleton = write_skeleton(tmp_path / "skeleton", **kwargs)  # type: ignore[arg-type]
    seed_repository(settings.resolved_gitops_repo, skeleton)
    return settings.resolved_gitops_repo


@pytest.fixture
def gitops(settings: Settings, tmp_path: Path) -> Path:
    return seed(settings, tmp_path)
