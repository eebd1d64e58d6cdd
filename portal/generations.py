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

Reads use one dedicated autocommit connection per engine, not the pool: a pooled connection
could be held by a request waiting for the event loop. The connection is closed with
``engine.dispose()`` and replaced after an error.

Serving processes read through :func:`shared` (awaited on the event loop), never :func:`current`:
on PostgreSQL a read is a network round trip, and one per request, blocking the loop, was most
of a server process's time under load (``bench/catalog.py``: py-spy found 63% of the loop's
samples waiting on it; on the busy 2-core machine a round trip waits for the PostgreSQL backend
to be scheduled, so a warm search box ranged from 333 to 5,600 req/s). ``shared`` reads in a
thread, off the loop, and one read answers every request that asked while it was *waiting to
start*:

- a request that asks when no read is running starts one at once;
- a request that asks while a read is running waits for the next read, which starts when the
  running one ends, and shares it with every request that asked meanwhile.

So every answer comes from a read that started after the request asked: a write committed
before a request arrived (in any process or worker) is seen by it, exactly as with a read of
its own; "the next request sees the change" holds. At most one read per engine and event loop
is in flight, whatever the concurrency: one round trip per batch instead of per request. On
SQLite (in-process, a few microseconds, no round trip) ``shared`` reads at once on the loop.
"""

from __future__ import annotations

import asyncio
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


@dataclass
class _Batch:
    """The reads of one engine on one event loop: ``waiting`` is the future of the next read
    (the requests that asked while ``running``); None when nobody waits."""

    running: bool = False
    waiting: asyncio.Future[Generation] | None = None


class _Reader:
    def __init__(self, engine: Engine) -> None:
        self.engine = weakref.ref(engine)  # the registry's value must not keep its key alive
        self.lock = threading.Lock()
        self.conn: PoolProxiedConnection | None = None
        # The reads ``shared`` runs, per event loop (tests run several loops in one process).
        self.batches: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Batch] = (
            weakref.WeakKeyDictionary())

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


def _reader(engine: Engine) -> _Reader:
    reader = _readers.get(engine)
    if reader is None:
        with _registry_lock:
            reader = _readers.get(engine)
            if reader is None:
                reader = _readers[engine] = _Reader(engine)
                event.listen(engine, "engine_disposed", lambda _engine: reader.close())
    return reader


def current(engine: Engine) -> Generation:
    """The generations as committed now (one indexed single-row read, ~0.1 ms), blocking.

    Raises ``sqlalchemy.exc.OperationalError`` when it cannot be read twice in a row."""
    return _reader(engine).read()


async def shared(engine: Engine) -> Generation:
    """The generations as committed now, from a read that started after this call (see the
    module's docstring): on PostgreSQL shared with the concurrent callers on this event loop and
    run in the loop's default executor, never blocking the loop; on SQLite read at once.

    Raises ``sqlalchemy.exc.OperationalError`` as :func:`current` (every caller of that read)."""
    reader = _reader(engine)
    if engine.dialect.name == "sqlite":
        return reader.read()
    loop = asyncio.get_running_loop()
    batch = reader.batches.get(loop)
    if batch is None:  # only this loop's thread touches its batch
        batch = reader.batches[loop] = _Batch()
    future = batch.waiting
    if future is None:
        future = batch.waiting = loop.create_future()
        if not batch.running:
            _start(loop, reader, batch)
    # shield: one caller cancelled (its client went away) must not cancel the others' read.
    return await asyncio.shield(future)


def _start(loop: asyncio.AbstractEventLoop, reader: _Reader, batch: _Batch) -> None:
    """Run the read the waiting callers share; when it ends, start the next one if anybody
    asked meanwhile."""
    future, batch.waiting, batch.running = batch.waiting, None, True
    assert future is not None

    def done(read: asyncio.Future[Generation]) -> None:
        batch.running = False
        if not future.done():  # never cancelled (shielded), but be safe
            if read.cancelled():
                future.cancel()
            elif (error := read.exception()) is not None:
                future.set_exception(error)
            else:
                future.set_result(read.result())
        if batch.waiting is not None:
            _start(loop, reader, batch)

    loop.run_in_executor(None, reader.read).add_done_callback(done)
