"""scaffolder: local forge pull requests, change sets, tasks and their step log.

Revision ID: scaffolder_0001
Revises: 0001_portal
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "scaffolder_0001"
down_revision = "0001_portal"
branch_labels = ("scaffolder",)
depends_on = None

TS = sa.DateTime(timezone=True)


def _pr_fk() -> sa.ForeignKey:
    return sa.ForeignKey("local_pull_requests.number", ondelete="CASCADE")


def upgrade() -> None:
    op.create_table(
        "local_pull_requests",
        sa.Column("number", sa.Integer, primary_key=True),
        sa.Column("branch", sa.String(255), nullable=False, index=True),
        sa.Column("open_branch", sa.String(255), nullable=True, unique=True),
        sa.Column("base", sa.String(255), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("author", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("head_sha", sa.String(64), nullable=False),
        sa.Column("base_sha", sa.String(64), nullable=False),
        sa.Column("merge_sha", sa.String(64), nullable=True),
        sa.Column("labels", sa.JSON, nullable=False),
        sa.Column("reviewers", sa.JSON, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("merged_at", TS, nullable=True),
        sa.Column("merged_by", sa.String(64), nullable=True),
        sa.Column("closed_at", TS, nullable=True),
        sa.Column("closed_by", sa.String(64), nullable=True),
    )
    op.create_table(
        "local_pr_checks",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("number", sa.Integer, _pr_fk(), nullable=False, index=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("sha", sa.String(64), nullable=False),
        sa.Column("description", sa.String(1000), nullable=False),
        sa.Column("url", sa.String(500), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.UniqueConstraint("number", "name"),
    )
    op.create_table(
        "local_pr_comments",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("number", sa.Integer, _pr_fk(), nullable=False, index=True),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.UniqueConstraint("number", "key"),
    )
    op.create_table(
        "local_pr_approvals",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("number", sa.Integer, _pr_fk(), nullable=False, index=True),
        sa.Column("by", sa.String(64), nullable=False),
        sa.Column("sha", sa.String(64), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.UniqueConstraint("number", "by"),
    )
    op.create_table(
        "scaffolder_changes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("template", sa.String(63), nullable=False),
        sa.Column("template_version", sa.String(64), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("unit_key", sa.String(300), nullable=False, index=True),
        sa.Column("open_unit_key", sa.String(300), nullable=True, unique=True),
        sa.Column("entity", sa.String(300), nullable=False),
        sa.Column("branch", sa.String(255), nullable=False, index=True),
        sa.Column("forge", sa.String(16), nullable=False),
        sa.Column("number", sa.Integer, nullable=True, index=True),
        sa.Column("url", sa.String(500), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("author", sa.String(64), nullable=False, index=True),
        sa.Column("team", sa.String(63), nullable=True),
        sa.Column("envs", sa.JSON, nullable=False),
        sa.Column("tier", sa.String(16), nullable=False),
        sa.Column("touches_envs", sa.Boolean, nullable=False),
        sa.Column("routing", sa.String(500), nullable=False),
        sa.Column("answers", sa.JSON, nullable=False),
        sa.Column("files", sa.JSON, nullable=False),
        sa.Column("diff", sa.Text, nullable=False),
        sa.Column("checks", sa.JSON, nullable=False),
        sa.Column("checks_green", sa.Boolean, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("base_sha", sa.String(64), nullable=False),
        sa.Column("head_sha", sa.String(64), nullable=False),
        sa.Column("merge_sha", sa.String(64), nullable=True),
        sa.Column("approved_by", sa.JSON, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "scaffolder_tasks",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("template", sa.String(63), nullable=False),
        sa.Column("requested_by", sa.String(64), nullable=False, index=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("request", sa.JSON, nullable=False),
        sa.Column("change_id", sa.Integer, sa.ForeignKey("scaffolder_changes.id"), nullable=True),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "scaffolder_task_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("task_id", sa.Integer, sa.ForeignKey("scaffolder_tasks.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("at", TS, nullable=False),
        sa.Column("step", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
    )


def downgrade() -> None:
    for table in ("scaffolder_task_events", "scaffolder_tasks", "scaffolder_changes",
                  "local_pr_approvals", "local_pr_comments", "local_pr_checks",
                  "local_pull_requests"):
        op.drop_table(table)
