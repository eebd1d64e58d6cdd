"""Drift runs are single-flight: at most one runs at a time across processes and hosts.

A run holds the one lease row of ``catalog_drift_lease`` (name ``drift``), taken with a single
conditional UPDATE — the lease is free, or it has expired — so two processes asking at once
cannot both get it (PostgreSQL re-checks the condition on the row the first one committed;
SQLite serialises writers). The holder renews it every third of ``lease_s`` while it runs
(``Heartbeat``); a killed run stops renewing, its lease runs out and the next request takes it
over, marking the runs it abandoned ``failed``. The transaction that writes a run's findings
first renews the lease on its own row (``fence``): a run that lost its lease writes nothing,
and on PostgreSQL a taker-over waits for that commit, so the findings of two runs never mix.

- ``start(session, *, requested_by, sides, lease_s) -> (run, started)``: a new run holding the
  lease (``started``), or the run already holding it (not ``started``: join it); runs older
  than the last ``KEEP`` ids are deleted then. Commits.
- ``fence(session, run, lease_s)``: ``Conflict`` (rule ``lease-lost``) when another run took
  the lease; does not commit (the caller's write transaction does).
- ``finish(session, run_id, *, state, message, …)``: records the end and frees the lease.
- ``wait(engine, run_id, timeout_s)``: the run once it is no longer running (or its lease ran
  out, then reported ``failed``).
- ``latest(session)``, ``get(session, run_id)`` (``NotFound``), ``public(run, joined=)``,
  ``shown(session, run)`` (a running run whose lease ran out shown ``failed``).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Sequence
from datetime import timedelta
from types import TracebackType

from sqlalchemy import Engine, delete, or_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from catalog.drift.models import DriftLease, DriftRun, RunPublic
from portal.db import aware, utcnow
from portal.errors import Conflict, NotFound

log = logging.getLogger("caas.drift.runs")

LEASE = "drift"
KEEP = 1000  # run rows kept (ids within this many of the newest): one per interval adds up
ABANDONED = "abandoned: its lease ran out (the process running it stopped or was killed)"


def new_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _lease_row(session: Session) -> None:
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(insert(DriftLease).values(name=LEASE).on_conflict_do_nothing())


def start(session: Session, *, requested_by: str, sides: Sequence[str], lease_s: float,
          owner: str | None = None) -> tuple[DriftRun, bool]:
    """Take the lease for a new run, or join the run holding it (see the module docstring)."""
    now = utcnow()
    run = DriftRun(requested_by=requested_by[:100], sides=list(sides), owner=owner or new_owner(),
                   started_at=now)
    session.add(run)
    session.flush()  # the run's id, in the same transaction as the lease
    _lease_row(session)
    taken = session.execute(
        update(DriftLease)
        .where(col(DriftLease.name) == LEASE,
               or_(col(DriftLease.run_id).is_(None), col(DriftLease.expires_at) < now))
        .values(run_id=run.id, owner=run.owner, expires_at=now + timedelta(seconds=lease_s)))
    if taken.rowcount == 1:  # type: ignore[attr-defined]
        session.execute(  # whatever still says running lost its lease: it was abandoned
            update(DriftRun)
            .where(col(DriftRun.state) == "running", col(DriftRun.id) != run.id)
            .values(state="failed", message=ABANDONED, finished_at=now))
        session.execute(delete(DriftRun).where(col(DriftRun.id) <= (run.id or 0) - KEEP))
        session.commit()
        session.refresh(run)
        return run, True
    session.rollback()  # the new run's row goes too
    lease = session.get(DriftLease, LEASE)
    holder = session.get(DriftRun, lease.run_id) if lease and lease.run_id else None
    if holder is None:  # released in between: try once more
        return start(session, requested_by=requested_by, sides=sides, lease_s=lease_s,
                     owner=owner)
    return holder, False


def renew(session: Session, run: DriftRun, lease_s: float) -> bool:
    """Extend ``run``'s lease; False when it no longer holds it. Does not commit."""
    renewed = session.execute(
        update(DriftLease)
        .where(col(DriftLease.name) == LEASE, col(DriftLease.run_id) == run.id,
               col(DriftLease.owner) == run.owner)
        .values(expires_at=utcnow() + timedelta(seconds=lease_s)))
    return bool(renewed.rowcount == 1)  # type: ignore[attr-defined]


def fence(session: Session, run: DriftRun, lease_s: float) -> None:
    """The guard of a run's write transaction (see the module docstring)."""
    if not renew(session, run, lease_s):
        raise Conflict(f"drift run {run.id} lost its lease to another run: its findings are "
                       "not written", field="run", rule="lease-lost")


def finish(session: Session, run_id: int, *, state: str, message: str, commit: str = "",
           findings: int = 0, rendered: int = 0) -> None:
    """Record how run ``run_id`` ended and free the lease if it still holds it. Commits."""
    row = session.get(DriftRun, run_id)
    if row is not None and row.state == "running":
        row.state, row.message, row.finished_at = state, message[:2000], utcnow()
        row.commit, row.findings, row.rendered = commit or row.commit, findings, rendered
        session.add(row)
    session.execute(update(DriftLease).where(col(DriftLease.name) == LEASE,
                                             col(DriftLease.run_id) == run_id)
                    .values(run_id=None, owner="", expires_at=None))
    session.commit()


class Heartbeat:
    """Renews a run's lease every third of ``lease_s`` on a thread of its own while the
    ``with`` block runs; ``lost`` is set when a renewal finds the lease taken."""

    def __init__(self, engine: Engine, run: DriftRun, lease_s: float) -> None:
        self.engine, self.run, self.lease_s = engine, run, lease_s
        self.stop, self.lost = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._beat, name=f"caas-drift-lease-{run.id}",
                                       daemon=True)

    def _beat(self) -> None:
        while not self.stop.wait(self.lease_s / 3):
            try:
                with Session(self.engine) as session:
                    ok = renew(session, self.run, self.lease_s)
                    session.commit()
            except Exception:  # the database is down: try again at the next beat
                log.warning("drift run %s: lease renewal failed", self.run.id, exc_info=True)
                continue
            if not ok:
                self.lost.set()
                return

    def __enter__(self) -> Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop.set()
        self.thread.join()


def get(session: Session, run_id: int) -> DriftRun:
    row = session.get(DriftRun, run_id)
    if row is None:
        raise NotFound(f"run: no drift run {run_id}", field="run_id")
    return row


def latest(session: Session) -> DriftRun | None:
    return session.exec(select(DriftRun).order_by(col(DriftRun.id).desc()).limit(1)).first()


def expired(session: Session, run: DriftRun) -> bool:
    lease = session.get(DriftLease, LEASE)
    return (lease is None or lease.run_id != run.id or lease.expires_at is None
            or aware(lease.expires_at) < utcnow())


def wait(engine: Engine, run_id: int, *, timeout_s: float, poll_s: float = 0.25) -> DriftRun:
    """Run ``run_id`` once it has ended (a run whose lease ran out is marked ``failed``);
    ``Conflict`` (rule ``timeout``) when it still runs after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        with Session(engine, expire_on_commit=False) as session:
            run = get(session, run_id)
            if run.state == "running" and expired(session, run):
                finish(session, run_id, state="failed", message=ABANDONED)
                run = get(session, run_id)
            if run.state != "running":
                return run
        if time.monotonic() > deadline:
            raise Conflict(f"drift run {run_id} is still running after {timeout_s:.0f} s",
                           field="run", rule="timeout")
        time.sleep(poll_s)


def shown(session: Session, run: DriftRun) -> RunPublic:
    """``public``, a run still marked running whose lease ran out shown as what it is."""
    if run.state == "running" and expired(session, run):
        return public(run).model_copy(update={"state": "failed", "message": ABANDONED})
    return public(run)


def public(run: DriftRun, *, joined: bool = False) -> RunPublic:
    return RunPublic(id=run.id or 0, state=run.state, requested_by=run.requested_by,
                     sides=list(run.sides), commit=run.commit, message=run.message,
                     findings=run.findings, rendered=run.rendered,
                     started_at=aware(run.started_at),
                     finished_at=aware(run.finished_at) if run.finished_at else None,
                     joined=joined)
