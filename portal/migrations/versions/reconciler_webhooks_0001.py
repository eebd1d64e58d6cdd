"""reconciler: handled GitHub webhook deliveries and plan previews allowed by a platform-admin.

Revision ID: reconciler_webhooks_0001
Revises: reconciler_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "reconciler_webhooks_0001"
down_revision = "reconciler_0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "reconciler_webhook_deliveries",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("delivery_id", sa.String(64), nullable=False, unique=True),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(200), nullable=False),
        sa.Column("received_at", TS, nullable=False),
    )
    op.create_table(
        "reconciler_preview_allowances",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("change_number", sa.Integer, nullable=False),
        sa.Column("head_sha", sa.String(64), nullable=False),
        sa.Column("allowed_by", sa.String(100), nullable=False),
        sa.Column("reason", sa.String(200), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("change_number", "head_sha", name="uq_reconciler_preview_allowances"),
    )


def downgrade() -> None:
    op.drop_table("reconciler_preview_allowances")
    op.drop_table("reconciler_webhook_deliveries")
