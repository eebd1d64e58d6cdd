"""Fresh, migrated databases for each test: copied from a template migrated once per session."""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from portal import db
from portal.settings import Settings

_counter = itertools.count()


class SqliteFactory:
    def __init__(self, workdir: Path) -> None:
        self.template = workdir / "template.db"
        engine = db.make_engine(Settings(database_url=f"sqlite:///{self.template}",
                                         data_dir=workdir))
        db.upgrade(engine)
        engine.dispose()  # closing the last connection checkpoints the WAL into the file

    def new(self, directory: Path) -> str:
        directory.mkdir(parents=True, exist_ok=True)
        target = directory / "caas.db"
        shutil.copyfile(self.template, target)
        return f"sqlite:///{target}"


class PostgresFactory:
    def __init__(self, server_url: str) -> None:
        self.server_url = server_url
        self.admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
        with self.admin.connect() as conn:
            conn.execute(text("CREATE DATABASE caas_template"))
        engine = create_engine(self._url("caas_template"))
        db.upgrade(engine)
        engine.dispose()

    def _url(self, name: str) -> str:
        return make_url(self.server_url).set(database=name).render_as_string(hide_password=False)

    def new(self, _directory: Path) -> str:
        name = f"caas_test_{next(_counter)}"
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE caas_template'))
        return self._url(name)
