"""The catalog's list pages, serialised once per catalog generation and query, per process.

A page is computed (``catalog.query.list_entities``), serialised to JSON bytes and stored under
its query; it is served while the catalog generation (``portal.generations``: database triggers
move it with every committed write to the catalog tables, in whichever process or worker) is the
one it was computed under. So the next list after a merge is computed afresh, in every server
process, and a list between merges costs a dictionary lookup.

Each page carries a strong ``ETag`` (a hash of its bytes): a client sending it back in
``If-None-Match`` gets ``304 Not Modified`` while the page is unchanged, even across merges that
did not touch it. At most ``max_bytes`` of pages are held (least recently used go first),
counting each page's body and ENTRY_OVERHEAD for its key, entry and ETag, so the bound is the
memory the cache holds (tab searches answer pages of ~1 KB: counting bodies alone let a cache
of 32 MB hold ~55 MB).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel
from starlette.responses import Response

from catalog.models import EntityPage

DEFAULT_MAX_BYTES = 32 * 2 ** 20
# Bytes one page costs beyond its body: key tuple, CachedPage, ETag, the dictionary's entry
# and its request alias (~740 B measured with tracemalloc over 20,000 tab-search pages).
ENTRY_OVERHEAD = 700
Alias = tuple[tuple[object, ...], object, Callable[[], bool] | None]
MAX_ALIASES = 20_000


@dataclass(frozen=True)
class CachedPage:
    """One serialised page: its JSON ``body`` and the ``etag`` header value (quoted)."""

    body: bytes
    etag: str

    def matches(self, if_none_match: str | None) -> bool:
        """Whether an ``If-None-Match`` header names this page (RFC 9110 §13.1.2: weak
        comparison, ``*`` matches any)."""
        if not if_none_match:
            return False
        tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
        return "*" in tags or self.etag in tags

    def response(self, if_none_match: str | None) -> Response:
        """200 with the body, or 304 when ``If-None-Match`` names it; both carry the ETag."""
        headers = {"etag": self.etag, "cache-control": "private, no-cache"}
        if self.matches(if_none_match):
            return Response(status_code=304, headers=headers)
        return Response(self.body, media_type="application/json", headers=headers)


def serialise(page: BaseModel) -> CachedPage:
    """``page`` as JSON bytes (pydantic's serialiser, as FastAPI's response model writes it)
    with its ETag."""
    body = page.model_dump_json().encode()
    return CachedPage(body=body, etag=f'"{hashlib.blake2b(body, digest_size=12).hexdigest()}"')


class ListCache:
    """``get(key, generation)`` → CachedPage or None; ``put(key, generation, page)``.

    ``key`` is the query (kind and every parameter); ``generation`` the catalog generation read
    BEFORE the page was computed."""

    def __init__(self, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self._pages: OrderedDict[tuple[object, ...], tuple[int, CachedPage]] = OrderedDict()
        # (path, raw query string) → (key, route, still), learnt when the API validated that
        # request (``catalog.list_fastpath`` answers the same request again without the
        # router while ``still()``, when given, says the key is still the one to ask for).
        self._aliases: OrderedDict[tuple[str, bytes], Alias] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: tuple[object, ...], generation: int) -> CachedPage | None:
        with self._lock:
            entry = self._pages.get(key)
            if entry is None:
                return None
            if entry[0] != generation:
                self._drop(key)
                return None
            self._pages.move_to_end(key)
            return entry[1]

    def put(self, key: tuple[object, ...], generation: int, page: CachedPage) -> None:
        with self._lock:
            current = self._pages.get(key)
            if current is not None and current[0] > generation:
                return  # a newer page got there first
            if current is not None:
                self._drop(key)
            self._pages[key] = (generation, page)
            self._bytes += len(page.body) + ENTRY_OVERHEAD
            while self._bytes > self.max_bytes and self._pages:
                self._drop(next(iter(self._pages)))

    def learn(self, path: str, query: bytes, key: tuple[object, ...], route: object,
              still: Callable[[], bool] | None = None) -> None:
        """Remember that this exact request (validated by the API) asks for ``key``, through
        ``route`` (the metrics label it by); ``still`` (cheap, called on the event loop) says
        whether the request still asks for ``key`` when the key holds more than the request
        (a search's key holds the templates it ranked)."""
        with self._lock:
            self._aliases[(path, query)] = (key, route, still)
            self._aliases.move_to_end((path, query))
            while len(self._aliases) > MAX_ALIASES:
                self._aliases.popitem(last=False)

    def key_for(self, path: str, query: bytes) -> tuple[tuple[object, ...], object] | None:
        """(key, route) a request asked for before (``learn``) and still asks for, else None."""
        alias = self._aliases.get((path, query))
        if alias is None:
            return None
        key, route, still = alias
        if still is not None and not still():
            return None
        return key, route

    def get_or_compute(self, key: tuple[object, ...], generation: int,
                       compute: Callable[[], EntityPage]) -> CachedPage:
        page = self.get(key, generation)
        if page is None:
            page = serialise(compute())
            self.put(key, generation, page)
        return page

    def _drop(self, key: tuple[object, ...]) -> None:
        _generation, page = self._pages.pop(key)
        self._bytes -= len(page.body) + ENTRY_OVERHEAD

    def __len__(self) -> int:
        return len(self._pages)
