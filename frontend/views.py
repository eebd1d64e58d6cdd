"""Page routes: sign-in and the home page. Domain pages are added by their own modules."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlparse

from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from catalog import query as catalog_query
from frontend import activity, change_pages
from frontend.catalog_pages import entity_url, timeline_view
from frontend.pages import render
from portal.auth import git_members
from portal.auth import service as auth_service
from portal.auth.views import set_session_cookie
from portal.deps import (
    SESSION_COOKIE,
    LoginCsrfDep,
    PrincipalDep,
    SessionDep,
    SettingsDep,
    client_ip,
    login_csrf,
    set_login_csrf_cookie,
)
from portal.errors import CaasError
from portal.health import repository_problem
from scaffolder import review as scaffolder_review

STATIC = Path(__file__).resolve().parent / "static"

router = APIRouter(include_in_schema=False)


def _safe_next(target: str | None) -> str:
    """Only same-site relative paths: never an open redirect."""
    if not target:
        return "/"
    parsed = urlparse(target)
    if parsed.scheme or parsed.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


@router.get("/login")
def login_page(request: Request, settings: SettingsDep, next: str = "/") -> Response:
    token, nonce = login_csrf(request, settings)  # login CSRF: pre-session cookie + token
    response = render(request, "login.html", next=_safe_next(next), error=None,
                      local_enabled=settings.local_login_enabled,
                      oidc_enabled=settings.oidc_enabled, login_csrf=token)
    set_login_csrf_cookie(response, settings, nonce)
    return response


@router.post("/login")
def login_submit(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    _csrf: LoginCsrfDep,
    username: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    try:
        # Disabled local sign-in still lets a local platform-admin in (break-glass).
        _web, clear, _user = auth_service.login(
            session, username=username, password=password, ip=client_ip(request),
            ttl_hours=settings.session_ttl_hours, rate_limit=settings.login_rate_limit,
            rate_window_s=settings.login_rate_window_s,
            local_enabled=settings.local_login_enabled,
        )
    except CaasError as exc:
        return render(request, "login.html", status=exc.status, next=_safe_next(next),
                      error=exc.message, username=username,
                      local_enabled=settings.local_login_enabled,
                      oidc_enabled=settings.oidc_enabled,
                      login_csrf=login_csrf(request, settings)[0])
    response = RedirectResponse(_safe_next(next), status_code=303)
    set_session_cookie(response, settings, clear)
    return response


@router.post("/logout")
def logout(request: Request, principal: PrincipalDep, session: SessionDep) -> Response:
    auth_service.logout(session, principal=principal, ip=client_ip(request))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/favicon.ico", include_in_schema=False)
def favicon() -> Response:
    """Browsers ask for /favicon.ico whatever the page says: the same icon (SVG)."""
    return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml",
                        headers={"Cache-Control": "public, max-age=86400"})


@router.get("/")
def home(request: Request, principal: PrincipalDep, session: SessionDep) -> Response:
    changes = scaffolder_review.list_changes(session, limit=200)
    review = [c for c in changes if c.status == "open" and c.author != principal.username
              and change_pages.can_approve(principal, c)]
    events = catalog_query.team_activity(session, teams=principal.team_roles)
    # Platform admins see what keeps the platform from working (no main: run `caas init`).
    problem = (repository_problem(request.app.state.settings, request.app.state.engine)
               if principal.is_platform_admin else "")
    return render(request, "home.html", title="Home", platform_problem=problem,
                  claim_ignored=git_members.last_claim_ignored(session,
                                                               username=principal.username),
                  requests=activity.my_requests(session, changes, principal.username),
                  review=review[:10],
                  activity=[{**e, "url": entity_url(str(e["entity"]))}
                            for e in timeline_view_with_entity(
                                events, {c.id: c.number for c in changes})])


def timeline_view_with_entity(events: list[dict[str, Any]],
                              numbers: dict[int, int | None] | None = None
                              ) -> list[dict[str, object]]:
    return [{**view, "entity": event["entity"]}
            for event, view in zip(events, timeline_view(events, numbers), strict=True)]


def mount(app: FastAPI) -> None:
    from frontend import (
        audit_pages,
        catalog_pages,
        change_pages,
        drift_pages,
        env_pages,
        promotion_pages,
        request_pages,
        search_pages,
        upgrade_pages,
    )

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(router)
    for pages in (audit_pages, catalog_pages, request_pages, change_pages, env_pages,
                  drift_pages, search_pages, upgrade_pages, promotion_pages):
        app.include_router(pages.router)
