"""How the reconciler runs: in-process for `caas demo` (threads started and stopped with the
app) and as `caas worker --once` (drain, then return)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from gitops.forges.base import MergeEvent
from portal.app import create_app
from portal.settings import Settings
from reconciler import service
from reconciler.models import MergeRecord, WorkerRecord
from reconciler.runtime import run_worker
from tests.reconciler.conftest import jobs_of, make_repo, push

pytestmark = pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
TEAM = {"teams/blue/team.yaml": "apiVersion: caas.io/v1\nkind: Team\nmetadata:\n  name: blue\n"}


def merge_state(engine: Engine, commit: str) -> str:
    with Session(engine) as session:
        return session.exec(select(MergeRecord.state).where(MergeRecord.commit == commit)).one()


def test_in_process_reconciler_runs_with_the_app(settings: Settings, engine: Engine,
                                                 tmp_path: Path) -> None:
    settings = settings.model_copy(update={"main_poll_interval_s": 3600})
    forge = make_repo(settings, engine, tmp_path)
    with TestClient(create_app(settings, engine=engine, background=True)):
        before, commit = push(forge, TEAM)
        with Session(engine) as session:
            service.record_merge_event(session, event=MergeEvent(commit=commit, before=before))
        deadline = time.monotonic() + 60
        while merge_state(engine, commit) != "committed" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert merge_state(engine, commit) == "committed"  # argocd and keycloak skipped
    jobs = jobs_of(engine, commit)
    assert {u: j.state for u, j in jobs.items()} == {
        "plan": "succeeded", "catalog": "succeeded", "argocd": "skipped", "keycloak": "skipped"}
    assert jobs["keycloak"].message.startswith("skipped: Keycloak")
    with Session(engine) as session:  # stopped with the app
        assert all(w.stopped_at is not None for w in session.exec(select(WorkerRecord)))


def test_worker_once_drains_and_returns(settings: Settings, engine: Engine,
                                        tmp_path: Path) -> None:
    forge = make_repo(settings, engine, tmp_path)
    before, commit = push(forge, TEAM)
    with Session(engine) as session:
        service.record_merge_event(session, event=MergeEvent(commit=commit, before=before))
    run_worker(settings, engine, once=True)
    assert merge_state(engine, commit) == "committed"  # nothing connected: skipped jobs
