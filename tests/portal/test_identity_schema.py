"""The identity tables as migrated match the SQLModel classes (both databases)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine
from sqlmodel import SQLModel

import portal.auth.models  # noqa: F401  (registers the identity tables)

IDENTITY_TABLES = {"users", "teams", "memberships", "api_tokens", "web_sessions",
                   "declared_memberships",
                   "audit_events", "oidc_logins"}


def test_identity_models_match_the_migrations(engine: Engine) -> None:
    assert set(sa.inspect(engine).get_table_names()) >= IDENTITY_TABLES
    assert set(SQLModel.metadata.tables) >= IDENTITY_TABLES
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    ours = [d for d in diffs if any(f"'{t}'" in repr(d) for t in IDENTITY_TABLES)]
    assert ours == []
