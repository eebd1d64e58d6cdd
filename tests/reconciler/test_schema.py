"""The reconciler's tables as migrated match its SQLModel classes (columns and nullability)."""

from __future__ import annotations

from sqlalchemy import Engine, inspect

from reconciler import models

TABLES = [models.MergeRecord, models.Job, models.JobLog, models.EnvLock, models.UnitApply,
          models.WorkerRecord, models.Cursor]


def test_migrated_schema_matches_the_models(engine: Engine) -> None:
    inspector = inspect(engine)
    for model in TABLES:
        table = model.__table__  # type: ignore[attr-defined]
        migrated = {c["name"]: c["nullable"] for c in inspector.get_columns(table.name)}
        declared = {c.name: c.nullable for c in table.columns}
        assert migrated == declared, table.name
        uniques = {tuple(u["column_names"]) for u in inspector.get_unique_constraints(table.name)}
        for constraint in table.constraints:
            if constraint.__class__.__name__ == "UniqueConstraint":
                assert tuple(c.name for c in constraint.columns) in uniques, table.name
