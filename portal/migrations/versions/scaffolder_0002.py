"""scaffolder: merge locks, one row per environment or generated name being merged.

Revision ID: scaffolder_0002
Revises: scaffolder_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "scaffolder_0002"
down_revision = "scaffolder_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "scaffolder_merge_locks",
        sa.Column("scope", sa.String(200), primary_key=True),
        sa.Column("holder", sa.String(100), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("scaffolder_merge_locks")
