"""Readiness (database reachable, migrations at head) and the worker's health listener."""

from __future__ import annotations

from pathlib import Path

import httpx
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine

from portal import db
from portal.health import HealthServer, readiness
from portal.settings import Settings


def test_migrated_database_is_ready(engine: Engine, db_backend: str) -> None:
    state = readiness(engine)
    assert (state.ready, state.database, state.reason) == (True, db_backend, "")


def test_database_behind_the_migrations_is_not_ready(tmp_path: Path) -> None:
    fresh = create_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    state = readiness(fresh)
    assert not state.ready
    assert state.reason.startswith("migrations not at head (missing ")
    db.upgrade(fresh)
    assert readiness(fresh).ready


def test_unreachable_database_is_not_ready() -> None:
    # Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
    gone = create_engine("postgresql+psycopg://caas:secret@127.0.0.1:9/caas",
                         connect_args={"connect_timeout": 2})
    state = readiness(gone)
    assert not state.ready
    assert state.reason == "database not reachable: OperationalError"
    assert "secret" not in state.reason


def test_health_server_answers_probes(engine: Engine, settings: Settings) -> None:
    alive = [True]
    server = HealthServer(engine, host="127.0.0.1", port=0, alive=lambda: alive[0]).start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}
        ready = httpx.get(f"{base}/readyz")
        assert ready.status_code == 200 and ready.json()["status"] == "ready"
        alive[0] = False
        assert httpx.get(f"{base}/healthz").status_code == 503
        assert httpx.get(f"{base}/nope").status_code == 404
    finally:
        server.stop()
