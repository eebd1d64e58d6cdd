"""Shared fixtures. Database-touching tests take ``settings``/``engine`` and run twice:
on SQLite and on a real PostgreSQL started for the session (ids ``[sqlite]``/``[postgresql]``)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from devtools.postgres import postgres_server
from portal import db
from portal.app import create_app
from portal.auth import service as auth_service
from portal.auth.models import Role, User
from portal.settings import Settings
from tests.harness.databases import PostgresFactory, SqliteFactory

REPO_ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct-horse-battery"

os.environ.setdefault("CHECKPOINT_DISABLE", "1")


@pytest.fixture(autouse=True)
def _pr_checks_at_once(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A new PR's deferred checks (``scaffolder.pr_checks``) run at once, in the request that
    opened it, where a worker would run them a moment later: most tests are about what follows
    (review, merge). Tests of the lifecycle itself (``@pytest.mark.checks_after_pr``) leave them
    to the queue and a worker; so do servers started in their own process."""
    if request.node.get_closest_marker("checks_after_pr"):
        return
    from scaffolder import pr_checks

    def at_once(session: Session, *, forge: Any, number: int, sha: str) -> None:
        session.commit()
        pr_checks.run(session, forge=forge, number=number, sha=sha)

    monkeypatch.setattr(pr_checks, "queue", at_once)


@pytest.fixture(scope="session")
def sqlite_factory(tmp_path_factory: pytest.TempPathFactory) -> SqliteFactory:
    return SqliteFactory(tmp_path_factory.mktemp("sqlite-template"))


@pytest.fixture(scope="session")
def postgres_factory() -> Iterator[PostgresFactory]:
    with postgres_server() as url:
        factory = PostgresFactory(url)
        yield factory
        factory.admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(db_backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    factory_name = "sqlite_factory" if db_backend == "sqlite" else "postgres_factory"
    factory = request.getfixturevalue(factory_name)
    return str(factory.new(tmp_path / "db"))


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url)


def make_settings(tmp_path: Path, database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": tmp_path / ".caas",
        "database_url": database_url,
        "secret_key": "test-secret-key-not-for-production",
        "log_format": "text",
        "log_level": "WARNING",
        "worker_poll_interval_s": 0.05,
        **overrides,
    }
    return Settings.model_validate(values)


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    engine = db.make_engine(settings)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """For assertions: call ``session.rollback()`` before reading what the app wrote since."""
    with Session(engine, expire_on_commit=False) as s:
        yield s


@pytest.fixture
def app_client(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    app = create_app(settings, engine=engine)
    with TestClient(app) as client:
        yield client


UserFactory = Callable[..., User]


@pytest.fixture
def make_user(engine: Engine) -> UserFactory:
    """Create a user (and its teams) in a short session of its own, as the app would."""
    return make_user_for(engine)


def make_user_for(engine: Engine) -> UserFactory:
    """The ``make_user`` factory on ``engine`` (for tests that build their own engine)."""

    def factory(username: str, *, teams: dict[str, Role] | None = None,
                admin: bool = False) -> User:
        with Session(engine, expire_on_commit=False) as s:
            user = auth_service.create_user(s, username=username, password=PASSWORD,
                                            is_platform_admin=admin)
            for team, role in (teams or {}).items():
                auth_service.ensure_team(s, name=team)
                auth_service.add_member(s, team=team, username=username, role=role)
            return user

    return factory


def bearer(engine: Engine, username: str) -> dict[str, str]:
    """Headers with a fresh API token for ``username``."""
    with Session(engine, expire_on_commit=False) as s:
        _token, clear = auth_service.create_token(s, username=username, name="test")
    return {"Authorization": f"Bearer {clear}"}


@pytest.fixture
def auth_headers(engine: Engine) -> Callable[[str], dict[str, str]]:
    return lambda username: bearer(engine, username)


# The longest suites first, so that under pytest-xdist (`make test` runs `-n`) they start at once
# on their own workers instead of forming the tail of the run. Lower rank runs earlier.
_HEAVY_FIRST = ("image", "schemathesis", "backstage", "checkov", "github_spec",
                "slow", "terraform", "browser")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        names = {mark.name for mark in item.iter_markers()}
        return next((i for i, name in enumerate(_HEAVY_FIRST) if name in names),
                    len(_HEAVY_FIRST))

    items.sort(key=rank)
