"""The lists' ``q`` filter through the trigram index returns exactly what the scan returns
(the scan, ``substring.scan``, is the oracle), uses the index, and sees every write at once.
Both databases: PostgreSQL's ``pg_trgm`` GIN index and SQLite's FTS5 trigram table."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, event, insert, select, text
from sqlalchemy.engine import make_url
from sqlmodel import Session, col

from catalog import query, service, substring
from catalog.cost import DEFAULT_PRICE_SHEET, load_price_sheet
from catalog.models import Entity, Kind, Status
from gitops.gitreader import GitReader
from portal import db
from tests.catalog import gitops
from tests.harness.databases import PostgresFactory

PRICES = load_price_sheet(DEFAULT_PRICE_SHEET)
LONG = "x" * 3000 + " needle-in-a-haystack " + "y" * 3000

# What the indexer writes is lower-cased (``_search_text``); some rows are not, so that the
# index's case folding is checked against the scan's own on rows it never sees in production.
TEXTS = [
    "100% pure_joy", "50%_off", "back\\slash c:\\temp\\new", 'quote "double" and \'single\'',
    '""', "straße münchen", "strasse muenchen", "STRASSE RAW UPPER", "Straße Raw",
    "İstanbul".lower(), "istanbul", "ıgdır dotless", "İZMİR RAW", "οδος σοφιας",  # noqa: RUF001
    "ΟΔΟΣ RAW", "rocket 🚀 launch", "日本語テキスト", LONG, "ab", "a", "", "tab\there\nnewline",
    "percent%%under__score", "payments-api payments the payments team", "ǆ ǅ ǆemal",
    "kelvin \u212a sign", "ﬁne ligature", "fine plain", "café", "CAFÉ RAW", "cafe\u0301 nfd",
    "ß", "ss", "sss ßß", "   spaces   ", "a_b%c\\d", "ABC", "abc", "xyzzy",
]
QUERIES = [
    "%", "_", "\\", "%%", "__", "\\t", "\\temp", '"', "'", '""', '"double"', "straße",
    "STRASSE", "strasse", "Straße", "ss", "ß", "ßß", "İ", "i̇", "i", "İstanbul", "ISTANBUL",
    "ı", "IZMIR", "İZMİR", "σ", "ς", "ΟΔΟΣ", "οδος", "🚀", "rocket 🚀", "本語", "日本語テキスト",  # noqa: RUF001
    "needle", "needle-in-a-haystack", "x" * 200, "xy", "ab", "a", "é", "É", "café", "CAFÉ",
    "\u0301", "e\u0301", "100% pure_joy", "payments-api payments the payments team", "50%_",
    "%pure", "pure_", "c:\\temp\\", "k", "K", "\u212a", "ﬁ", "fi", "ǅ", "ǆ", "Ǆ", " ", "   ",
    "tab\t", "\n", "abc", "ABC", "a_b%c\\d", "b%c", "zzz-not-there", "xyzzy", "yzz", "q",
]


def _row(**values: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {"parse_problems": [], "problems": [], "spec": {}, "created_at": now,
            "updated_at": now, **values}


def _add_rows(engine: Engine) -> None:
    rows: list[dict[str, Any]] = []
    for i, search in enumerate(TEXTS):
        for kind in (Kind.namespace, Kind.team):
            rows.append(_row(key=f"{kind.value}:t/r{i:03d}", kind=kind.value,
                             name=f"r{i:03d}", search=search, status="merged"))
        # The same text decommissioned: hidden unless asked for.
        rows.append(_row(key=f"namespace:t/gone{i:03d}", kind="namespace",
                         name=f"gone{i:03d}", search=search,
                         status=Status.decommissioned.value))
    with Session(engine) as s:
        s.execute(insert(Entity), rows)
        s.commit()


def _oracle(s: Session, q: str, kind: Kind, status: str | None = None) -> list[str]:
    stmt = select(col(Entity.key)).where(col(Entity.kind) == kind, substring.scan(q))
    stmt = stmt.where(col(Entity.status) == status if status else
                      col(Entity.status) != Status.decommissioned.value)
    return list(s.execute(stmt.order_by(col(Entity.key))).scalars())


def _listed(s: Session, q: str, kind: Kind, status: str | None = None,
            limit: int = 3) -> list[str]:
    keys: list[str] = []
    cursor = None
    while True:
        page = query.list_entities(s, kind=kind, prices=PRICES, q=q, status=status,
                                   limit=limit, cursor=cursor)
        keys += [item.key for item in page.items]
        cursor = page.next_cursor
        if cursor is None:
            return keys


@contextmanager
def _statements(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    seen: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_the_indexed_filter_returns_exactly_what_the_scan_returns(engine: Engine) -> None:
    _add_rows(engine)
    found = 0
    with Session(engine) as s:
        assert substring.has_index(s)
        for q in QUERIES:
            for kind in (Kind.namespace, Kind.team):
                expected = _oracle(s, q, kind)
                assert _listed(s, q, kind) == expected, (q, kind)
                found += len(expected)
            gone = _oracle(s, q, Kind.namespace, Status.decommissioned.value)
            assert _listed(s, q, Kind.namespace, Status.decommissioned.value) == gone, q
            for kind in (Kind.environment, Kind.application):  # no row: nothing either way
                assert _listed(s, q, kind) == _oracle(s, q, kind) == [], q
        # The oracle matches the rule as the indexer's rows state it (lower-cased text).
        assert _oracle(s, "Strasse MUENCHEN", Kind.team) == ["team:t/r006"]
        assert _oracle(s, "needle-in", Kind.namespace) == ["namespace:t/r017"]
    assert found > 200  # the queries match: the comparison is not between empty lists


def test_queries_of_three_characters_or_more_use_the_index(engine: Engine) -> None:
    filler = [_row(key=f"namespace:team{i % 50:02d}/tenant-{i:05d}", kind="namespace",
                   name=f"tenant-{i:05d}", status="merged",
                   search=f"tenant-{i:05d} namespace tenant-{i:05d} team{i % 50:02d} prod")
              for i in range(5000)]
    with Session(engine) as s:
        s.execute(insert(Entity), filler)
        s.commit()
        if engine.dialect.name == "postgresql":
            s.execute(text("ANALYZE catalog_entities"))
            s.commit()
    with Session(engine) as s:
        with _statements(engine) as seen:
            keys = _listed(s, "nt-0421", Kind.namespace, limit=20)
        with _statements(engine) as seen_short:
            short = query.list_entities(s, kind=Kind.namespace, prices=PRICES, q="42", limit=20)
        with _statements(engine) as seen_common:  # in every row: the scan finds a page first
            common = query.list_entities(s, kind=Kind.namespace, prices=PRICES, q="ant-0",
                                         limit=20)
        assert [i.key for i in common.items] == _oracle(s, "ant-0", Kind.namespace)[:20]
        assert [i.key for i in short.items] == _oracle(s, "42", Kind.namespace)[:20]
    assert keys == [f"namespace:team{i % 50:02d}/tenant-{i:05d}" for i in range(4210, 4220)]
    assert len(short.items) == 20 and short.next_cursor
    [(indexed_sql, indexed_params)] = [(sql, p) for sql, p in seen if "LIKE" in sql]
    [(short_sql, short_params)] = [(sql, p) for sql, p in seen_short if "LIKE" in sql]
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            plan = "\n".join(conn.exec_driver_sql("EXPLAIN " + indexed_sql,
                                                  indexed_params).scalars())
            assert substring.PG_INDEX in plan and "Bitmap" in plan, plan
            short_plan = "\n".join(conn.exec_driver_sql("EXPLAIN " + short_sql,
                                                        short_params).scalars())
            assert substring.PG_INDEX not in short_plan, short_plan
        else:
            fts = [sql for sql, _ in seen if "MATCH" in sql]
            assert len(fts) == 1 and substring.FTS_TABLE in fts[0]
            assert not [sql for sql, _ in seen_short if substring.FTS_TABLE in sql]
            plan = " | ".join(str(r[-1]) for r in conn.exec_driver_sql(
                "EXPLAIN QUERY PLAN " + indexed_sql, tuple(indexed_params)).all())
            assert "SEARCH catalog_entities USING INTEGER PRIMARY KEY" in plan, plan
            # The common one asked the index, met more than MAX_CANDIDATES and scanned.
            assert [sql for sql, _ in seen_common if "MATCH" in sql]
            [common_sql] = [sql for sql, _ in seen_common if "LIKE" in sql]
            assert ".id IN" not in common_sql


def _tenant(ns: str, description: str) -> dict[str, str]:
    files = gitops.tenant("payments", ns, {"dev": None})
    path = f"tenants/payments/{ns}/base/catalog-info.yaml"
    files[path] = files[path].replace(f"description: Namespace {ns}",
                                      f"description: '{description}'")
    return files


def _names(engine: Engine, q: str, status: str | None = None) -> list[str]:
    with Session(engine) as s:
        return _listed(s, q, Kind.namespace, status)


def test_the_next_query_sees_each_write(tmp_path: Path, engine: Engine) -> None:
    repo = gitops.Repo(tmp_path / "gitops.git")
    files = {**gitops.team("payments"), **gitops.environment("dev", "dev"),
             **_tenant("ledger", "Holds 100% of Straßenbahn fares"),
             **_tenant("refunds", "Returns money")}
    repo.commit(files)
    reader = GitReader(repo.git_dir)
    with Session(engine) as s:
        service.reindex(s, forge=reader)
    assert _names(engine, "STRASSENBAHN") == []  # ß is not ss to either filter
    assert _names(engine, "0% of STRAßENB") == ["namespace:payments/ledger"]

    def merge(change: dict[str, str | None]) -> None:
        old = repo.head
        new = repo.commit(change)
        with Session(engine) as s:
            service.index_commit(s, forge=reader, commit=new, changed=repo.changed(old, new))

    merge(_tenant("ledger", "Books every Überweisung"))  # an update of the text
    assert _names(engine, "straßen") == []
    assert _names(engine, "überweisung") == ["namespace:payments/ledger"]
    merge(_tenant("payouts", "Pays out every Überweisung too"))  # an insert
    assert _names(engine, "ÜBERWEISUNG") == ["namespace:payments/ledger",
                                             "namespace:payments/payouts"]
    merge({p: None for p in list(repo.files) if p.startswith("tenants/payments/ledger/")})
    assert _names(engine, "überweisung") == ["namespace:payments/payouts"]  # decommissioned
    assert _names(engine, "überweisung", Status.decommissioned.value) == [
        "namespace:payments/ledger"]
    with Session(engine) as s:
        service.reindex(s, forge=reader)  # the whole catalog again: nothing twice, none lost
    assert _names(engine, "überweisung") == ["namespace:payments/payouts"]
    assert _names(engine, "returns money") == ["namespace:payments/refunds"]
    with Session(engine) as s:  # a row deleted outright leaves the index with it
        s.execute(Entity.__table__.delete().where(  # type: ignore[attr-defined]
            col(Entity.key) == "namespace:payments/refunds"))
        s.commit()
    assert _names(engine, "returns money") == []


def test_without_the_index_the_filter_scans_and_says_so_once(
        engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    _add_rows(engine)
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text(f"DROP INDEX {substring.PG_INDEX}"))
        else:
            for statement in substring.SQLITE_DROP:
                conn.execute(text(statement))
    with caplog.at_level(logging.WARNING, logger="caas.catalog"), Session(engine) as s:
        for q in ("straße", "needle", "%pure"):
            assert substring.candidates(s, q) is None
            assert _listed(s, q, Kind.namespace) == _oracle(s, q, Kind.namespace)
    ours = [r.message for r in caplog.records if r.name.startswith("caas.catalog")]
    assert len(ours) == 1 and "no trigram index" in ours[0], ours


@pytest.mark.parametrize("db_backend", ["postgresql"], indirect=True)
def test_a_server_refusing_pg_trgm_migrates_without_the_index(
        tmp_path: Path, postgres_factory: PostgresFactory, db_backend: str,
        caplog: pytest.LogCaptureFixture) -> None:
    """A role without CREATE on its database may not create the (trusted) extension: the
    migration warns with what the owner should run, the rest of the schema is there, and the
    filter scans with the same results."""
    name = f"caas_noext_{uuid.uuid4().hex[:8]}"
    with postgres_factory.admin.connect() as conn:
        conn.execute(text(f"CREATE ROLE {name} LOGIN"))
        conn.execute(text(f"CREATE DATABASE {name}"))
    grant = create_engine(make_url(postgres_factory.server_url).set(database=name),
                          isolation_level="AUTOCOMMIT")
    with grant.connect() as conn:
        conn.execute(text(f"GRANT ALL ON SCHEMA public TO {name}"))
    grant.dispose()
    url = make_url(postgres_factory.server_url).set(database=name, username=name)
    engine = create_engine(url)
    try:
        with caplog.at_level(logging.WARNING, logger="caas.catalog"):
            db.upgrade(engine)
        [refusal] = [r.getMessage() for r in caplog.records if "pg_trgm refused" in r.getMessage()]
        assert substring.PG_BY_HAND in refusal and "permission denied" in refusal
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM pg_indexes WHERE indexname = :n"),
                                {"n": substring.PG_INDEX}).scalar() == 0
        _add_rows(engine)
        with Session(engine) as s:
            assert not substring.has_index(s)
            for q in ("straße", "needle", "%pure", "ab"):
                assert _listed(s, q, Kind.namespace) == _oracle(s, q, Kind.namespace)
            assert _listed(s, "needle", Kind.namespace) == ["namespace:t/r017"]
    finally:
        engine.dispose()
