"""identity: declared_memberships, the owners and members of each team as team.yaml on main
declares them (the source of truth for team roles).

Revision ID: identity_git_0001
Revises: identity_0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "identity_git_0001"
down_revision = "identity_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "declared_memberships",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("team", sa.String(63), nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("commit", sa.String(64), nullable=False),
        sa.UniqueConstraint("team", "username"),
    )
    op.create_index("ix_declared_memberships_team", "declared_memberships", ["team"])
    op.create_index("ix_declared_memberships_username", "declared_memberships", ["username"])


def downgrade() -> None:
    op.drop_table("declared_memberships")
