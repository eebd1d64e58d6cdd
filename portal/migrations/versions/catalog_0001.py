"""catalog: entities, relations, placements (quota per tenant and environment), timeline.

Revision ID: catalog_0001
Revises: 0001_portal
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "catalog_0001"
down_revision = "0001_portal"
branch_labels = ("catalog",)
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "catalog_entities",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("key", sa.String(300), nullable=False, unique=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("owner", sa.String(100), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("description", sa.String, nullable=False),
        sa.Column("search", sa.String, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("previous_status", sa.String(16), nullable=False),
        sa.Column("sync", sa.String(16), nullable=False),
        sa.Column("health", sa.String(16), nullable=False),
        sa.Column("on_main", sa.Boolean, nullable=False),
        sa.Column("flagged", sa.Boolean, nullable=False),
        sa.Column("orphaned", sa.Boolean, nullable=False),
        sa.Column("parse_problems", sa.JSON, nullable=False),
        sa.Column("problems", sa.JSON, nullable=False),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("path", sa.String(300), nullable=False),
        sa.Column("commit", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_index("ix_catalog_entities_kind_key", "catalog_entities", ["kind", "key"])
    op.create_index("ix_catalog_entities_kind_owner_key", "catalog_entities",
                    ["kind", "owner", "key"])
    op.create_index("ix_catalog_entities_kind_status_key", "catalog_entities",
                    ["kind", "status", "key"])
    op.create_table(
        "catalog_relations",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("source", sa.String(300), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("target", sa.String(300), nullable=False),
    )
    op.create_index("ix_catalog_relations_source", "catalog_relations", ["source"])
    op.create_index("ix_catalog_relations_target_type", "catalog_relations", ["target", "type"])
    op.create_table(
        "catalog_placements",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("namespace", sa.String(300), nullable=False),
        sa.Column("environment", sa.String(100), nullable=False),
        sa.Column("owner", sa.String(100), nullable=False),
        sa.Column("cpu_milli", sa.BigInteger, nullable=False),
        sa.Column("memory_bytes", sa.BigInteger, nullable=False),
        sa.Column("storage_bytes", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_catalog_placements_namespace", "catalog_placements", ["namespace"])
    op.create_index("ix_catalog_placements_env_namespace", "catalog_placements",
                    ["environment", "namespace"])
    op.create_index("ix_catalog_placements_owner", "catalog_placements", ["owner"])
    op.create_table(
        "catalog_timeline",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("entity", sa.String(300), nullable=False),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("detail", sa.JSON, nullable=False),
        sa.Column("at", TS, nullable=False),
    )
    op.create_index("ix_catalog_timeline_entity_at", "catalog_timeline", ["entity", "at", "id"])
    op.create_table(
        "catalog_index_state",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("commit", sa.String(64), nullable=False),
        sa.Column("indexed_at", TS, nullable=False),
    )


def downgrade() -> None:
    for table in ("catalog_index_state", "catalog_timeline", "catalog_placements",
                  "catalog_relations", "catalog_entities"):
        op.drop_table(table)
