"""The catalog's list cache: the next list after a merge shows it (new ETag, in every process,
since the generation is the database's), 304 while a page is unchanged, and a generation never
visible before its data is committed."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from catalog import service, views
from catalog.list_cache import ENTRY_OVERHEAD, ListCache, serialise
from catalog.models import Entity, EntityPage
from gitops.gitreader import GitReader
from portal import generations
from portal.app import create_app
from portal.settings import Settings
from tests.catalog import gitops
from tests.conftest import UserFactory

Headers = Callable[[str], dict[str, str]]
LIST = "/api/catalog/namespaces?limit=50"


@pytest.fixture
def headers(indexed: gitops.Repo, make_user: Callable[..., object],
            auth_headers: Headers) -> dict[str, str]:
    make_user("dora")
    return auth_headers("dora")


def keys(response_json: dict[str, object]) -> set[str]:
    return {str(i["key"]) for i in response_json["items"]}  # type: ignore[attr-defined]


def test_the_next_list_after_a_merge_shows_it(app_client: TestClient, headers: dict[str, str],
                                              indexed: gitops.Repo, engine: Engine,
                                              settings: Settings) -> None:
    other = TestClient(create_app(settings, engine=engine))  # a second process's cache
    first = app_client.get(LIST, headers=headers)
    assert first.status_code == 200
    etag = first.headers["etag"]
    assert first.headers["cache-control"] == "private, no-cache"
    assert other.get(LIST, headers=headers).headers["etag"] == etag
    assert app_client.get(LIST, headers={**headers, "If-None-Match": etag}).status_code == 304
    assert "namespace:search/search-crawl" not in keys(first.json())

    files = gitops.tenant("search", "search-crawl", {"dev": ("1", "2Gi", "5Gi")})
    commit = indexed.commit(files, "new tenant")
    with Session(engine) as s:  # the worker's index after the merge
        service.index_commit(s, forge=GitReader(indexed.git_dir), commit=commit,
                             changed=list(files))
    for client in (app_client, other):
        after = client.get(LIST, headers={**headers, "If-None-Match": etag})
        assert after.status_code == 200, after.text
        assert after.headers["etag"] != etag
        assert "namespace:search/search-crawl" in keys(after.json())


def test_a_status_written_elsewhere_shows_on_the_next_list(
        app_client: TestClient, headers: dict[str, str], engine: Engine) -> None:
    url = "/api/catalog/namespaces?status=failed"
    assert app_client.get(url, headers=headers).json()["items"] == []
    with Session(engine) as s:
        service.set_status(s, entity="namespace:payments/payments-api", status="failed",
                           commit=True)
    assert keys(app_client.get(url, headers=headers).json()) == {
        "namespace:payments/payments-api"}


def test_the_generation_moves_only_when_the_write_commits(indexed: gitops.Repo,
                                                          engine: Engine) -> None:
    before = generations.current(engine).catalog
    with Session(engine) as s:
        row = s.exec(select(Entity).where(Entity.key == "team:payments")).one()
        row.description = "changed"
        s.add(row)
        s.flush()
        assert generations.current(engine).catalog == before  # not visible before commit
        s.commit()
    assert generations.current(engine).catalog > before


def test_the_cache_keeps_pages_per_generation_within_its_bytes() -> None:
    page = EntityPage(items=[], limit=50, next_cursor=None)
    each = len(serialise(page).body) + ENTRY_OVERHEAD  # what one page counts
    cache = ListCache(max_bytes=3 * each)
    served = cache.get_or_compute(("namespace", None), 3, lambda: page)
    assert cache.get(("namespace", None), 3) == served
    assert served.matches(served.etag) and served.matches(f"W/{served.etag}, \"x\"")
    assert served.matches("*") and not served.matches('"other"') and not served.matches(None)
    assert cache.get(("namespace", None), 4) is None  # another generation
    for i in range(20):
        cache.put(("namespace", i), 4, served)
    assert len(cache) == 3  # bodies alone (~50 B each) would have let all 20 in


def test_a_request_seen_before_is_answered_without_the_router(
        app_client: TestClient, headers: dict[str, str], engine: Engine, make_user: UserFactory,
        auth_headers: Headers, monkeypatch: pytest.MonkeyPatch) -> None:
    first = app_client.get(LIST, headers=headers)
    assert first.status_code == 200

    async def no_router(*_args: object) -> None:
        raise AssertionError("the router was asked")

    monkeypatch.setattr(views, "_list", no_router)
    again = app_client.get(LIST, headers=headers)  # the fast path: same bytes, same ETag
    assert again.content == first.content and again.headers["etag"] == first.headers["etag"]
    assert again.headers["x-content-type-options"] == "nosniff"  # still inside the Guard
    assert app_client.get(LIST, headers={**headers, "If-None-Match": first.headers["etag"]}
                          ).status_code == 304
    # The router's view raising is the Guard's 500: each of these reached the router.
    make_user("erin")  # a credential the process has not seen: the router authenticates it
    assert app_client.get(LIST, headers=auth_headers("erin")).status_code == 500
    # another query: the router validates it
    assert app_client.get(LIST + "&owner=payments", headers=headers).status_code == 500
    with Session(engine) as s:  # a write: the next request goes to the router again
        service.set_status(s, entity="namespace:payments/payments-api", status="failed",
                           commit=True)
    assert app_client.get(LIST, headers=headers).status_code == 500
    assert app_client.get(LIST).status_code == 401  # no credential: never the fast path


def test_a_page_many_ask_for_at_once_is_computed_once(
        app_client: TestClient, headers: dict[str, str], monkeypatch: pytest.MonkeyPatch
        ) -> None:
    """Right after a merge every connection asks for the same cold page: one computation, every
    request answered with it."""
    import asyncio
    import threading
    import time

    import httpx

    from catalog import query

    calls, lock = [0], threading.Lock()
    real = query.list_entities

    def slow(*args: object, **kwargs: object) -> object:
        with lock:
            calls[0] += 1
        time.sleep(0.2)  # the others arrive while it runs
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(query, "list_entities", slow)

    async def main() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app_client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return list(await asyncio.gather(*[client.get(LIST, headers=headers)
                                               for _ in range(10)]))

    responses = asyncio.run(main())
    assert [r.status_code for r in responses] == [200] * 10
    assert len({r.headers["etag"] for r in responses}) == 1
    assert calls[0] == 1


def test_a_request_after_a_write_never_shares_an_older_computation(
        app_client: TestClient, headers: dict[str, str], engine: Engine,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A page still being computed when a write commits is not the answer to a request that
    arrives after the write: that one computes its own and shows the write."""
    import asyncio
    import threading

    import httpx

    from catalog import query

    url = "/api/catalog/namespaces?status=failed"
    started, release = threading.Event(), threading.Event()
    calls = [0]
    real = query.list_entities

    def first_waits(*args: object, **kwargs: object) -> object:
        calls[0] += 1
        if calls[0] == 1:
            started.set()
            assert release.wait(30)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(query, "list_entities", first_waits)

    async def main() -> tuple[httpx.Response, httpx.Response]:
        transport = httpx.ASGITransport(app=app_client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            early = asyncio.ensure_future(client.get(url, headers=headers))
            assert await asyncio.to_thread(started.wait, 30)
            with Session(engine) as s:  # committed while the early page is computed
                service.set_status(s, entity="namespace:payments/payments-api",
                                   status="failed", commit=True)
            late = asyncio.ensure_future(client.get(url, headers=headers))
            await asyncio.sleep(0.3)
            release.set()
            return await early, await late

    early, late = asyncio.run(main())
    assert early.status_code == late.status_code == 200
    assert calls[0] == 2
    assert keys(late.json()) == {"namespace:payments/payments-api"}
