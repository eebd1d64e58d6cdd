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
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
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

    def __len__(self) -> int:
        return len(self._entries)


def _seconds_until(moment: datetime) -> float:
    return (moment - utcnow()).total_seconds()
