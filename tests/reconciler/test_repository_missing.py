"""A worker meeting a GitOps repository without ``main`` says so once, in one line naming
``caas init``, retries quietly, and recovers when ``caas init`` runs; ``/readyz`` and the admins'
home page show the same line. Both databases."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from gitops import git
from gitops.forges.local import LocalForge
from gitops.repo_status import STATUS, RepositoryStatus
from portal import db
from portal.app import create_app
from portal.auth import service as auth_service
from portal.bootstrap import init_platform
from portal.settings import Settings
from reconciler.models import MergeRecord
from reconciler.poller import Poller
from tests.conftest import PASSWORD, REPO_ROOT, bearer, make_settings

SKELETON = REPO_ROOT / "gitops-skeleton"


@pytest.fixture
def local(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url, skeleton_dir=SKELETON,
                         main_poll_interval_s=0.02)


def _lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """What the worker's poller said (the audit trail of init and merges aside)."""
    return [r for r in caplog.records if r.name.startswith("caas") and r.name != "caas.audit"
            and r.levelno >= logging.INFO]


def test_worker_without_main_logs_one_line_and_recovers_after_init(
        local: Settings, caplog: pytest.LogCaptureFixture) -> None:
    engine = db.make_engine(local)
    db.upgrade(engine)
    try:
        git.init_bare(local.resolved_gitops_repo)  # a repository without any branch
        status = RepositoryStatus()
        poller = Poller(local, engine, LocalForge(local, engine), status=status)
        stop = threading.Event()
        caplog.set_level(logging.INFO, logger="caas")
        thread = threading.Thread(target=poller.run, args=(stop,), daemon=True)
        thread.start()
        time.sleep(0.5)  # about 25 polls
        lines = _lines(caplog)
        assert len(lines) == 1, [r.getMessage() for r in lines]
        assert lines[0].levelno == logging.WARNING and lines[0].exc_info is None
        assert "no branch 'main'" in lines[0].getMessage()
        assert "`caas init`" in lines[0].getMessage()
        assert "`caas init`" in status.problem

        caplog.clear()
        init_platform(settings=local, engine=engine)
        deadline = time.monotonic() + 10
        while status.problem and time.monotonic() < deadline:
            time.sleep(0.02)
        stop.set()
        thread.join(timeout=5)
        assert status.problem == ""
        recovered = _lines(caplog)
        assert [r.levelno for r in recovered] == [logging.INFO]
        assert "usable again" in recovered[0].getMessage()
        head = LocalForge(local, engine).head("main")
        with Session(engine) as session:  # the poller picked main up: its merge is recorded
            assert session.exec(select(MergeRecord).where(MergeRecord.commit == head)).first()
    finally:
        engine.dispose()


def test_readyz_and_the_admin_home_page_name_the_fix(
        local: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(STATUS, "ttl_s", 0.0)  # probe on every request in this test
    engine = db.make_engine(local)
    db.upgrade(engine)
    try:
        with TestClient(create_app(local, engine=engine)) as client:
            body = client.get("/readyz").json()
            assert body["status"] == "degraded"
            assert "`caas init`" in body["reason"]
            with Session(engine) as session:
                auth_service.create_user(session, username="root", password=PASSWORD,
                                         is_platform_admin=True)
                auth_service.create_user(session, username="dev", password=PASSWORD)
            home = client.get("/", headers={**bearer(engine, "root"), "Accept": "text/html"})
            assert home.status_code == 200
            assert 'id="platform-problem"' in home.text and "`caas init`" in home.text
            other = client.get("/", headers={**bearer(engine, "dev"), "Accept": "text/html"})
            assert other.status_code == 200 and 'id="platform-problem"' not in other.text
            init_platform(settings=local, engine=engine, admin="root")
            assert client.get("/readyz").json() == {"status": "ready",
                                                    "database": engine.dialect.name}
            home = client.get("/", headers={**bearer(engine, "root"), "Accept": "text/html"})
            assert 'id="platform-problem"' not in home.text
    finally:
        engine.dispose()
