"""reconciler: merge events, the job queue and its log, environment locks, unit applies,
workers and the main-branch poller's cursor.

Revision ID: reconciler_0001
Revises: 0001_portal
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "reconciler_0001"
down_revision = "0001_portal"
branch_labels = ("reconciler",)
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "reconciler_merges",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("commit", sa.String(64), nullable=False, unique=True),
        sa.Column("before", sa.String(64), nullable=True),
        sa.Column("change_number", sa.Integer, nullable=True),
        sa.Column("merged_by", sa.String(100), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
        sa.Column("paths", sa.JSON, nullable=False),
        sa.Column("entities", sa.JSON, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("finished_at", TS, nullable=True),
    )
    op.create_table(
        "reconciler_jobs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("commit", sa.String(64), nullable=False),
        sa.Column("unit", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("environment", sa.String(100), nullable=True),
        sa.Column("depends_on", sa.String(200), nullable=True),
        sa.Column("change_number", sa.Integer, nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("not_before", TS, nullable=False),
        sa.Column("lease_owner", sa.String(100), nullable=True),
        sa.Column("lease_expires_at", TS, nullable=True),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("result", sa.JSON, nullable=False),
        sa.Column("entities", sa.JSON, nullable=False),
        sa.Column("message", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("started_at", TS, nullable=True),
        sa.Column("finished_at", TS, nullable=True),
        sa.UniqueConstraint("commit", "unit", name="uq_reconciler_jobs_commit_unit"),
    )
    op.create_index("ix_reconciler_jobs_state_not_before", "reconciler_jobs",
                    ["state", "not_before", "id"])
    op.create_index("ix_reconciler_jobs_environment_state", "reconciler_jobs",
                    ["environment", "state", "id"])
    op.create_index("ix_reconciler_jobs_commit", "reconciler_jobs", ["commit"])
    op.create_table(
        "reconciler_job_logs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("job_id", sa.Integer,
                  sa.ForeignKey("reconciler_jobs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
    )
    op.create_index("ix_reconciler_job_logs_job_id", "reconciler_job_logs", ["job_id", "id"])
    op.create_table(
        "reconciler_env_locks",
        sa.Column("environment", sa.String(100), primary_key=True),
        sa.Column("job_id", sa.Integer, nullable=True),
        sa.Column("owner", sa.String(100), nullable=True),
        sa.Column("expires_at", TS, nullable=True),
    )
    op.create_table(
        "reconciler_unit_applies",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("environment", sa.String(100), nullable=False),
        sa.Column("unit", sa.String(100), nullable=False),
        sa.Column("commit", sa.String(64), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("job_id", sa.Integer, nullable=True),
        sa.Column("summary", sa.JSON, nullable=False),
        sa.Column("outputs", sa.JSON, nullable=False),
        sa.Column("applied_at", TS, nullable=False),
        sa.UniqueConstraint("environment", "unit", "commit", name="uq_reconciler_unit_applies"),
    )
    op.create_index("ix_reconciler_unit_applies_env_unit", "reconciler_unit_applies",
                    ["environment", "unit", "id"])
    op.create_table(
        "reconciler_workers",
        sa.Column("id", sa.String(100), primary_key=True),
        sa.Column("hostname", sa.String(200), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("last_seen_at", TS, nullable=False),
        sa.Column("stopped_at", TS, nullable=True),
    )
    op.create_table(
        "reconciler_cursors",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("commit", sa.String(64), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )


def downgrade() -> None:
    for table in ("reconciler_cursors", "reconciler_workers", "reconciler_unit_applies",
                  "reconciler_env_locks", "reconciler_job_logs", "reconciler_jobs",
                  "reconciler_merges"):
        op.drop_table(table)
