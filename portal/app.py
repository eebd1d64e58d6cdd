"""The application factory: ``create_app(settings)`` builds everything; nothing at import time."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from portal import __version__, db
from portal.api import api_router
from portal.errors import CaasError, PayloadTooLarge, Unauthenticated, Unavailable
from portal.health import readiness
from portal.metrics import Metrics
from portal.settings import Settings
from portal.startup import prepare

log = logging.getLogger("caas.http")

MAX_BODY_BYTES = 1_048_576


def create_app(settings: Settings, *, engine: Engine | None = None,
               background: bool = False) -> FastAPI:
    """Build the portal. ``background=True`` also runs the reconciler worker in-process (demo)."""
    engine = engine or db.make_engine(settings)
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        prepare(settings, engine)
        stop = None
        if background:
            from reconciler.runtime import start_in_process

            stop = start_in_process(settings, engine)
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

    _install_middleware(app, metrics)
    _install_error_handlers(app)

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"])
    def readyz() -> dict[str, str]:
        state = readiness(engine)  # database reachable and migrations at head
        if not state.ready:
            raise Unavailable(state.reason)
        return {"status": "ready", "database": state.database}

    @app.get("/metrics", tags=["ops"], include_in_schema=False)
    def prometheus_metrics() -> Response:
        return metrics.render()

    app.include_router(api_router())
    from frontend.views import mount as mount_frontend

    mount_frontend(app)
    return app


def _install_middleware(app: FastAPI, metrics: Metrics) -> None:
    @app.middleware("http")
    async def guard(request: Request,
                    call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex[:16]
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > MAX_BODY_BYTES:
            err = PayloadTooLarge(f"request body over {MAX_BODY_BYTES} bytes", field="body",
                                  rule="maxBytes")
            return JSONResponse({"error": err.to_dict()}, status_code=err.status)
        response = await metrics.middleware(request, call_next)
        response.headers["x-request-id"] = request_id
        response.headers.setdefault("x-content-type-options", "nosniff")
        response.headers.setdefault("x-frame-options", "DENY")
        response.headers.setdefault("referrer-policy", "same-origin")
        response.headers.setdefault(
            "content-security-policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            "frame-ancestors 'none'; form-action 'self'",
        )
        if request.url.path not in ("/healthz", "/readyz", "/metrics"):
            log.info("request", extra={
                "method": request.method, "path": request.url.path,
                "status": response.status_code, "request_id": request_id,
                "ip": request.client.host if request.client else "",
            })
        return response


def _wants_html(request: Request) -> bool:
    return not request.url.path.startswith("/api") and "text/html" in request.headers.get(
        "accept", "")


def _install_error_handlers(app: FastAPI) -> None:
    from frontend.pages import render_error

    @app.exception_handler(CaasError)
    async def caas_error(request: Request, exc: CaasError) -> Response:
        if _wants_html(request):
            if isinstance(exc, Unauthenticated):
                return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
            return render_error(request, exc.status, exc.message, field=exc.field)
        headers = {"www-authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse({"error": exc.to_dict()}, status_code=exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        errors = exc.errors()
        first = errors[0] if errors else {}
        loc = [str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path")]
        field = ".".join(loc) or "body"
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
        return JSONResponse({"error": {"code": "http_error", "message": message}},
                            status_code=exc.status_code)

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

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error", extra={"path": request.url.path})
        message = "internal error; it has been logged"
        if _wants_html(request):
            return render_error(request, 500, message)
        return JSONResponse({"error": {"code": "internal", "message": message}}, status_code=500)
