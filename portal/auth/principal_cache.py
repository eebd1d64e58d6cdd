"""The authenticated principals of recent credentials, per server process.

Authenticating a request costs three queries (credential, user, team roles); a cached principal
costs none beyond the one-row read of the identity generation (``portal.generations``) that
every request makes anyway. An entry is served only while

- the identity generation is the one it was cached under: revoking a token or a session,
  changing a user or a membership moves it (database triggers), so every process refuses a
  revoked credential on its very next request;
- its credential has not expired (``Principal.expires_at``);
- it is younger than ``ttl_s`` (default ``LAST_USED_PRECISION``, a minute): a token's last use
  is still recorded at that precision, by the full authentication that follows.

Keys are SHA-256 hashes of the credential (never the clear value), prefixed by its kind.
At most ``max_entries`` principals are held (least recently used go first): a few MB.

A miss is authenticated once however many requests carry the credential at that moment
(``get_or_authenticate``): when an entry ages out under load every in-flight request of that
client misses at once, and each authenticating on its own (a thread-pool hop, three queries, the
last-use write) stalled a server process for up to a second (``bench/catalog.py``, 256
connections: bursts of 100-140 authentications of one token). Only a success is shared: a
refused credential is authenticated (and audited) by each request that carries it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import datetime

from portal.auth.principal import Principal
from portal.db import utcnow

DEFAULT_TTL_S = 60.0
DEFAULT_MAX_ENTRIES = 10_000


class PrincipalCache:
    """``get(key, generation)`` → Principal or None; ``put(key, generation, principal)``."""

    def __init__(self, *, ttl_s: float = DEFAULT_TTL_S,
                 max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[int, float, Principal]] = OrderedDict()
        self._lock = threading.Lock()
        # (key, generation) -> the authentication in flight for it (on the serving loop).
        self._inflight: dict[tuple[str, int], asyncio.Future[Principal]] = {}

    def get(self, key: str, generation: int) -> Principal | None:
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            cached_generation, until, principal = entry
            if cached_generation != generation or now >= until:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return principal

    def put(self, key: str, generation: int, principal: Principal) -> None:
        ttl = self.ttl_s
        if principal.expires_at is not None:
            ttl = min(ttl, _seconds_until(principal.expires_at))
        if ttl <= 0:
            return
        with self._lock:
            self._entries[key] = (generation, time.monotonic() + ttl, principal)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    async def get_or_authenticate(self, key: str, generation: int,
                                  authenticate: Callable[[], Awaitable[Principal]]) -> Principal:
        """The cached principal of ``key``, else the result of ``authenticate()`` (stored):
        requests that miss while another authenticates the same key under the same
        generation wait for that one instead of authenticating again. A failure (e.g.
        ``Unauthenticated``) is raised to the request that authenticated; those waiting on it
        then authenticate on their own, so each refusal is its own (audited) answer."""
        principal = self.get(key, generation)
        if principal is not None:
            return principal
        loop = asyncio.get_running_loop()
        flight = self._inflight.get((key, generation))
        if flight is not None and flight.get_loop() is loop:
            try:
                return await asyncio.shield(flight)
            except Exception:  # noqa: S110 - the leader's refusal is not ours to give
                pass
            return await self._authenticate_alone(key, generation, authenticate)
        flight = loop.create_future()
        self._inflight[(key, generation)] = flight
        try:
            principal = await authenticate()
        except BaseException as exc:
            flight.set_exception(exc if isinstance(exc, Exception) else
                                 RuntimeError("authentication cancelled"))
            flight.exception()  # retrieved: no "never retrieved" warning without waiters
            raise
        else:
            self.put(key, generation, principal)
            flight.set_result(principal)
            return principal
        finally:
            if self._inflight.get((key, generation)) is flight:
                del self._inflight[(key, generation)]

    async def _authenticate_alone(self, key: str, generation: int,
                                  authenticate: Callable[[], Awaitable[Principal]]) -> Principal:
        principal = await authenticate()
        self.put(key, generation, principal)
        return principal

    def __len__(self) -> int:
        return len(self._entries)


def _seconds_until(moment: datetime) -> float:
    return (moment - utcnow()).total_seconds()
