"""Catalog API: lists with filters and cursors, detail views, the Backstage-shaped export.

Any signed-in user may read the catalog; nothing here writes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import anyio
from fastapi import APIRouter, Header, Query, Request, Response
from pydantic import StringConstraints
from sqlmodel import Session

from catalog import backstage, detail, query, search
from catalog.cost import load_price_sheet
from catalog.list_cache import CachedPage, ListCache, serialise
from catalog.live_status import live_block
from catalog.models import EntityPage, Kind, SearchResults
from portal import generations
from portal.deps import PrincipalDep, SessionDep, SettingsDep, get_engine
from portal.errors import error_responses
from portal.params import MAX_ID, Offset
from portal.settings import Settings
from scaffolder import service as scaffolder_service
from scaffolder.deps import RegistryDep

router = APIRouter(prefix="/api/catalog", tags=["catalog"],
                   responses=error_responses(401, 422))
DETAIL = error_responses(404)

Q = Annotated[str | None, Query(description="Search in name, title, description, owner, tags.")]
Owner = Annotated[str | None, Query(description="Owning team (`payments` or `group:payments`).")]
Env = Annotated[str | None, Query(description="Only entities that run in this environment.")]
StatusQ = Annotated[str | None, Query(
    description="Only entities with this status (or flagged, orphaned).",
    json_schema_extra={"enum": list(query.STATUS_FILTERS)})]
Limit = Annotated[int, Query(ge=1, le=query.MAX_LIMIT,
                             description=f"Page size, 1-{query.MAX_LIMIT}.")]
Cursor = Annotated[str | None, Query(description="`next_cursor` of the previous page.",
                                     pattern=query.CURSOR_PATTERN,
                                     max_length=query.CURSOR_MAX_LENGTH)]


def _release(session: Session) -> None:
    """End the read transaction inside the route, so the pooled connection goes back at once.

    Otherwise it is held until the session dependency is torn down, which needs the event loop;
    under load the loop can be blocked checking out a connection for the next request's
    authentication, and the two wait on each other until the pool times out.
    """
    session.rollback()


LIST_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"headers": {"ETag": {"description": "Strong validator of this page: send it back "
                                              "in `If-None-Match`.",
                               "schema": {"type": "string"}},
                      "Cache-Control": {"description": "`private, no-cache`: revalidate.",
                                        "schema": {"type": "string"}}}},
    304: {"description": "Not modified: the page is still the one `If-None-Match` names.",
          "headers": {"ETag": {"description": "The page's validator.",
                               "schema": {"type": "string"}}}},
}
SEARCH_CACHE_BYTES = 8 * 2 ** 20  # search results held per process (least recently used go)
# Pages and searches a server process computes at once (the rest queue for a thread): each holds
# a pooled database connection and its rows. With the thread pool's 40, a cold search box at 64
# connections computed ~40 at once per process on SQLite, every thread with its connection's
# page cache and its own malloc arena: the process peaked at 313 MB (bench/catalog.py); on two
# cores more than a few at once only queue for the CPU.
COMPUTE_THREADS = 4
T = TypeVar("T")


async def _compute(request: Request, compute: Callable[[], T]) -> T:
    """``compute()`` in a worker thread, at most COMPUTE_THREADS at once per process (and event
    loop: tests run one app on several)."""
    loop = asyncio.get_running_loop()
    held: tuple[asyncio.AbstractEventLoop, anyio.CapacityLimiter] | None = getattr(
        request.app.state, "catalog_compute", None)
    if held is None or held[0] is not loop:
        held = request.app.state.catalog_compute = (loop, anyio.CapacityLimiter(COMPUTE_THREADS))
    return await anyio.to_thread.run_sync(compute, limiter=held[1])


Flights = dict[tuple[int, tuple[object, ...], int], "asyncio.Task[CachedPage]"]


async def _page(request: Request, cache: ListCache, key: tuple[object, ...], generation: int,
                compute: Callable[[], CachedPage]) -> CachedPage:
    """The page ``key`` of catalog generation ``generation``: from ``cache``, else computed
    (``_compute``) and stored — once, however many requests ask for it while it is computed:
    they all wait for the one computation (right after a merge every page is asked for by many
    connections at once, and each computed it). Only requests that read the same generation
    share one, so a request that arrives after a write committed never gets a page computed
    before it. The computation is a task of its own: a requester that goes away does not cancel
    it for the others. Its error, if any, is every waiter's."""
    page = cache.get(key, generation)
    if page is not None:
        return page
    loop = asyncio.get_running_loop()
    held: tuple[asyncio.AbstractEventLoop, Flights] | None = getattr(
        request.app.state, "catalog_flights", None)
    if held is None or held[0] is not loop:
        held = request.app.state.catalog_flights = (loop, {})
    flights = held[1]
    flight = (id(cache), key, generation)
    task = flights.get(flight)
    if task is None:
        async def run() -> CachedPage:
            try:
                computed = await _compute(request, compute)
                cache.put(key, generation, computed)
                return computed
            finally:
                flights.pop(flight, None)

        task = flights[flight] = loop.create_task(run())
        # Read its outcome even when every requester went away (no "never retrieved" warning).
        task.add_done_callback(lambda done: done.cancelled() or done.exception())
    return await asyncio.shield(task)


IfNoneMatch = Annotated[str | None, Header(
    max_length=2000, description="ETag(s) of a page you hold: 304 while it is unchanged.")]


async def _list(request: Request, kind: Kind, settings: Settings, q: str | None,
                owner: str | None, env: str | None, status: str | None, limit: int,
                cursor: str | None, if_none_match: str | None) -> Response:
    """A list page from the process's ``ListCache`` while the catalog generation stands
    (``catalog.list_cache``); computed in the thread pool otherwise. The generation was read by
    the authentication, before any of the page's data."""
    engine = get_engine(request)
    generation = getattr(request.state, "generation", None) or await generations.shared(engine)
    cache: ListCache | None = getattr(request.app.state, "catalog_lists", None)
    if cache is None:
        cache = request.app.state.catalog_lists = ListCache()
    key = (kind, q, owner, env, status, limit, cursor)

    def compute() -> CachedPage:
        with Session(engine, expire_on_commit=False) as session:
            return serialise(query.list_entities(
                session, kind=kind, prices=load_price_sheet(settings.price_sheet), q=q,
                owner=owner, env=env, status=status, limit=limit, cursor=cursor))

    page = await _page(request, cache, key, generation.catalog, compute)
    cache.learn(request.scope["path"], request.scope.get("query_string", b""), key,
                request.scope.get("route"))
    return page.response(if_none_match)


@router.get("/teams", response_model=EntityPage, responses=LIST_RESPONSES)
async def list_teams(request: Request, _p: PrincipalDep, settings: SettingsDep, q: Q = None,
                     owner: Owner = None, env: Env = None, status: StatusQ = None,
                     limit: Limit = 50, cursor: Cursor = None,
                     if_none_match: IfNoneMatch = None) -> Response:
    return await _list(request, Kind.team, settings, q, owner, env, status, limit, cursor,
                       if_none_match)


@router.get("/namespaces", response_model=EntityPage, responses=LIST_RESPONSES)
async def list_namespaces(request: Request, _p: PrincipalDep, settings: SettingsDep,
                          q: Q = None, owner: Owner = None, env: Env = None,
                          status: StatusQ = None, limit: Limit = 50, cursor: Cursor = None,
                          if_none_match: IfNoneMatch = None) -> Response:
    return await _list(request, Kind.namespace, settings, q, owner, env, status, limit, cursor,
                       if_none_match)


@router.get("/environments", response_model=EntityPage, responses=LIST_RESPONSES)
async def list_environments(request: Request, _p: PrincipalDep, settings: SettingsDep,
                            q: Q = None, owner: Owner = None, env: Env = None,
                            status: StatusQ = None, limit: Limit = 50, cursor: Cursor = None,
                            if_none_match: IfNoneMatch = None) -> Response:
    return await _list(request, Kind.environment, settings, q, owner, env, status, limit,
                       cursor, if_none_match)


@router.get("/applications", response_model=EntityPage, responses=LIST_RESPONSES)
async def list_applications(request: Request, _p: PrincipalDep, settings: SettingsDep,
                            q: Q = None, owner: Owner = None, env: Env = None,
                            status: StatusQ = None, limit: Limit = 50, cursor: Cursor = None,
                            if_none_match: IfNoneMatch = None) -> Response:
    return await _list(request, Kind.application, settings, q, owner, env, status, limit,
                       cursor, if_none_match)


@router.get("/search", response_model=SearchResults,
            responses={200: LIST_RESPONSES[200], 304: LIST_RESPONSES[304]})
async def search_everything(
    request: Request, _p: PrincipalDep, registry: RegistryDep,
    q: Annotated[str, Query(min_length=1, max_length=search.MAX_QUERY, description=(
        "Words to find, case-insensitive (letters and digits; anything else separates "
        "words): each must start a word of the name, owner, title, description or tags. "
        f"The first {search.MAX_WORDS} distinct words count (the response's `words`); "
        "without any word nothing matches."))],
    kind: Annotated[list[search.SearchKind] | None, Query(
        description="Only these kinds (repeat for several); every kind when absent.")] = None,
    limit: Annotated[int, Query(ge=1, le=search.MAX_LIMIT,
                                description=f"Hits per kind, 1-{search.MAX_LIMIT}.")] = 5,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """Search teams, namespaces, environments, applications and templates at once.

    Hits are grouped by kind (the group holding the best hit first); within a group, a name
    equal to the query ranks first, then names starting with it, then names with a word
    starting with it, then owner matches, then title/description/tag matches. Each group has
    at most ``limit`` hits and says whether there are ``more``. Any signed-in user may search
    (the catalog and the templates are readable by all).

    Results are kept per process like the list pages (``catalog.list_cache``): under the
    catalog generation read before computing them and the templates they ranked, so the
    next search after a merge (or a template change) is computed afresh; ETag / 304 as lists.
    """
    engine = get_engine(request)
    generation = getattr(request.state, "generation", None) or await generations.shared(engine)
    cache: ListCache | None = getattr(request.app.state, "catalog_search", None)
    if cache is None:
        cache = request.app.state.catalog_search = ListCache(max_bytes=SEARCH_CACHE_BYTES)
    ranked = tuple(scaffolder_service.template_documents(registry=registry))
    key = ("search", q, tuple(kind or ()), limit, ranked)
    documents = list(ranked)

    def compute() -> CachedPage:
        with Session(engine, expire_on_commit=False) as session:
            return serialise(search.search(session, q=q, kinds=kind, limit=limit,
                                           documents=documents))

    page = await _page(request, cache, key, generation.catalog, compute)

    def still() -> bool:  # the templates ranked are still the registry's
        return tuple(scaffolder_service.template_documents(registry=registry)) == ranked

    # catalog.list_fastpath answers this request again without the router.
    cache.learn(request.scope["path"], request.scope.get("query_string", b""), key,
                request.scope.get("route"), still)
    return page.response(if_none_match)


def _detail(key: str, session: SessionDep, settings: SettingsDep) -> dict[str, Any]:
    try:
        result = detail.entity_detail(session, key=key,
                                      prices=load_price_sheet(settings.price_sheet))
    finally:
        _release(session)
    # The cluster is read after the database connection went back to the pool.
    result["live"] = live_block(settings, kind=result["kind"], name=result["name"],
                                spec=result["spec"])
    return result


@router.get("/teams/{team}", responses=DETAIL)
def get_team(team: str, _p: PrincipalDep, session: SessionDep,
             settings: SettingsDep) -> dict[str, Any]:
    return _detail(f"team:{team}", session, settings)


@router.get("/namespaces/{team}/{namespace}", responses=DETAIL)
def get_namespace(team: str, namespace: str, _p: PrincipalDep, session: SessionDep,
                  settings: SettingsDep) -> dict[str, Any]:
    return _detail(f"namespace:{team}/{namespace}", session, settings)


@router.get("/environments/{env}", responses=DETAIL)
def get_environment(env: str, _p: PrincipalDep, session: SessionDep,
                    settings: SettingsDep) -> dict[str, Any]:
    return _detail(f"environment:{env}", session, settings)


@router.get("/applications/{team}/{app}", responses=DETAIL)
def get_application(team: str, app: str, _p: PrincipalDep, session: SessionDep,
                    settings: SettingsDep) -> dict[str, Any]:
    return _detail(f"application:{team}/{app}", session, settings)


@router.get("/entities")
def backstage_entities(
    _p: PrincipalDep, session: SessionDep,
    filter: Annotated[list[Annotated[str, StringConstraints(
        pattern=backstage.FILTER_PATTERN, max_length=1000)]] | None, Query(
        description="Backstage filter, e.g. `kind=component` or `kind=resource,spec.type="
                    "kubernetes-namespace`; repeat for OR.")] = None,
    offset: Offset = 0,
    limit: Annotated[int | None, Query(ge=1, le=MAX_ID,
                                       description="Return at most this many.")] = None,
) -> list[dict[str, Any]]:
    try:
        return backstage.export(session, filters=filter, offset=offset, limit=limit)
    finally:
        _release(session)


@router.get("/backstage.yaml", response_class=Response, responses={
    200: {"content": {"text/plain": {"schema": {"type": "string"}}},
          "description": "Every entity, as a multi-document YAML stream."}})
def backstage_location(_p: PrincipalDep, session: SessionDep) -> Response:
    """The whole export as one multi-document YAML file: the target of a Backstage ``url``
    Location (``catalog.locations: [{type: url, target: <portal>/api/catalog/backstage.yaml}]``).

    Served as ``text/plain`` (Backstage reads the bytes whatever the type): YAML media types
    make generic clients parse the body as one document, and this stream has one per entity.
    """
    try:
        entities = backstage.export(session)
    finally:
        _release(session)
    return Response(backstage.to_yaml(entities), media_type="text/plain; charset=utf-8")
