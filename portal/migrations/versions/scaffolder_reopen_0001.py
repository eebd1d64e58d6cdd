"""scaffolder: reservation, a change's place in the order of unit reservations when it is not
its id (a pull request reopened on the forge reserves anew, after every other change).

Revision ID: scaffolder_reopen_0001
Revises: scaffolder_0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "scaffolder_reopen_0001"
down_revision = "scaffolder_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("scaffolder_changes", sa.Column("reservation", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("scaffolder_changes") as batch:
        batch.drop_column("reservation")
