"""The worker's periodic drift run: started with the reconciler, stores what it finds, and
runs again to the same rows (idempotent)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from catalog.drift.models import DriftFinding, DriftSideState
from gitops.forges.factory import make_forge
from gitops.git import seed_repository
from portal.settings import Settings
from reconciler.drift_job import DriftJob
from tests.catalog.drift.conftest import QUOTA, Main
from tests.scaffolder.conftest import write_skeleton

pytestmark = pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)


def _rows(engine: Engine) -> list[tuple[int | None, str, str]]:
    with Session(engine) as session:
        return [(f.id, f.side, f.entity) for f in session.exec(
            select(DriftFinding).order_by(DriftFinding.entity, DriftFinding.side))]


def test_periodic_drift_stores_findings_idempotently(settings: Settings, engine: Engine,
                                                     tmp_path: Path) -> None:
    tree = write_skeleton(tmp_path / "skeleton")
    seed_repository(settings.resolved_gitops_repo, tree)
    main = Main(settings.resolved_gitops_repo, tree)
    main.write(QUOTA, main.read(QUOTA).replace('requests.cpu: "2"', 'requests.cpu: "3"'))
    main.commit("hand edit")
    fast = settings.model_copy(update={"drift_interval_s": 0.1})
    job = DriftJob(fast, engine, make_forge(fast, engine))
    stop = threading.Event()
    thread = threading.Thread(target=job.run, args=(stop,), daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            with Session(engine) as session:
                if len(session.exec(select(DriftSideState)).all()) == 4:
                    break
            time.sleep(0.1)
    finally:
        stop.set()
        thread.join(timeout=120)
    with Session(engine) as session:
        sides = {s.side: s.status for s in session.exec(select(DriftSideState))}
    assert sides == {"git": "checked", "catalog": "checked", "cluster": "not connected",
                     "keycloak": "not configured"}
    first = _rows(engine)
    assert ("git", "namespace:platform/platform-tools") in [(s, e) for _i, s, e in first]
    job.run_once()
    assert _rows(engine) == first  # the same rows, the same ids

    # 0 switches it off: run() returns at once.
    off = DriftJob(settings.model_copy(update={"drift_interval_s": 0}), engine,
                   make_forge(settings, engine))
    done = threading.Event()
    threading.Thread(target=lambda: (off.run(threading.Event()), done.set()),
                     daemon=True).start()
    assert done.wait(5)
