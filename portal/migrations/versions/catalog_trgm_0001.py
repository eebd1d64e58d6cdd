"""catalog: a trigram index for the lists' ``q`` substring filter (issue 18; ``catalog.substring``
says how each database uses it).

Revision ID: catalog_trgm_0001
Revises: catalog_drift_0002

PostgreSQL: ``CREATE EXTENSION IF NOT EXISTS pg_trgm`` (a trusted extension since PostgreSQL 13:
the database's owner, or any role with CREATE on the database, may create it; Debian's
``postgresql-15`` ships it), then a GIN index on ``catalog_entities.search gin_trgm_ops``. A
server that refuses the extension (no CREATE on the database, contrib not installed) gets a
warning and no index: the filter keeps scanning, with the same results.

SQLite: an external-content FTS5 table with the ``trigram`` tokenizer over ``search`` and the
triggers that keep it in step, filled from the rows already there. A later migration that
rebuilds ``catalog_entities`` (a batch ``ALTER`` on SQLite copies the table) drops these
triggers and must create them again (``catalog.substring.SQLITE_DDL``).
"""

from __future__ import annotations

import logging

from alembic import op
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from catalog import substring

revision = "catalog_trgm_0001"
down_revision = "catalog_drift_0002"
branch_labels = None
depends_on = None

log = logging.getLogger("caas.catalog")


def upgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name == "sqlite":
        for statement in substring.SQLITE_DDL:
            op.execute(statement)
        return
    try:
        with conn.begin_nested():  # a refusal rolls back to here, not the whole upgrade
            conn.execute(text(substring.PG_DDL[0]))
    except DBAPIError as exc:
        log.warning("pg_trgm refused (%s): catalog tab search scans every row until the "
                    "database owner runs: %s", str(exc.orig or exc).strip().splitlines()[0],
                    substring.PG_BY_HAND)
        return
    op.execute(substring.PG_DDL[1])


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for statement in substring.SQLITE_DROP:
            op.execute(statement)
        return
    op.execute(f"DROP INDEX IF EXISTS {substring.PG_INDEX}")  # the extension stays: shared
