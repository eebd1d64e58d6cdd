"""Serialised merges: a lease per scope (an environment, a generated name) in the database.

Two merges that touch the same environment (capacity) or would generate the same name
(collisions) must not both evaluate their checks against the same ``main`` and both land. Each
merge takes a lease on every scope it touches — ``env:<env>`` and ``name:<scope>:<name>`` — by a
conditional UPDATE of one row per scope (``holder IS NULL OR expires_at < now``). Only one
UPDATE of a row can succeed on PostgreSQL (row lock, re-evaluated WHERE under READ COMMITTED)
and on SQLite (one writer at a time), so exactly one merge holds a scope; the others wait and
retry until ``wait_s``, then get a 409. Each lease is its own short transaction (no connection is
held across the git work), and an expired lease — a crashed portal — is taken over.

Public API: ``hold(engine, scopes, holder=…, wait_s=…, lease_s=…)`` (a context manager).
Raises ``portal.errors.Conflict`` (field ``change_id``, rule ``merge-in-progress``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import timedelta

from sqlalchemy import Engine, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from portal.db import utcnow
from portal.errors import Conflict
from scaffolder.models import MergeLock

WAIT_S = 120.0
LEASE_S = 300.0
POLL_S = 0.05


def _ensure(engine: Engine, scope: str) -> None:
    with Session(engine) as session:
        if session.get(MergeLock, scope) is not None:
            return
        session.add(MergeLock(scope=scope))
        try:
            session.commit()
        except IntegrityError:  # another merge created it meanwhile
            session.rollback()


def _try(engine: Engine, scope: str, holder: str, lease_s: float) -> bool:
    now = utcnow()
    with Session(engine) as session:
        result = session.connection().execute(
            update(MergeLock)
            .where(col(MergeLock.scope) == scope,
                   or_(col(MergeLock.holder).is_(None), col(MergeLock.expires_at) < now))
            .values(holder=holder, expires_at=now + timedelta(seconds=lease_s)))
        session.commit()
        return result.rowcount == 1


def _release(engine: Engine, scope: str, holder: str) -> None:
    with Session(engine) as session:
        session.connection().execute(
            update(MergeLock).where(col(MergeLock.scope) == scope,
                                    col(MergeLock.holder) == holder)
            .values(holder=None, expires_at=None))
        session.commit()


@contextmanager
def hold(engine: Engine, scopes: Iterable[str], *, holder: str, wait_s: float = WAIT_S,
         lease_s: float = LEASE_S) -> Iterator[None]:
    """Hold every scope (taken in sorted order, so two merges never wait on each other in a
    cycle) for the duration of the block."""
    ordered = sorted({s[:200] for s in scopes})
    taken: list[str] = []
    try:
        for scope in ordered:
            _ensure(engine, scope)
            deadline = time.monotonic() + wait_s
            while not _try(engine, scope, holder, lease_s):
                if time.monotonic() > deadline:
                    raise Conflict(f"another merge into {scope} is in progress; retry shortly",
                                   field="change_id", rule="merge-in-progress")
                time.sleep(POLL_S)
            taken.append(scope)
        yield
    finally:
        for scope in reversed(taken):
            _release(engine, scope, holder)
