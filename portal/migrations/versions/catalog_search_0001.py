"""catalog: search terms (one row per entity and distinct word, prefix-searchable), filled in
from the entities already indexed (decommissioned ones are not searched).

Revision ID: catalog_search_0001
Revises: catalog_0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from catalog import search

revision = "catalog_search_0001"
down_revision = "catalog_0002"
branch_labels = None
depends_on = None

BATCH = 1000


def upgrade() -> None:
    table = op.create_table(
        "catalog_search_terms",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("key", sa.String(300), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        # Byte-wise comparison on PostgreSQL too: a prefix is one index range.
        sa.Column("term", sa.String(100).with_variant(sa.String(100, collation="C"),
                                                      "postgresql"), nullable=False),
        sa.Column("field", sa.SmallInteger, nullable=False),
    )
    op.create_index("ix_catalog_search_terms_kind_term_key", "catalog_search_terms",
                    ["kind", "term", "key"])
    op.create_index("ix_catalog_search_terms_key", "catalog_search_terms", ["key"])
    conn = op.get_bind()
    entities = sa.table("catalog_entities", sa.column("key"), sa.column("kind"),
                        sa.column("name"), sa.column("owner"), sa.column("search"),
                        sa.column("status"), sa.column("spec", sa.JSON))
    existing = conn.execute(sa.select(entities.c.key, entities.c.kind, entities.c.name,
                                      entities.c.owner, entities.c.search,
                                      entities.c.spec).where(
        entities.c.status != "decommissioned")).all()
    for i in range(0, len(existing), BATCH):
        rows = search.term_rows(dict(r._mapping) for r in existing[i:i + BATCH])
        if rows:
            conn.execute(table.insert(), rows)


def downgrade() -> None:
    op.drop_table("catalog_search_terms")
