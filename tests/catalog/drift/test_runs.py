"""Drift runs are single-flight across processes (both databases): two at once → one runs,
the other joins; "Check now" joins a running run; a killed run's lease is taken over; a run
that lost its lease writes nothing; a run that fails leaves the previous findings whole."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from catalog.drift import catalog_side, runs, service
from catalog.drift.models import DriftFinding, DriftRun, DriftSideState
from gitops.forges.factory import make_forge
from portal.auth.models import Role
from portal.errors import Conflict
from portal.settings import Settings
from scaffolder.registry import Registry
from tests.catalog.drift.conftest import QUOTA, Main, reindex
from tests.conftest import UserFactory


def _edit(engine: Engine, main: Main) -> None:
    main.write(QUOTA, main.read(QUOTA).replace('requests.cpu: "2"', 'requests.cpu: "6"'))
    main.commit("hand edit")
    reindex(engine, main)


def _runs(engine: Engine) -> list[DriftRun]:
    with Session(engine) as session:
        return list(session.exec(select(DriftRun).order_by(DriftRun.id)).all())


def _findings(engine: Engine) -> list[tuple[int | None, str, str, str]]:
    with Session(engine) as session:
        return [(f.id, f.side, f.entity, f.what) for f in session.exec(
            select(DriftFinding).order_by(DriftFinding.entity, DriftFinding.side))]


def test_two_runs_at_once_one_executes_the_other_joins(
        engine: Engine, settings: Settings, main: Main, registry: Registry) -> None:
    _edit(engine, main)
    barrier = threading.Barrier(2)
    reports: list[Any] = []
    errors: list[BaseException] = []

    def one() -> None:
        try:
            with Session(engine) as session:
                barrier.wait()
                reports.append(service.run(session, settings=settings,
                                           forge=make_forge(settings, engine),
                                           registry=registry, sides=["git", "catalog"]))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert errors == []
    [run] = _runs(engine)  # the loser's run row went with its transaction
    assert run.state == "succeeded" and run.findings == 1 and run.rendered == 3
    assert len(reports) == 2
    first, second = ([f.id for f in r.findings] for r in reports)
    assert first == second
    assert [f.side for f in reports[0].findings] == ["git"]

    # The lease itself: of two starts at once, exactly one takes it.
    barrier = threading.Barrier(2)
    got: list[tuple[int | None, bool]] = []

    def start() -> None:
        with Session(engine) as session:
            barrier.wait()
            row, started = runs.start(session, requested_by="t", sides=["git"], lease_s=60)
            got.append((row.id, started))

    threads = [threading.Thread(target=start) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(s for _i, s in got) == [False, True]
    assert got[0][0] == got[1][0]  # the joiner got the runner's run


def test_check_now_joins_a_running_run_and_the_page_says_so(
        app_client: TestClient, engine: Engine, settings: Settings, main: Main,
        registry: Registry, make_user: UserFactory,
        auth_headers: Any) -> None:
    make_user("ada", admin=True)
    make_user("dev", teams={"platform": Role.developer})
    with Session(engine) as session:
        held, started = runs.start(session, requested_by="worker", sides=["git"], lease_s=60)
    assert started
    joined = app_client.post("/api/drift/run", headers=auth_headers("ada"), json={})
    assert joined.status_code == 202 and joined.json()["id"] == held.id
    assert joined.json()["joined"] is True
    # the worker's interval joins without waiting and writes nothing
    with Session(engine) as session:
        report = service.run(session, settings=settings, forge=make_forge(settings, engine),
                             registry=registry, requested_by="worker", wait=False)
    assert report.run is not None and report.run.id == held.id and report.run.state == "running"
    with Session(engine) as session:
        assert session.exec(select(DriftSideState)).all() == []
    page = app_client.get("/drift", headers={**auth_headers("dev"), "accept": "text/html"})
    assert "Running since" in page.text and f"run {held.id}" in page.text
    ran = app_client.post("/drift/run", headers={**auth_headers("ada"), "accept": "text/html"},
                          follow_redirects=False)
    assert ran.status_code == 303 and "already+running" in ran.headers["location"]
    assert app_client.post("/api/drift/run", json={}).status_code == 401
    assert app_client.post("/api/drift/run", headers=auth_headers("dev"),
                           json={}).status_code == 403
    bad = app_client.post("/api/drift/run", headers=auth_headers("ada"),
                          json={"sides": ["disk"]})
    assert bad.status_code == 422 and "sides" in bad.text
    assert [r.id for r in _runs(engine)] == [held.id]  # nothing written by the refusals

    with Session(engine) as session:
        runs.finish(session, held.id or 0, state="succeeded", message="done")
    done = app_client.get("/drift", headers={**auth_headers("dev"), "accept": "text/html"})
    assert "Running since" not in done.text and "done" in done.text


KILLED = """
import sys, time
from pathlib import Path
from sqlmodel import Session
from catalog.drift import runs
from portal import db
from portal.settings import Settings
engine = db.make_engine(Settings(database_url=sys.argv[1], data_dir=Path(sys.argv[2])))
with Session(engine) as session:
    run, started = runs.start(session, requested_by="doomed", sides=["git"], lease_s=1.5)
print(run.id, started, flush=True)
time.sleep(600)
"""


def test_a_killed_run_s_lease_is_taken_over(engine: Engine, settings: Settings, main: Main,
                                             registry: Registry) -> None:
    _edit(engine, main)
    proc = subprocess.Popen([sys.executable, "-c", KILLED, settings.resolved_database_url,
                             str(settings.data_dir)], stdout=subprocess.PIPE, text=True,
                            env=dict(os.environ))
    try:
        assert proc.stdout is not None
        dead_id, started = proc.stdout.readline().split()
        assert started == "True"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    with Session(engine) as session:  # its lease still runs: a request joins the dead run
        joined, started_now = runs.start(session, requested_by="x", sides=["git"], lease_s=60)
    assert (joined.id, started_now) == (int(dead_id), False)
    time.sleep(1.6)
    with Session(engine) as session:
        assert service.get_run(session, int(dead_id)).state == "failed"  # shown as abandoned
        report = service.run(session, settings=settings, forge=make_forge(settings, engine),
                             registry=registry, sides=["git"], requested_by="admin")
    assert [f.entity for f in report.findings] == ["namespace:platform/platform-tools"]
    dead, new = _runs(engine)
    assert (dead.state, dead.message) == ("failed", runs.ABANDONED)
    assert new.state == "succeeded" and new.requested_by == "admin"


def test_a_run_that_lost_its_lease_writes_nothing(engine: Engine, settings: Settings,
                                                  main: Main, registry: Registry) -> None:
    _edit(engine, main)
    with Session(engine, expire_on_commit=False) as session:
        slow, _ = runs.start(session, requested_by="slow", sides=["git"], lease_s=0.2)
    time.sleep(0.3)
    with Session(engine, expire_on_commit=False) as session:
        other, started = runs.start(session, requested_by="other", sides=["git"], lease_s=60)
    assert started
    with pytest.raises(Conflict) as lost:
        service.execute(engine, slow, settings=settings, forge=make_forge(settings, engine),
                        registry=registry)
    assert lost.value.rule == "lease-lost"
    assert _findings(engine) == []
    with Session(engine) as session:
        assert session.exec(select(DriftSideState)).all() == []
    ended = service.execute(engine, other, settings=settings,
                            forge=make_forge(settings, engine), registry=registry)
    assert ended.state == "succeeded" and len(_findings(engine)) == 1
    assert [r.state for r in _runs(engine)] == ["failed", "succeeded"]


def test_a_failed_run_leaves_the_previous_findings_whole(
        engine: Engine, settings: Settings, main: Main, registry: Registry,
        monkeypatch: pytest.MonkeyPatch) -> None:
    _edit(engine, main)
    main.write("teams/search", None)
    main.commit("search removed by hand")
    forge = make_forge(settings, engine)
    with Session(engine) as session:
        service.run(session, settings=settings, forge=forge, registry=registry,
                    sides=["git", "catalog"])
    before = _findings(engine)
    assert {side for _i, side, _e, _w in before} == {"git", "catalog"}
    main.write(QUOTA, main.read(QUOTA).replace('requests.cpu: "6"', 'requests.cpu: "2"'))
    main.commit("hand edit undone: the git side would find nothing now")

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("catalog side down")

    monkeypatch.setattr(catalog_side, "check", broken)
    with Session(engine) as session, pytest.raises(RuntimeError):
        service.run(session, settings=settings, forge=forge, registry=registry,
                    sides=["git", "catalog"])
    assert _findings(engine) == before  # the git side's new (empty) set was not written alone
    last = _runs(engine)[-1]
    assert last.state == "failed" and "catalog side down" in last.message


def test_old_runs_are_pruned(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runs, "KEEP", 2)
    for _ in range(4):
        with Session(engine) as session:
            run, started = runs.start(session, requested_by="t", sides=["git"], lease_s=60)
            assert started
            last = run.id or 0
            runs.finish(session, last, state="succeeded", message="ok")
    kept = [r.id or 0 for r in _runs(engine)]
    assert kept == [last - 1, last]
