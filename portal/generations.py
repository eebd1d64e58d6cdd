"""Generations: counters in the database that move whenever what a cache holds may have changed.

One row, ``caas_generations(id=1, catalog, identity)``, bumped by database triggers (migration
``generations_0001``), so no write path can forget it and every server process sees the same
values:

- ``catalog`` moves with every committed write to ``catalog_entities``, ``catalog_relations``
  or ``catalog_placements`` (an index after a merge, a status, a reindex, a decommission): the
  catalog's list cache is keyed by it (``catalog.list_cache``);
- ``identity`` moves when a credential or what a principal is made of changes: an API token or a
  sign-in session revoked, expired, re-assigned or deleted; a user changed or deleted; a
  membership added, changed or removed; a team renamed or deleted. The cache of authenticated
  principals is keyed by it (``portal.auth.principal_cache``): a revocation is refused on the
  very next request, in every process.

A cache reads the generation BEFORE it reads the data it stores under it: a write committing in
between then stores new data under the old generation (harmless, just fresher), never old data
under the new one. On PostgreSQL the triggers are deferred to commit and bump at most once per
transaction (the row is locked only for the commit's instant, so concurrent writers never
deadlock on it); on SQLite (one writer) they bump per row.

Reads use one dedicated autocommit connection per engine, not the pool: the read runs on the
event loop, which must never wait for a pooled connection that a request holds until the loop
serves it. The connection is closed with ``engine.dispose()`` and replaced after an error.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from dataclasses import dataclass

from sqlalchemy import Engine, PoolProxiedConnection, event
from sqlalchemy.exc import OperationalError

_READ = "SELECT catalog, identity FROM caas_generations WHERE id = 1"


@dataclass(frozen=True)
class Generation:
    """The current values (integers; they only grow)."""

    catalog: int
    identity: int


class _Reader:
    def __init__(self, engine: Engine) -> None:
        self.engine = weakref.ref(engine)  # the registry's value must not keep its key alive
        self.lock = threading.Lock()
        self.conn: PoolProxiedConnection | None = None

    def read(self) -> Generation:
        with self.lock:
            for attempt in (1, 2):
                try:
                    if self.conn is None:
                        self.conn = self._connect()
                    cursor = self.conn.cursor()
                    try:
                        cursor.execute(_READ)
                        row = cursor.fetchone()
                    finally:
                        cursor.close()
                    if row is None:
                        raise RuntimeError("caas_generations has no row: run the migrations")
                    return Generation(catalog=int(row[0]), identity=int(row[1]))
                except Exception as exc:  # the driver's own errors: the connection is suspect
                    self.close_locked()  # a dropped connection: one fresh try
                    if attempt == 2:
                        # As SQLAlchemy would raise it: the app answers it with a 503.
                        raise OperationalError(_READ, None, exc) from exc
            raise AssertionError("unreachable")

    def _connect(self) -> PoolProxiedConnection:
        """The driver's connection, in autocommit (every read sees the latest commit and no
        transaction stays open): SQLAlchemy's statement machinery costs more than the read."""
        engine = self.engine()
        assert engine is not None, "read through a live engine only"
        conn = engine.raw_connection()
        if engine.dialect.name == "postgresql":
            conn.driver_connection.autocommit = True  # type: ignore[union-attr]
        # SQLite: portal.db's connect hook already set isolation_level=None (autocommit).
        return conn

    def close(self) -> None:
        with self.lock:
            self.close_locked()

    def close_locked(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.invalidate()  # never back to the pool in autocommit


_readers: weakref.WeakKeyDictionary[Engine, _Reader] = weakref.WeakKeyDictionary()
_registry_lock = threading.Lock()


def current(engine: Engine) -> Generation:
    """The generations as committed now (one indexed single-row read, ~0.1 ms).

    Raises ``sqlalchemy.exc.OperationalError`` when it cannot be read twice in a row."""
    reader = _readers.get(engine)
    if reader is None:
        with _registry_lock:
            reader = _readers.get(engine)
            if reader is None:
                reader = _readers[engine] = _Reader(engine)
                event.listen(engine, "engine_disposed", lambda _engine: reader.close())
    return reader.read()
