"""Page rendering shared by every page route: one Jinja environment, the common context."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from portal.auth import service as auth_service
from portal.auth.principal import Principal
from portal.db import aware
from portal.deps import SESSION_COOKIE
from portal.errors import CaasError

TEMPLATES = Path(__file__).resolve().parent / "templates"


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html", "xml"], default=True),
        trim_blocks=True, lstrip_blocks=True,
    )
    env.filters["iso"] = _iso
    env.filters["shown"] = _shown
    return env


def _iso(value: datetime | None) -> str:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    return aware(value).isoformat() if value is not None else ""


def _shown(value: datetime | None) -> str:
    return aware(value).strftime("%Y-%m-%d %H:%M UTC") if value is not None else ""


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    principal: Principal | None = getattr(request.state, "principal", None)
    html = environment().get_template(template).render(
        request=request, principal=principal,
        csrf_token=principal.csrf_token if principal else "", **context,
    )
    return HTMLResponse(html, status_code=status)


_NEXT_STEP = {
    400: "Check the values you sent and try again.",
    401: "Sign in, then try again.",
    403: "Ask a member of the owning team or a platform admin for access.",
    404: "It may have been removed or renamed; search the catalog.",
    409: "Open the existing item instead, or choose another name.",
    413: "Send less data at once.",
    422: "Correct the named field and submit again.",
    429: "Wait a minute before trying again.",
    503: "A dependency is unavailable; try again shortly.",
}


def _principal_from_cookie(request: Request) -> Principal | None:
    """Error pages raised before any dependency ran (unknown route) still show who is signed
    in, so the header keeps its navigation and sign-out."""
    cookie = request.cookies.get(SESSION_COOKIE)
    engine = getattr(request.app.state, "engine", None)
    if not cookie or engine is None:
        return None
    try:
        with Session(engine) as session:
            return auth_service.authenticate_session(session, cookie)
    except (CaasError, SQLAlchemyError):
        return None


def render_error(request: Request, status: int, message: str,
                 field: str | None = None) -> HTMLResponse:
    if getattr(request.state, "principal", None) is None and status != 401:
        request.state.principal = _principal_from_cookie(request)
    return render(request, "error.html", status=status, status_code=status, message=message,
                  field=field, next_step=_NEXT_STEP.get(status, "Go back to the home page."))
