"""The garbage collector of a serving process: what start-up built is frozen out of its scans.

CPython's full (generation 2) collection walks every tracked container object. A server process
holds ~230,000 of them after start-up (FastAPI's routes and models, pydantic validators,
SQLAlchemy's mappers, Jinja templates, the imported modules), and the request rate promotes
enough short-lived survivors to run a full collection every 2-3 s under load: each one stopped
the event loop for 0.2-1.3 s in ``bench/catalog.py`` (gc callbacks timed on the 2-core machine,
load 10-14), so every request in flight waited that long.

``settle()``, called once a process has started (its app built and its lifespan run), collects
once and moves every surviving object into the permanent generation (``gc.freeze``, the
approach of CPython's docs for pre-fork servers): later full collections walk only what
was allocated after it. It also raises the first generation's threshold so that a request's
temporary objects are mostly freed by reference counting before a collection starts.

What ``settle`` froze is never collected, so it runs once per serving process, never in tests
(which build many apps in one process).

What a serving process holds (the goal is at most 300 MB RSS under ``bench/catalog.py``):
~185 MB once started (tracemalloc: ~130 MB of Python objects, half of them the imported
modules' code and constants; the rest C extensions' memory and allocator slack), then what its
bounded caches and in-flight work add, each bounded where it lives: list pages 32 MB and search
results 8 MB counted with their entries (``catalog.list_cache.DEFAULT_MAX_BYTES``,
``catalog.views.SEARCH_CACHE_BYTES``), 20,000 request aliases (``list_cache.MAX_ALIASES``),
10,000 principals (``portal.auth.principal_cache``), and at most
``catalog.views.COMPUTE_THREADS`` pages or searches computed at once (each with a database
connection and its rows). Measured peaks: 225-230 MB per process on SQLite, ~212 MB on
PostgreSQL (2 processes, every phase of the bench).
"""

from __future__ import annotations

import gc

# Allocations minus deallocations of container objects between young collections (CPython's
# default is 700; a list request allocates a few thousand).
YOUNG_THRESHOLD = 20_000


def settle() -> int:
    """Collect, freeze what survives, raise the young threshold. Returns the number of objects
    frozen (``gc.get_freeze_count()``)."""
    gc.collect()
    gc.freeze()
    _young, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
    return gc.get_freeze_count()
