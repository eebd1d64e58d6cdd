"""Health of a portal process: liveness, readiness (database reachable, schema at head), and a
small HTTP listener for processes that serve no web app (``caas worker``).

Kubernetes probes (kubernetes.io/docs/tasks/configure-pod-container/configure-liveness-readiness-
startup-probes/): a liveness probe answers whether the process should be restarted, a readiness
probe whether it should get work. Both are plain HTTP GETs; any status in 200-399 is success.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from gitops.repo_status import STATUS
from portal import db
from portal.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Readiness:
    """``ready`` when the database answers and its schema is at every migration head.

    ``reason`` is one line for the probe's body and the log (empty when ready).
    """

    ready: bool
    reason: str = ""
    database: str = ""


def readiness(engine: Engine) -> Readiness:
    """Connect, compare the applied Alembic revisions with the migration heads.

    Never raises: an unreachable database is ``ready=False`` with the exception's type as reason
    (no URL or password in it).
    """
    try:
        with engine.connect() as conn:
            applied = set(MigrationContext.configure(conn).get_current_heads())
    except Exception as exc:  # any driver error means "not ready", never a crash
        return Readiness(False, f"database not reachable: {type(exc).__name__}",
                         engine.dialect.name)
    heads = set(ScriptDirectory.from_config(db.alembic_config(engine)).get_heads())
    if applied != heads:
        missing = ", ".join(sorted(heads - applied)) or "none"
        return Readiness(False, f"migrations not at head (missing {missing})",
                         engine.dialect.name)
    return Readiness(True, "", engine.dialect.name)


def repository_problem(settings: Settings, engine: Engine) -> str:
    """The GitOps repository's problem as one line naming its fix ("" when usable): probed at
    most every ``gitops.repo_status.STATUS.ttl_s`` and fed by the worker's poller."""
    from gitops.forges.factory import make_forge

    main = settings.main_branch
    key = f"{settings.forge.value}:{settings.github_repo or settings.resolved_gitops_repo}:{main}"
    return STATUS.check(lambda: make_forge(settings, engine).head(main), main=main, key=key)


class HealthServer:
    """``GET /healthz`` (``alive()``) and ``GET /readyz`` (``readiness``) on ``host:port``.

    Runs in a daemon thread; ``port=0`` picks a free port (``self.port`` tells which).
    """

    def __init__(self, engine: Engine, *, host: str, port: int,
                 alive: Callable[[], bool] = lambda: True,
                 problem: Callable[[], str] = lambda: "") -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/healthz":
                    ok = alive()
                    outer._reply(self, 200 if ok else 503,
                                 {"status": "ok" if ok else "stalled"})
                elif self.path == "/readyz":
                    state = readiness(engine)
                    trouble = problem() if state.ready else ""
                    outer._reply(self, 200 if state.ready else 503,
                                 {"status": "degraded" if trouble else
                                  "ready" if state.ready else "unavailable",
                                  "database": state.database,
                                  "reason": trouble or state.reason})
                else:
                    outer._reply(self, 404, {"status": "not found"})

            def log_message(self, format: str, *args: object) -> None:
                return  # probes every few seconds are not news

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="caas-health", daemon=True)

    @staticmethod
    def _reply(handler: BaseHTTPRequestHandler, status: int, body: dict[str, str]) -> None:
        data = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def start(self) -> HealthServer:
        self._thread.start()
        log.info("health endpoints on port %s (/healthz, /readyz)", self.port)
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
