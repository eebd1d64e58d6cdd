"""One search across kinds: matching, ranking, grouping, limits, terms kept in step with the
index, the migration's backfill and the API's errors (both databases)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, SQLModel, select

from catalog import search, service
from catalog.models import Entity, Kind, SearchTerm
from gitops.gitreader import GitReader
from portal import db
from tests.catalog import gitops

Headers = Callable[[str], dict[str, str]]


@pytest.fixture
def headers(indexed: gitops.Repo, make_user: Callable[..., object],
            auth_headers: Headers) -> dict[str, str]:
    make_user("dora")
    return auth_headers("dora")


def _find(client: TestClient, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    response = client.get("/api/catalog/search", params=params, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _groups(body: dict[str, Any]) -> dict[str, list[tuple[str, str, int]]]:
    return {g["kind"]: [(h["key"], h["match"], h["rank"]) for h in g["items"]]
            for g in body["groups"]}


def test_a_team_name_finds_the_team_first_then_its_namespaces_and_applications(
        app_client: TestClient, headers: dict[str, str]) -> None:
    body = _find(app_client, headers, q="payments")
    assert [g["kind"] for g in body["groups"]] == ["team", "namespace", "application"]
    groups = _groups(body)
    assert groups["team"] == [("team:payments", "name", 0)]
    # payments-api: the name starts with the query (the team part is the owner)
    assert groups["namespace"] == [("namespace:payments/payments-api", "name", 1),
                                   ("namespace:payments/payments-batch", "name", 1)]
    assert groups["application"] == [("application:payments/checkout", "owner", 3)]
    hit = body["groups"][0]["items"][0]
    assert hit["url"] == "/catalog/teams/payments"
    assert hit["description"] == "The payments team"
    assert body["words"] == ["payments"]


def test_matching_is_case_insensitive_by_word_prefix_and_every_word_must_match(
        app_client: TestClient, headers: dict[str, str]) -> None:
    for q in ("PAYMENTS-API", "payments/payments-api"):
        assert _groups(_find(app_client, headers, q=q, kind="namespace")) == {
            "namespace": [("namespace:payments/payments-api", "name", 0)]}
    # Two words: both must match (one in the name, one in the owner here).
    assert _groups(_find(app_client, headers, q="batch payments", kind="namespace")) == {
        "namespace": [("namespace:payments/payments-batch", "name", 2)]}
    assert _find(app_client, headers, q="batch search")["groups"] == []
    # A word prefix, never a substring.
    assert _find(app_client, headers, q="ments")["groups"] == []
    # The description: catalog-info.yaml says "Namespace search-index".
    hits = _groups(_find(app_client, headers, q="namespace search", kind="namespace"))
    assert hits == {"namespace": [("namespace:search/search-index", "name", 2)]}


def test_descriptions_rank_after_names(app_client: TestClient, headers: dict[str, str]) -> None:
    groups = _groups(_find(app_client, headers, q="index"))
    # search/indexer: a name starting with "index"; search/search-index: a word of its name.
    assert groups["application"] == [("application:search/indexer", "name", 1)]
    assert groups["namespace"] == [("namespace:search/search-index", "name", 2)]
    teams = _groups(_find(app_client, headers, q="team", kind="team"))["team"]
    assert {(k, m) for k, m, _ in teams} == {("team:payments", "description"),
                                              ("team:search", "description")}


def test_a_person_finds_the_teams_they_own_or_belong_to(app_client: TestClient,
                                                         headers: dict[str, str]) -> None:
    # tests/catalog/gitops.team: owners [alice], members [bob]
    assert _groups(_find(app_client, headers, q="alice")) == {
        "team": [("team:payments", "owner", 3), ("team:search", "owner", 3)]}
    assert _groups(_find(app_client, headers, q="bob")) == {
        "team": [("team:payments", "description", 4), ("team:search", "description", 4)]}


def test_templates_are_searched_by_name_and_description(app_client: TestClient,
                                                        headers: dict[str, str]) -> None:
    body = _find(app_client, headers, q="tenant", kind="template")
    items = body["groups"][0]["items"]
    assert (items[0]["key"], items[0]["rank"], items[0]["url"]) == (
        "template:tenant", 0, "/templates/tenant")
    assert _find(app_client, headers, q="nosuchword", kind="template")["groups"] == []


def test_limit_per_kind_says_there_is_more(app_client: TestClient,
                                           headers: dict[str, str]) -> None:
    body = _find(app_client, headers, q="payments", kind=["namespace", "team"], limit=1)
    assert [(g["kind"], len(g["items"]), g["more"]) for g in body["groups"]] == [
        ("team", 1, False), ("namespace", 1, True)]


def test_words_beyond_the_eighth_are_ignored_and_punctuation_finds_nothing(
        app_client: TestClient, headers: dict[str, str]) -> None:
    body = _find(app_client, headers, q="a b c d e f g h zzzz", kind="team")
    assert body["words"] == ["a", "b", "c", "d", "e", "f", "g", "h"]
    body = _find(app_client, headers, q=" -/- ")
    assert (body["words"], body["groups"]) == ([], [])


@pytest.mark.parametrize(("params", "field"), [
    ({"q": ""}, "q"), ({"q": "x" * 101}, "q"), ({"q": "a", "limit": 0}, "limit"),
    ({"q": "a", "limit": 51}, "limit"), ({"q": "a", "kind": "widget"}, "kind")])
@pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
def test_bad_queries_are_refused_naming_the_field(app_client: TestClient,
                                                  headers: dict[str, str],
                                                  params: dict[str, Any], field: str) -> None:
    response = app_client.get("/api/catalog/search", params=params, headers=headers)
    assert response.status_code == 422
    assert field in response.text


@pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
def test_only_signed_in_users_search(app_client: TestClient, indexed: gitops.Repo) -> None:
    assert app_client.get("/api/catalog/search", params={"q": "payments"}).status_code == 401


def test_terms_follow_the_index_and_pull_requests(engine: Engine, indexed: gitops.Repo) -> None:
    def keys(q: str) -> list[str]:
        with Session(engine) as s:
            return [h.key for g in search.search(s, q=q).groups for h in g.items]

    indexed.commit({"tenants/payments/payments-batch/base/catalog-info.yaml": None,
                    "tenants/payments/payments-batch/base/namespace.yaml": None,
                    "tenants/payments/payments-batch/base/resourcequota.yaml": None,
                    "tenants/payments/payments-batch/base/kustomization.yaml": None,
                    "tenants/payments/payments-batch/envs/dev/kustomization.yaml": None,
                    "tenants/payments/payments-batch/envs/stage/kustomization.yaml": None},
                   "remove batch")
    with Session(engine) as s:
        service.reindex(s, forge=GitReader(indexed.git_dir))
    assert keys("batch") == []  # decommissioned: hidden, as in the lists
    assert "namespace:payments/payments-api" in keys("api")
    batch = "namespace:payments/payments-batch"
    with Session(engine) as s:  # a pull request re-creating the name: findable again
        service.set_status(s, entity=batch, status="requested", commit=True)
    assert keys("batch") == [batch]
    with Session(engine) as s:
        service.set_status(s, entity=batch, status="closed", commit=True)
    assert keys("batch") == []
    with Session(engine) as s:  # a pull request's placeholder is findable, until it closes
        service.set_status(s, entity="namespace:search/ledger-ro", status="requested",
                           commit=True)
    assert keys("ledger") == ["namespace:search/ledger-ro"]
    with Session(engine) as s:
        service.set_status(s, entity="namespace:search/ledger-ro", status="closed", commit=True)
    assert keys("ledger") == []


def test_cached_results_follow_the_next_write_and_answer_304_while_unchanged(
        app_client: TestClient, headers: dict[str, str], engine: Engine) -> None:
    """The API keeps results per catalog generation: a write in any process (here a status set
    through the service, as the worker does) shows on the very next search."""
    def keys(q: str) -> list[str]:
        return [h["key"] for g in _find(app_client, headers, q=q)["groups"] for h in g["items"]]

    assert keys("ledger") == []
    first = app_client.get("/api/catalog/search", params={"q": "ledger"}, headers=headers)
    etag = first.headers["etag"]
    again = app_client.get("/api/catalog/search", params={"q": "ledger"},
                           headers={**headers, "If-None-Match": etag})
    assert again.status_code == 304 and again.headers["etag"] == etag
    with Session(engine) as s:
        service.set_status(s, entity="namespace:search/ledger-ro", status="requested",
                           commit=True)
    assert keys("ledger") == ["namespace:search/ledger-ro"]
    changed = app_client.get("/api/catalog/search", params={"q": "ledger"},
                             headers={**headers, "If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    with Session(engine) as s:
        service.set_status(s, entity="namespace:search/ledger-ro", status="closed", commit=True)
    assert keys("ledger") == []


def test_a_repeated_search_follows_a_template_change(
        app_client: TestClient, headers: dict[str, str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A repeated search is answered without the router (``catalog.list_fastpath``) only
    while the templates it ranked are still the registry's: a new template shows at once."""
    from scaffolder import service as scaffolder_service

    def templates(q: str) -> list[str]:
        return [h["key"] for g in _find(app_client, headers, q=q, kind="template")["groups"]
                for h in g["items"]]

    before = templates("zephyr")
    assert before == templates("zephyr") == []  # the second from the fast path
    real = scaffolder_service.template_documents

    def with_zephyr(*, registry: Any) -> list[search.Document]:
        return [*real(registry=registry), search.Document(
            kind="template", key="template:zephyr", name="zephyr", title="Zephyr",
            description="A breeze", url="/templates/zephyr")]

    monkeypatch.setattr(scaffolder_service, "template_documents", with_zephyr)
    assert templates("zephyr") == ["template:zephyr"]
    assert templates("zephyr") == ["template:zephyr"]
    monkeypatch.setattr(scaffolder_service, "template_documents", real)
    assert templates("zephyr") == []


def test_sql_ranks_agree_with_the_in_memory_rules(engine: Engine, indexed: gitops.Repo) -> None:
    """Templates are ranked in memory: the same rules as the database's, entity by entity."""
    with Session(engine) as s:
        rows = s.exec(select(Entity)).all()
        # Several words: the most selective one picks the candidates, whichever comes first.
        for q in ("payments", "pay", "payments-api", "search index", "the", "prod", "dev",
                  "the payments", "payments the", "payments api", "api payments", "dev payments",
                  "search ledger", "ledger search"):
            phrase, found = search.parse_query(q)
            sql = {h.key: h.rank for g in search.search(s, q=q, limit=50).groups
                   for h in g.items}
            memory = {r.key: rank for r in rows if (rank := search.rank_document(
                search.Document(kind=r.kind, key=r.key, name=r.name, title="",
                                description=r.search, url="", owner=r.owner),
                phrase, found)) is not None}
            assert {k: v for k, v in sql.items() if not k.startswith("template:")} == memory, q


def test_the_migration_fills_terms_in_from_indexed_entities(engine: Engine,
                                                            indexed: gitops.Repo) -> None:
    def terms() -> set[tuple[str, str, str, int]]:
        with Session(engine) as s:
            return {(t.key, t.kind, t.term, t.field) for t in s.exec(select(SearchTerm))}

    before = terms()
    assert ("namespace:payments/payments-api", "namespace", "payments-api", 1) in before
    config = db.alembic_config(engine)
    command.downgrade(config, "catalog_0002")
    assert "catalog_search_terms" not in sa.inspect(engine).get_table_names()
    command.upgrade(config, "heads")
    assert terms() == before


def test_the_terms_table_matches_its_model(engine: Engine) -> None:
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert [d for d in diffs if "catalog_search_terms" in repr(d)] == []
    if engine.dialect.name == "postgresql":  # byte-wise order: a prefix is one index range
        with engine.connect() as conn:
            collation = conn.execute(sa.text(
                "SELECT collation_name FROM information_schema.columns "
                "WHERE table_name = 'catalog_search_terms' AND column_name = 'term'")).scalar()
        assert collation == "C"


def test_the_kinds_are_the_catalogs_and_templates() -> None:
    catalog_kinds = [k.value for k in Kind]
    assert [*catalog_kinds, "template"] == list(search.KINDS)
