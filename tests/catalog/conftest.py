"""The catalog fixture repository: two teams, three environments, tenants and applications."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from catalog import service
from gitops.gitreader import GitReader
from portal.settings import Settings
from tests.catalog import gitops
from tests.conftest import make_settings


def base_files() -> dict[str, str]:
    files: dict[str, str] = {}
    for name in ("payments", "search"):
        files.update(gitops.team(name))
    files.update(gitops.environment("dev", "dev", cpu="16", memory="64Gi",
                                    storage="1Ti"))
    files.update(gitops.environment("stage", "staging", cpu="32", memory="128Gi",
                                    storage="2Ti"))
    files.update(gitops.environment("prod", "prod", cpu="64", memory="256Gi",
                                    storage="4Ti"))
    # payments/payments-api: base 1 CPU, 2Gi, 10Gi; prod overlay 4 CPU, 8Gi, 50Gi.
    files.update(gitops.tenant("payments", "payments-api",
                               {"dev": None, "prod": ("4", "8Gi", "50Gi")}))
    # payments/payments-batch: base 500m, 1Gi, 5Gi in dev and stage.
    files.update(gitops.tenant("payments", "payments-batch", {"dev": None, "stage": None},
                               base=("500m", "1Gi", "5Gi")))
    # search/search-index: 2 CPU, 4Gi, 100Gi in stage; prod overlay 8 CPU, 16Gi, 200Gi.
    files.update(gitops.tenant("search", "search-index",
                               {"stage": None, "prod": ("8", "16Gi", "200Gi")},
                               base=("2", "4Gi", "100Gi")))
    files.update(gitops.application("payments", "checkout", "payments-api", "prod"))
    files.update(gitops.application("search", "indexer", "search-index", "prod",
                                       component=False))
    files["README.md"] = "GitOps repository\n"
    return files


@pytest.fixture
def repo(tmp_path: Path) -> gitops.Repo:
    r = gitops.Repo(tmp_path / "gitops.git")
    r.commit(base_files(), "bootstrap")
    return r


PRICES = """\
currency: EUR
tiers:
  dev: {cpu: 10, memory_gib: 2, storage_gib: 0.1}
  staging: {cpu: 20, memory_gib: 4, storage_gib: 0.2}
  prod: {cpu: 40, memory_gib: 8, storage_gib: 0.5}
"""


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """The shared settings plus a price sheet with round numbers for hand computation."""
    sheet = tmp_path / "prices.yaml"
    sheet.write_text(PRICES)
    return make_settings(tmp_path, database_url, price_sheet=sheet,
                         gitops_repo=tmp_path / "gitops.git")


@pytest.fixture
def indexed(engine: Engine, repo: gitops.Repo) -> gitops.Repo:
    with Session(engine) as s:
        service.reindex(s, forge=GitReader(repo.git_dir))
    return repo
