"""reconciler: wake idle workers across processes (PostgreSQL ``NOTIFY``).

A job inserted, or a job leaving ``running`` (queued again, or ended: its dependants and its
environment become free), sends ``NOTIFY caas_reconciler_jobs`` — at commit, and once per
transaction however many rows (PostgreSQL folds identical notifications). Workers ``LISTEN``
on that channel (``reconciler.wakeup``). SQLite has no notifications: nothing to do there.

Revision ID: reconciler_notify_0001
Revises: reconciler_webhooks_0001
"""

from __future__ import annotations

from alembic import op

revision = "reconciler_notify_0001"
down_revision = "reconciler_webhooks_0001"
branch_labels = None
depends_on = None

CHANNEL = "caas_reconciler_jobs"  # reconciler.wakeup.CHANNEL (a migration is frozen in time)

FUNCTION = f"""
CREATE OR REPLACE FUNCTION caas_notify_reconciler_jobs() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('{CHANNEL}', '');
  RETURN NULL;
END $$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(FUNCTION)
    op.execute("CREATE TRIGGER caas_notify_jobs_insert AFTER INSERT ON reconciler_jobs "
               "FOR EACH STATEMENT EXECUTE FUNCTION caas_notify_reconciler_jobs()")
    op.execute("CREATE TRIGGER caas_notify_jobs_update AFTER UPDATE OF state ON reconciler_jobs "
               "FOR EACH ROW WHEN (NEW.state <> 'running') "
               "EXECUTE FUNCTION caas_notify_reconciler_jobs()")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS caas_notify_jobs_update ON reconciler_jobs")
    op.execute("DROP TRIGGER IF EXISTS caas_notify_jobs_insert ON reconciler_jobs")
    op.execute("DROP FUNCTION IF EXISTS caas_notify_reconciler_jobs()")
