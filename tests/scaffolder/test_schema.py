"""The scaffolder's tables as migrated match its SQLModel classes (columns, nullability)."""

from __future__ import annotations

from sqlalchemy import Engine, inspect
from sqlmodel import SQLModel

import scaffolder.models  # noqa: F401  (registers the tables)

TABLES = ("local_pull_requests", "local_pr_checks", "local_pr_comments", "local_pr_approvals",
          "scaffolder_changes", "scaffolder_tasks", "scaffolder_task_events")


def test_migration_matches_the_models(engine: Engine) -> None:
    from portal import db

    db.upgrade(engine)
    inspector = inspect(engine)
    for table in TABLES:
        model = SQLModel.metadata.tables[table]
        migrated = {c["name"]: c for c in inspector.get_columns(table)}
        assert set(migrated) == {c.name for c in model.columns}, table
        for column in model.columns:
            assert migrated[column.name]["nullable"] == column.nullable, (table, column.name)
    uniques = {tuple(u["column_names"]) for u in inspector.get_unique_constraints(
        "scaffolder_changes")} | {tuple(i["column_names"]) for i in inspector.get_indexes(
            "scaffolder_changes") if i.get("unique")}
    assert ("open_unit_key",) in uniques
