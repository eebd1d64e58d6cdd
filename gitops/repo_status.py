"""Whether the GitOps repository can be worked with, as one line that names the fix.

A worker or a server meeting a repository without ``main``, an unreachable forge or a missing
setting says so once (a warning when the problem appears or changes, an info line when it is gone)
instead of a traceback on every poll, and shows the line on ``/readyz`` and the home page.

Public contract:

- ``describe(exc, *, main) -> str | None``: the one-line problem for an error the repository
  operations raise for a known reason (``None`` for anything else, which keeps its traceback):
  ``NotFound`` of a ref → "has no branch 'main': run `caas init`"; ``ConfigError`` → its message
  (it names the ``CAAS_*`` setting); ``NoRepository`` → "does not exist yet: run `caas init`";
  ``RateLimited``/``Unavailable`` → "cannot be reached";
  a GitHub 401/403/404 → "refused: check CAAS_GITHUB_TOKEN and CAAS_GITHUB_REPO".
- ``RepositoryStatus(ttl_s=30.0, clock=time.monotonic)``: thread-safe memory of the current
  problem (``problem``; "" when fine). ``observe(problem)`` records a probe's outcome and logs
  only changes; ``check(probe, *, main, key="")`` runs ``probe`` (e.g.
  ``lambda: forge.head(main)``) at most once per ``ttl_s`` for one repository ``key`` (GitHub's
  rate limit is not spent on readiness probes) and returns the problem.
- ``STATUS``: the process's one ``RepositoryStatus`` (the poller feeds it, ``/readyz`` and the
  home page read it).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from gitops.forges.base import ForgeError, RateLimited
from gitops.git import NoRepository
from portal.errors import ConfigError, NotFound, Unavailable

log = logging.getLogger("caas.gitops.status")


def describe(exc: BaseException, *, main: str) -> str | None:
    """The one-line problem (naming the command or setting that fixes it), or None."""
    if isinstance(exc, NotFound) and getattr(exc, "field", None) == "ref":
        return (f"the GitOps repository has no branch {main!r}: run `caas init` "
                "(or set CAAS_MAIN_BRANCH)")
    if isinstance(exc, NoRepository):
        return f"the GitOps repository does not exist yet ({exc}): run `caas init`"
    if isinstance(exc, ConfigError):
        return f"GitOps repository not configured: {exc}"
    if isinstance(exc, RateLimited | Unavailable):
        return f"the GitOps repository cannot be reached: {exc} (CAAS_GITHUB_URL; retrying)"
    status = getattr(exc, "github_status", None)
    if isinstance(exc, ForgeError) and status in (401, 403, 404):
        return (f"GitHub refused access to the GitOps repository ({status}): check "
                "CAAS_GITHUB_TOKEN and CAAS_GITHUB_REPO, then run `caas init`")
    return None


class RepositoryStatus:
    """The current problem with the GitOps repository ("" when none); logs only changes."""

    def __init__(self, *, ttl_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._problem = ""
        self._checked_at: float | None = None
        self._key = ""

    @property
    def problem(self) -> str:
        with self._lock:
            return self._problem

    def observe(self, problem: str) -> None:
        with self._lock:
            previous, self._problem = self._problem, problem
            self._checked_at = self._clock()
        if problem and problem != previous:
            log.warning("%s", problem)
        elif previous and not problem:
            log.info("the GitOps repository is usable again (was: %s)", previous)

    def check(self, probe: Callable[[], object], *, main: str, key: str = "") -> str:
        """Run ``probe`` when the last outcome is older than ``ttl_s`` or was about another
        repository (``key``); the current problem. An error ``describe`` does not know is
        reported by its type (and logged once)."""
        with self._lock:
            fresh = (self._checked_at is not None and self._key == key
                     and self._clock() - self._checked_at < self.ttl_s)
            self._key = key
        if fresh:
            return self.problem
        try:
            probe()
        except Exception as exc:  # any failure is "not usable"; known ones name their fix
            problem = describe(exc, main=main)
            if problem is None:
                problem = f"the GitOps repository cannot be read: {type(exc).__name__}: {exc}"
                if problem != self.problem:
                    log.warning("%s", problem, exc_info=True)
                    with self._lock:
                        self._problem, self._checked_at = problem, self._clock()
                    return problem
            self.observe(problem)
            return problem
        self.observe("")
        return ""


STATUS = RepositoryStatus()
