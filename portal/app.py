"""The application factory: ``create_app(settings)`` builds everything; nothing at import time."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import Session
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Scope

from gitops.forges.base import Forge, MergeEvent
from gitops.forges.github_webhook import PullRequestEvent
from portal import __version__, db, heap, tracing
from portal.api import api_router
from portal.auth.principal_cache import PrincipalCache
from portal.errors import CaasError, Unauthenticated, Unavailable, error_responses
from portal.guard import MAX_BODY_BYTES, Guard, document_nul_rule
from portal.health import readiness, repository_problem
from portal.metrics import Metrics
from portal.settings import Settings
from portal.startup import prepare

log = logging.getLogger("caas.http")


def create_app(settings: Settings, *, engine: Engine | None = None,
               background: bool = False, serving: bool = False) -> FastAPI:
    """Build the portal. ``background=True`` also runs the reconciler worker in-process (demo);
    ``serving=True`` (``caas serve``'s own processes, never tests) freezes what start-up built
    out of the garbage collector's scans once the lifespan has started (``portal.heap``)."""
    engine = engine or db.make_engine(settings)
    metrics = Metrics()
    from catalog.drift.metrics import DriftCollector

    metrics.registry.register(DriftCollector(engine))  # caas_drift_findings{kind, side}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        prepare(settings, engine)
        stop = None
        if background:
            from reconciler.runtime import start_in_process

            stop = start_in_process(settings, engine)
        if serving:
            from scaffolder.deps import warm

            await asyncio.to_thread(warm, app, settings)
            heap.settle()
        try:
            yield
        finally:
            if stop is not None:
                stop()

    app = FastAPI(
        title="caas-portal", version=__version__, lifespan=lifespan,
        description="Self-service portal for a Container-as-a-Service platform.",
        docs_url="/api/docs", openapi_url="/api/openapi.json", redoc_url=None,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.metrics = metrics
    app.state.principals = PrincipalCache()  # portal.auth.deps.get_principal
    app.state.after_merge = _after_merge(settings)
    app.state.on_pull_request = _on_pull_request(settings)

    _install_middleware(app, metrics)
    tracing.instrument_app(app, engine)  # OpenTelemetry, only with OTEL_EXPORTER_OTLP_ENDPOINT
    _install_error_handlers(app)

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:  # async: no thread-pool hop for a constant
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"], responses=error_responses(503))
    def readyz() -> dict[str, str]:
        state = readiness(engine)  # database reachable and migrations at head
        if not state.ready:
            raise Unavailable(state.reason)
        # A GitOps repository problem (no main, unreachable forge, missing setting) keeps the
        # portal serving — admins read the fix on the home page — but is said here: degraded.
        problem = repository_problem(settings, engine)
        if problem:
            return {"status": "degraded", "database": state.database, "reason": problem}
        return {"status": "ready", "database": state.database}

    @app.get("/metrics", tags=["ops"], include_in_schema=False)
    def prometheus_metrics() -> Response:
        return metrics.render()

    app.include_router(api_router())
    _document_nul_rule(app)
    from frontend.views import mount as mount_frontend

    mount_frontend(app)
    return app


def _document_nul_rule(app: FastAPI) -> None:
    """The API document states the guard's refusal of NUL in free text (guard.NUL_FREE)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document_nul_rule(build())
        return app.openapi_schema or build()

    app.openapi = openapi  # type: ignore[method-assign]


def _install_middleware(app: FastAPI, metrics: Metrics) -> None:
    from frontend.pages import render_error

    def fallback(scope: Scope, exc: Exception) -> Response:
        """A request the guard refuses (a CaasError: its status) or whose handler raised."""
        request = Request(scope)
        if isinstance(exc, CaasError):
            if _wants_html(request):
                return render_error(request, exc.status, exc.message, field=exc.field)
            return JSONResponse({"error": exc.to_dict()}, status_code=exc.status)
        message = "internal error; it has been logged"
        if _wants_html(request):
            return render_error(request, 500, message)
        return JSONResponse({"error": {"code": "internal", "message": message}}, status_code=500)

    from catalog.list_fastpath import ListFastPath

    app.add_middleware(ListFastPath)  # inside the Guard: added first
    app.add_middleware(Guard, metrics=metrics, fallback=fallback, max_body_bytes=MAX_BODY_BYTES)


def _wants_html(request: Request) -> bool:
    return not request.url.path.startswith("/api") and "text/html" in request.headers.get(
        "accept", "")


def _allowed_methods(request: Request) -> str | None:
    """The ``Allow`` header of a 405 (RFC 9110 §15.5.6): the methods of EVERY operation on the
    path, as the OpenAPI document lists them (Starlette lists only the first route's)."""
    table = getattr(request.app.state, "allow_table", None)
    if table is None:
        table = []
        for template, operations in request.app.openapi().get("paths", {}).items():
            pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
            table.append((re.compile(f"^{pattern}$"), sorted(m.upper() for m in operations)))
        request.app.state.allow_table = table
    for pattern, methods in table:
        if pattern.match(request.url.path):
            return ", ".join(methods)
    return None


def _install_error_handlers(app: FastAPI) -> None:
    from frontend.pages import render_error

    @app.exception_handler(CaasError)
    async def caas_error(request: Request, exc: CaasError) -> Response:
        if _wants_html(request):
            if isinstance(exc, Unauthenticated):
                back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(f"/login?next={quote(back, safe='/')}", status_code=303)
            return render_error(request, exc.status, exc.message, field=exc.field)
        headers = {"www-authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse({"error": exc.to_dict()}, status_code=exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        errors = exc.errors()
        first = errors[0] if errors else {}
        where = [str(part) for part in first.get("loc", ())]
        if where and where[0] in ("query", "path", "header", "cookie"):
            field = where[1] if len(where) > 1 else where[0]  # the parameter, never an index
        else:
            field = ".".join(p for p in where if p != "body") or "body"
        message = f"{field}: {first.get('msg', 'invalid value')}"
        if _wants_html(request):
            return render_error(request, 422, message, field=field)
        details = [{"field": ".".join(str(p) for p in e.get("loc", ()) if p != "body"),
                    "rule": e.get("type", ""), "message": e.get("msg", "")} for e in errors]
        return JSONResponse(
            {"error": {"code": "validation_failed", "message": message, "field": field,
                       "rule": first.get("type", ""), "details": details}},
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        message = str(exc.detail)
        if _wants_html(request):
            return render_error(request, exc.status_code, message)
        headers = {k.lower(): v for k, v in (exc.headers or {}).items()}
        allowed = _allowed_methods(request) if exc.status_code == 405 else None
        if allowed is not None:
            headers["allow"] = allowed
        return JSONResponse({"error": {"code": "http_error", "message": message}},
                            status_code=exc.status_code, headers=headers)

    @app.exception_handler(OperationalError)
    async def database_busy(request: Request, exc: OperationalError) -> Response:
        # SQLite has one writer: a write that lost a race is worth retrying, not a 500.
        log.warning("database operational error", extra={"path": request.url.path,
                                                          "error": str(exc.orig)})
        err = Unavailable("the database is busy; retry in a moment")
        if _wants_html(request):
            return render_error(request, err.status, err.message)
        return JSONResponse({"error": err.to_dict()}, status_code=err.status,
                            headers={"retry-after": "1"})


def _after_merge(settings: Settings) -> Callable[[Session, Forge, MergeEvent], object]:
    """What a merge reported by the forge triggers in the scaffolder: the open changes that
    main moving affects are re-checked (the composition root is the one place that ties the
    reconciler's webhook to the scaffolder)."""
    from scaffolder import review as scaffolder_review
    from scaffolder.codeowners import owners_config

    code_owners = owners_config(settings)

    def after_merge(session: Session, forge: Forge, event: MergeEvent) -> object:
        return scaffolder_review.main_moved(session, forge=forge, code_owners=code_owners,
                                            event=event)

    return after_merge


def _on_pull_request(settings: Settings) -> Callable[[Session, Forge, PullRequestEvent],
                                                     str | None]:
    """What a review or new commits on a pull request trigger in the scaffolder: an open
    promotion's gates are evaluated again (a review given on GitHub turns the approval gate
    green); a pull request closed without merging closes its change; a reopened one reopens
    it, checked again (``scaffolder.reopen``), before its gates are evaluated."""
    from scaffolder import promotion_review
    from scaffolder import reopen as scaffolder_reopen
    from scaffolder import review as scaffolder_review
    from scaffolder.codeowners import owners_config

    code_owners = owners_config(settings)

    def on_pull_request(session: Session, forge: Forge, event: PullRequestEvent) -> str | None:
        if event.action == "closed":
            return scaffolder_review.closed_on_forge(session, forge=forge,
                                                     code_owners=code_owners, event=event)
        reopened = scaffolder_reopen.reopened_on_forge(
            session, forge=forge, code_owners=code_owners,
            event=event) if event.action == "reopened" else None
        gates = promotion_review.refresh_for_pull_request(session, forge=forge,
                                                          settings=settings,
                                                          number=event.number)
        return "; ".join(s for s in (reopened, gates) if s) or None

    return on_pull_request
