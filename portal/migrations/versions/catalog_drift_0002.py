"""catalog: single-flight drift runs (runs and their lease) and the git side's rendering digests
(issue 16).

Revision ID: catalog_drift_0002
Revises: catalog_search_0001

``catalog_drift_units`` gains ``render_key`` and ``rendered`` (added columns: no table rebuild
on SQLite, so no trigger is lost); the lease table starts with its one row, free.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "catalog_drift_0002"
down_revision = "catalog_search_0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("catalog_drift_units",
                  sa.Column("render_key", sa.String(64), nullable=False, server_default=""))
    op.add_column("catalog_drift_units",
                  sa.Column("rendered", sa.JSON, nullable=False, server_default="{}"))
    op.create_table(
        "catalog_drift_runs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("requested_by", sa.String(100), nullable=False),
        sa.Column("sides", sa.JSON, nullable=False),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("commit", sa.String(64), nullable=False),
        sa.Column("message", sa.String, nullable=False),
        sa.Column("findings", sa.Integer, nullable=False),
        sa.Column("rendered", sa.Integer, nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("finished_at", TS, nullable=True),
    )
    op.create_table(
        "catalog_drift_lease",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("run_id", sa.Integer, nullable=True),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("expires_at", TS, nullable=True),
    )
    op.execute("INSERT INTO catalog_drift_lease (name, owner) VALUES ('drift', '')")


def downgrade() -> None:
    op.drop_table("catalog_drift_lease")
    op.drop_table("catalog_drift_runs")
    with op.batch_alter_table("catalog_drift_units") as batch:
        batch.drop_column("rendered")
        batch.drop_column("render_key")
