"""catalog: decommissioned_at, when an entity's files left main (its row is kept with status
``decommissioned``, its timeline and the quotas it ran with).

Revision ID: catalog_0002
Revises: catalog_drift_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "catalog_0002"
down_revision = "catalog_drift_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("catalog_entities",
                  sa.Column("decommissioned_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("catalog_entities") as batch:
        batch.drop_column("decommissioned_at")
