"""generations: the catalog's and identity's generation counters and the triggers that bump them
(``portal.generations`` says what each one covers and why triggers).

Revision ID: generations_0001
Revises: catalog_0001, identity_git_0001 (a merge point: its triggers need both branches' tables)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "generations_0001"
down_revision = ("catalog_0001", "identity_git_0001")
branch_labels = None
depends_on = None

# (table, events, generation): UPDATE OF names the columns whose change matters (an API token's
# last use is written every minute and must not empty every cache).
TRIGGERS = (
    ("catalog_entities", ("INSERT", "UPDATE", "DELETE"), "catalog"),
    ("catalog_relations", ("INSERT", "UPDATE", "DELETE"), "catalog"),
    ("catalog_placements", ("INSERT", "UPDATE", "DELETE"), "catalog"),
    ("api_tokens", ("UPDATE OF revoked_at, expires_at, user_id, token_hash", "DELETE"),
     "identity"),
    ("web_sessions", ("UPDATE OF revoked_at, expires_at, user_id, token_hash, csrf_token",
                      "DELETE"), "identity"),
    ("users", ("UPDATE", "DELETE"), "identity"),
    ("memberships", ("INSERT", "UPDATE", "DELETE"), "identity"),
    ("teams", ("UPDATE", "DELETE"), "identity"),
)

PG_FUNCTION = """
CREATE OR REPLACE FUNCTION caas_bump_generation() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  flag text := 'caas.bumped_' || TG_ARGV[0];
BEGIN
  -- Deferred to commit, once per transaction and generation.
  IF current_setting(flag, true) IS DISTINCT FROM txid_current()::text THEN
    PERFORM set_config(flag, txid_current()::text, true);
    EXECUTE format('UPDATE caas_generations SET %I = %I + 1 WHERE id = 1',
                   TG_ARGV[0], TG_ARGV[0]);
  END IF;
  RETURN NULL;
END $$
"""


def _name(table: str, index: int) -> str:
    return f"caas_gen_{table}_{index}"


def upgrade() -> None:
    op.create_table(
        "caas_generations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("catalog", sa.BigInteger, nullable=False),
        sa.Column("identity", sa.BigInteger, nullable=False),
    )
    op.execute("INSERT INTO caas_generations (id, catalog, identity) VALUES (1, 1, 1)")
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        op.execute(PG_FUNCTION)
    for table, events, generation in TRIGGERS:
        for index, what in enumerate(events):
            name = _name(table, index)
            if postgres:
                op.execute(f"CREATE CONSTRAINT TRIGGER {name} AFTER {what} ON {table} "
                           "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW "
                           f"EXECUTE FUNCTION caas_bump_generation('{generation}')")
            else:
                # Names from TRIGGERS above, never input.
                bump = f"UPDATE caas_generations SET {generation} = {generation} + 1"  # noqa: S608
                op.execute(f"CREATE TRIGGER {name} AFTER {what} ON {table} BEGIN "
                           f"{bump} WHERE id = 1; END")


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for table, events, _generation in TRIGGERS:
        for index in range(len(events)):
            suffix = f" ON {table}" if postgres else ""
            op.execute(f"DROP TRIGGER IF EXISTS {_name(table, index)}{suffix}")
    if postgres:
        op.execute("DROP FUNCTION IF EXISTS caas_bump_generation()")
    op.drop_table("caas_generations")
