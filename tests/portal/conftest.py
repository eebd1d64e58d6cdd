"""Fixtures for the OIDC sign-in tests: a fake provider on loopback and a portal on both
databases signing in through it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from portal import db
from portal.app import create_app
from portal.settings import Settings
from tests.conftest import make_settings
from tests.fakes.oidc import CLIENT_ID, CLIENT_SECRET, FakeIdP, running_idp
from tests.harness.databases import SqliteFactory


@pytest.fixture(scope="module")
def idp() -> Iterator[FakeIdP]:
    with running_idp() as fake:
        yield fake


@pytest.fixture(scope="module")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> SqliteFactory:
    return SqliteFactory(tmp_path_factory.mktemp("oidc-sqlite"))


@pytest.fixture(params=["sqlite", "postgresql"])
def oidc_settings(request: pytest.FixtureRequest, tmp_path: Path, idp: FakeIdP,
                  sqlite_template: SqliteFactory) -> Settings:
    if request.param == "sqlite":
        url = sqlite_template.new(tmp_path / "db")
    else:
        url = str(request.getfixturevalue("postgres_factory").new(tmp_path / "db"))
    return make_settings(tmp_path, url, oidc_enabled=True, oidc_issuer=idp.issuer,
                         oidc_client_id=CLIENT_ID, oidc_client_secret=CLIENT_SECRET,
                         base_url="http://testserver")


@pytest.fixture
def oidc_engine(oidc_settings: Settings) -> Iterator[Engine]:
    engine = db.make_engine(oidc_settings)
    yield engine
    engine.dispose()


@pytest.fixture
def portal(oidc_settings: Settings, oidc_engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(oidc_settings, engine=oidc_engine)) as c:
        yield c
