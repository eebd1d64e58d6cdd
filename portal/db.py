"""Database engine, sessions and migrations.

SQLite (embedded default, a file under the data directory) and PostgreSQL (production) behind one
SQLAlchemy engine. Tables are SQLModel classes in each domain's ``models.py``; the schema itself is
owned by the Alembic migrations in ``portal/migrations``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from alembic import command
from alembic.config import Config
from pydantic import AfterValidator
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlmodel import Session

from portal.errors import ConfigError
from portal.settings import Settings

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def utcnow() -> datetime:
    """Timezone-aware now; stored as UTC on both databases."""
    return datetime.now(UTC)


def aware(value: datetime) -> datetime:
    """SQLite hands back naive datetimes for timezone-aware columns; they were stored as UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def as_utc(value: datetime) -> datetime:
    """An aware datetime in UTC (a naive one is taken as UTC, as it was stored)."""
    return aware(value).astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(as_utc)]
"""A timestamp in an API shape: always timezone-aware UTC, serialised with its offset
(``2026-01-02T03:04:05Z``-style ``+00:00``), as the OpenAPI ``date-time`` format requires."""


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def make_engine(settings: Settings) -> Engine:
    """Build the engine; a malformed URL is a ``ConfigError`` naming the setting."""
    raw = settings.resolved_database_url
    try:
        url = make_url(raw)
    except ArgumentError as exc:
        raise ConfigError(f"CAAS_DATABASE_URL is malformed: {exc}",
                          field="CAAS_DATABASE_URL") from exc
    backend = url.get_backend_name()
    if backend == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, pool_pre_ping=True
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "before_cursor_execute", _sqlite_begin_on_first_write)
        return engine
    if backend == "postgresql":
        if url.drivername == "postgresql":
            url = url.set(drivername="postgresql+psycopg")
        try:
            return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
        except (ArgumentError, ModuleNotFoundError) as exc:
            raise ConfigError(f"CAAS_DATABASE_URL cannot be used: {exc}",
                              field="CAAS_DATABASE_URL") from exc
    raise ConfigError(
        f"CAAS_DATABASE_URL must be sqlite:// or postgresql://, got {backend}://",
        field="CAAS_DATABASE_URL",
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # The pysqlite driver's own transaction handling would defeat BEGIN IMMEDIATE.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


_WRITE_PREFIXES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "DROP", "ALTER",
                   "SAVEPOINT")


def _sqlite_begin_on_first_write(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
    """SQLite transactions, shaped like PostgreSQL's READ COMMITTED.

    SQLite has a single writer. A deferred transaction that read first and writes later fails
    at once (SQLITE_BUSY_SNAPSHOT) when another connection committed in between, and an
    IMMEDIATE transaction opened for every read would let an idle or streaming reader hold
    the write lock. So reads run in autocommit (each sees the latest commit, as in PostgreSQL)
    and the transaction starts, IMMEDIATE, at the first write: writers queue on the lock
    (busy_timeout) instead of failing, and readers never block anyone.
    """
    if not statement.lstrip()[:10].upper().startswith(_WRITE_PREFIXES):
        return
    dbapi_connection = conn.connection.dbapi_connection
    if dbapi_connection is not None and not dbapi_connection.in_transaction:
        dbapi_connection.execute("BEGIN IMMEDIATE")


def check_connection(engine: Engine) -> None:
    """Fail with one clear line when the database cannot be reached."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise ConfigError(
            f"database unreachable ({engine.url.render_as_string(hide_password=True)}): {reason}",
            field="CAAS_DATABASE_URL",
        ) from exc


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("version_locations", str(MIGRATIONS_DIR / "versions"))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine) -> None:
    """Apply every migration (all branch heads: each domain owns a branch off the base)."""
    command.upgrade(alembic_config(engine), "heads")


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session for code outside a request (CLI, worker); commits are explicit in services."""
    with Session(engine, expire_on_commit=False) as session:
        yield session
