"""Alembic environment: runs on the engine handed over by ``portal.db.upgrade``."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

engine = context.config.attributes.get("engine")
if not isinstance(engine, Engine):  # pragma: no cover - only through portal.db.upgrade
    raise RuntimeError("run migrations through `caas db upgrade`")

with engine.connect() as connection:
    context.configure(connection=connection, render_as_batch=engine.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()
