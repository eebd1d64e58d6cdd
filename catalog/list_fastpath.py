"""A list page or search result served again without the router, for a request the API
answered before.

``ListFastPath`` is ASGI middleware (inside ``portal.guard.Guard``, so security headers, request
ids, metrics and the log line still apply). For a ``GET`` whose exact path and query string the
catalog list or search view validated and answered before (``ListCache.learn``), it answers
from that ``ListCache`` when the caller's principal is in the principal cache, both generations
are the database's current ones (``portal.generations``, read once here) and, for a search, the
templates it ranked are still the registry's. Anything else — no or unknown credential, a page
of another generation, a request never seen — goes to the router unchanged,
which authenticates, validates and computes as always; so the fast path answers only what the
API itself would answer with the same bytes.

Skipped: FastAPI's routing, dependency solving and parameter validation, which cost several
times the cache lookup on every request (``bench/catalog.py``).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from catalog.list_cache import ListCache
from portal import generations
from portal.deps import cached_principal, get_engine

PREFIX = "/api/catalog/"
SEARCH = "/api/catalog/search"  # its own cache (``catalog.views.search_everything``)
MAX_IF_NONE_MATCH = 2000  # the view's own limit on the header (a longer one is its 422)


class ListFastPath:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and \
                scope["path"].startswith(PREFIX) and await self._answer(scope, receive, send):
            return
        await self.app(scope, receive, send)

    async def _answer(self, scope: Scope, receive: Receive, send: Send) -> bool:
        request = Request(scope)
        cache: ListCache | None = getattr(
            request.app.state, "catalog_search" if scope["path"] == SEARCH else "catalog_lists",
            None)
        if cache is None:
            return False
        learnt = cache.key_for(scope["path"], scope.get("query_string", b""))
        if learnt is None:
            return False
        key, route = learnt
        if_none_match = request.headers.get("if-none-match")
        if if_none_match is not None and len(if_none_match) > MAX_IF_NONE_MATCH:
            return False
        generation = await generations.shared(get_engine(request))
        if cached_principal(request, generation) is None:
            return False
        page = cache.get(key, generation.catalog)
        if page is None:
            return False
        scope["route"] = route  # the metrics label it as the router would
        await page.response(if_none_match)(scope, receive, send)
        return True
