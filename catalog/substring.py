"""The catalog lists' ``q`` filter: a case-insensitive substring of an entity's ``search`` text,
answered through a trigram index where that index can answer it, else by a scan.

What matches (the rule, unchanged by the index): an entity matches ``q`` when ``q.lower()``
occurs in its ``search`` text (``catalog.indexer`` writes it lower-cased): ``search LIKE
'%<q>%' ESCAPE '\\'`` with ``%``, ``_`` and ``\\`` escaped (:func:`scan`). That comparison is
the last word on every path below, so an index only narrows the rows it is applied to.

How it stays fast (issue 18: tab search at 15,000 tenant-environment pairs):

- **PostgreSQL**: a GIN index ``ix_catalog_entities_search_trgm`` on ``search
  gin_trgm_ops`` (extension ``pg_trgm``, migration ``catalog_trgm_0001``), built with
  ``fastupdate = off``: a write goes into the index at once rather than into a pending list
  that every search would scan until the next vacuum (after a full reindex that list held every
  row, and a look-up cost 4 ms instead of 0.07 ms at 5,000 rows). The query is the
  same ``LIKE``; the planner answers it with a bitmap scan of that index and rechecks the
  pattern on each candidate row (exact by construction); for a common ``q`` it reads the rows in
  key order instead and stops at the page's end. Both need statistics: a full reindex runs
  ``ANALYZE`` (:func:`after_bulk_write`). For patterns shorter than 3 characters the index has
  no trigram to look up and the planner keeps the scan. A database that refused
  ``CREATE EXTENSION`` has no index: the same query scans (logged once per process).
- **SQLite**: an FTS5 table ``catalog_entities_trgm`` (``tokenize='trigram'``,
  external content ``catalog_entities``, rowid = ``id``) that triggers keep in step with every
  insert, delete and update of ``search``. For a ``q`` of 3 or more characters, ``SELECT rowid
  FROM catalog_entities_trgm WHERE catalog_entities_trgm MATCH '"<q>"'`` (one quoted phrase:
  ``%``, ``_``, ``\\`` and quotes are plain characters in it) finds the candidate rows, and
  the list adds ``id IN (<them>)`` to the ``LIKE``: rows fetched by rowid, then sorted. The
  phrase finds every row whose text holds ``q`` up to FTS5's per-character case folding, a
  superset of the ``LIKE``'s matches, which the ``LIKE`` then cuts to exactly the old result.
  More than :data:`MAX_CANDIDATES` candidates (a common substring) keep the scan in key order,
  which finds a page among the first rows it reads (at 5,100 entities: 0.4 ms for a rare
  ``q`` by rowid against 7 ms scanned; 10 ms by rowid for one in every row against 0.03 ms
  scanned). Shorter queries, which the trigram tokenizer cannot look up (they match nothing
  there), scan; so does a database without the table (logged once per process).

Errors: none of its own; the caller (``catalog.query.list_entities``) validates ``q``.
"""

from __future__ import annotations

import logging
import weakref

from sqlalchemy import ColumnElement, Connection, Engine, text
from sqlmodel import Session, col

from catalog.models import Entity

log = logging.getLogger("caas.catalog")

MIN_INDEXED = 3  # characters (code points): a trigram index has nothing shorter to look up
# SQLite: more candidate rows than this and the scan in key order is the faster plan (it stops
# at the page's last row); at most this many are fetched by rowid and sorted.
MAX_CANDIDATES = 300
FTS_TABLE = "catalog_entities_trgm"
PG_INDEX = "ix_catalog_entities_search_trgm"

# SQLite: the trigram table and the triggers that keep it in step with ``catalog_entities``
# (an external-content table must be told each old value it drops: ``'delete'`` rows).
SQLITE_DDL = (
    "CREATE VIRTUAL TABLE catalog_entities_trgm USING fts5(search, "
    "content='catalog_entities', content_rowid='id', tokenize='trigram')",
    "CREATE TRIGGER catalog_entities_trgm_ai AFTER INSERT ON catalog_entities BEGIN "
    "INSERT INTO catalog_entities_trgm(rowid, search) VALUES (new.id, new.search); END",
    "CREATE TRIGGER catalog_entities_trgm_ad AFTER DELETE ON catalog_entities BEGIN "
    "INSERT INTO catalog_entities_trgm(catalog_entities_trgm, rowid, search) "
    "VALUES ('delete', old.id, old.search); END",
    "CREATE TRIGGER catalog_entities_trgm_au AFTER UPDATE OF id, search ON catalog_entities "
    "BEGIN INSERT INTO catalog_entities_trgm(catalog_entities_trgm, rowid, search) "
    "VALUES ('delete', old.id, old.search); "
    "INSERT INTO catalog_entities_trgm(rowid, search) VALUES (new.id, new.search); END",
    # The rows already there.
    "INSERT INTO catalog_entities_trgm(catalog_entities_trgm) VALUES ('rebuild')",
)
SQLITE_DROP = (
    "DROP TRIGGER IF EXISTS catalog_entities_trgm_ai",
    "DROP TRIGGER IF EXISTS catalog_entities_trgm_ad",
    "DROP TRIGGER IF EXISTS catalog_entities_trgm_au",
    "DROP TABLE IF EXISTS catalog_entities_trgm",
)

CANDIDATES = text("SELECT rowid FROM catalog_entities_trgm WHERE catalog_entities_trgm MATCH "
                  ":phrase LIMIT :n").bindparams(n=MAX_CANDIDATES + 1)

# PostgreSQL: what the migration runs (the extension may be refused: see the migration).
PG_DDL = ("CREATE EXTENSION IF NOT EXISTS pg_trgm",
          f"CREATE INDEX IF NOT EXISTS {PG_INDEX} ON catalog_entities USING gin "
          "(search gin_trgm_ops) WITH (fastupdate = off)")
PG_BY_HAND = "; ".join(PG_DDL)

_indexed: weakref.WeakKeyDictionary[Engine, bool] = weakref.WeakKeyDictionary()


def like_pattern(q: str) -> str:
    """``%<q lower-cased, with \\, % and _ escaped by \\>%``: the ``LIKE`` pattern of ``q``."""
    escaped = q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def scan(q: str) -> ColumnElement[bool]:
    """The rule itself: ``search`` holds ``q.lower()``; compared row by row."""
    return col(Entity.search).like(like_pattern(q), escape="\\")


def fts_phrase(q: str) -> str:
    """``q`` lower-cased as one FTS5 phrase: in double quotes, each ``"`` doubled."""
    return '"' + q.lower().replace('"', '""') + '"'


def candidates(session: Session, q: str) -> list[int] | None:
    """The ids of the rows that may match ``q`` (SQLite's trigram table; at most
    :data:`MAX_CANDIDATES`), or None where the rows are to be scanned: PostgreSQL (whose
    planner takes the GIN index for the ``LIKE`` itself), ``q`` under :data:`MIN_INDEXED`
    characters, a common ``q``, no index. Either way the caller also applies :func:`scan`."""
    if len(q.lower()) < MIN_INDEXED or not has_index(session) or \
            session.get_bind().dialect.name != "sqlite":
        return None
    ids = session.execute(CANDIDATES, {"phrase": fts_phrase(q)}).scalars().all()
    if len(ids) > MAX_CANDIDATES:
        return None  # common: the scan in key order meets a page's worth early
    return list(ids)


def has_index(session: Session) -> bool:
    """Whether this database holds the trigram index (looked up once per engine; its absence
    is logged once: the filter then scans)."""
    bind = session.get_bind()
    engine = bind.engine if isinstance(bind, Connection) else bind
    known = _indexed.get(engine)
    if known is None:
        if engine.dialect.name == "sqlite":
            found = session.execute(text(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = :name"),
                {"name": FTS_TABLE}).first()
        else:
            found = session.execute(text(
                "SELECT 1 FROM pg_indexes WHERE schemaname = current_schema() "
                "AND indexname = :name"), {"name": PG_INDEX}).first()
        known = _indexed[engine] = found is not None
        if not known:
            log.warning("catalog tab search: no trigram index (%s) in this database; "
                        "`q` filters scan every row", FTS_TABLE if engine.dialect.name ==
                        "sqlite" else f"{PG_INDEX}, extension pg_trgm")
    return known


def after_bulk_write(session: Session) -> None:
    """After a write of every row (a full reindex): on PostgreSQL, ``ANALYZE`` the table, so
    the planner knows at once (not when autovacuum comes by) that a rare ``q`` is a few rows
    of the GIN index and a common one a page early in key order. Without statistics it took
    ``kind = 'namespace'`` for 5 rows and scanned them all (3 ms against 0.2 ms at 5,100
    entities). Commits. SQLite: nothing (the candidates decide its plan)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("ANALYZE catalog_entities"))
        session.commit()
