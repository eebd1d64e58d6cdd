"""The catalog models and the catalog_0001 migration describe the same tables."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, inspect
from sqlmodel import SQLModel

import catalog.models  # noqa: F401 - registers the tables

TABLES = ("catalog_entities", "catalog_relations", "catalog_placements", "catalog_timeline",
          "catalog_index_state")


@pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
def test_models_match_the_migrated_schema(engine: Engine) -> None:
    inspector = inspect(engine)
    for name in TABLES:
        table = SQLModel.metadata.tables[name]
        migrated = {c["name"]: c for c in inspector.get_columns(name)}
        assert set(migrated) == set(table.columns.keys()), name
        for column in table.columns:
            assert migrated[column.name]["nullable"] == column.nullable, (name, column.name)
        indexes = {tuple(i["column_names"]) for i in inspector.get_indexes(name)}
        for index in table.indexes:
            assert tuple(c.name for c in index.columns) in indexes, (name, index.name)
