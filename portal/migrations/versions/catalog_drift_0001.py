"""catalog: drift findings, per-side check state, the git side's per-unit cache (issue 16).

Revision ID: catalog_drift_0001
Revises: catalog_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "catalog_drift_0001"
down_revision = "catalog_0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "catalog_drift_findings",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("entity", sa.String(300), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("team", sa.String(100), nullable=False),
        sa.Column("side", sa.String(16), nullable=False),
        sa.Column("subject", sa.String(300), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("what", sa.String, nullable=False),
        sa.Column("detail", sa.String, nullable=False),
        sa.Column("fix", sa.String(32), nullable=False),
        sa.Column("fix_target", sa.String(300), nullable=False),
        sa.Column("fix_note", sa.String(300), nullable=False),
        sa.Column("first_seen", TS, nullable=False),
        sa.Column("last_seen", TS, nullable=False),
        sa.UniqueConstraint("entity", "side", "subject", name="uq_catalog_drift_findings"),
    )
    op.create_index("ix_catalog_drift_findings_side_entity", "catalog_drift_findings",
                    ["side", "entity"])
    op.create_index("ix_catalog_drift_findings_kind_entity", "catalog_drift_findings",
                    ["kind", "entity"])
    op.create_index("ix_catalog_drift_findings_team_entity", "catalog_drift_findings",
                    ["team", "entity"])
    op.create_table(
        "catalog_drift_sides",
        sa.Column("side", sa.String(16), primary_key=True),
        sa.Column("status", sa.String(300), nullable=False),
        sa.Column("commit", sa.String(64), nullable=False),
        sa.Column("checked", sa.Integer, nullable=False),
        sa.Column("seconds", sa.Float, nullable=False),
        sa.Column("checked_at", TS, nullable=False),
    )
    op.create_table(
        "catalog_drift_units",
        sa.Column("unit", sa.String(300), primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("template_version", sa.String(64), nullable=False),
        sa.Column("findings", sa.JSON, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("catalog_drift_units")
    op.drop_table("catalog_drift_sides")
    op.drop_table("catalog_drift_findings")
