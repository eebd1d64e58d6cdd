"""FastAPI dependencies and their ``Annotated`` aliases, used by every router.

They live in the identity package because they authenticate and the identity routes use them
too; ``portal.deps`` re-exports them for everybody else (one import direction, no cycle)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request, Response
from sqlalchemy import Engine
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from portal import generations
from portal.auth import audit
from portal.auth import service as auth_service
from portal.auth.passwords import token_hash
from portal.auth.principal import Principal
from portal.auth.principal_cache import PrincipalCache
from portal.errors import Forbidden, Unauthenticated
from portal.settings import Settings

SESSION_COOKIE = "caas_session"
PRELOGIN_COOKIE = "caas_prelogin"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


async def get_settings(request: Request) -> Settings:
    # async: FastAPI runs a plain-function dependency in the thread pool, a hop per request.
    settings: Settings = request.app.state.settings
    return settings


def get_engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def get_session(request: Request) -> Iterator[Session]:
    with Session(get_engine(request), expire_on_commit=False) as session:
        yield session


def client_ip(request: Request) -> str:
    return request.client.host if request.client else ""


SettingsDep = Annotated[Settings, Depends(get_settings)]
EngineDep = Annotated[Engine, Depends(get_engine)]
SessionDep = Annotated[Session, Depends(get_session)]


async def get_principal(request: Request) -> Principal:
    """Authenticate the request: a bearer API token, or the session cookie plus CSRF token.

    Cookie-authenticated requests that change state must carry the session's CSRF token
    (header ``X-CSRF-Token`` or form field ``csrf_token``); bearer tokens are not sent by
    browsers on their own, so they need none.

    The database generations are read first (``request.state.generation``: caches further down
    key by them); a credential seen within the minute under the same identity generation is
    answered from the process's ``PrincipalCache`` (``portal.auth.principal_cache``), anything
    else is authenticated in full.
    """
    cached: Principal | None = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    kind, value = _credential(request)
    engine = get_engine(request)
    # One indexed single-row read, shared with the requests asking at the same moment and off
    # the event loop (portal.generations.shared): never older than this request.
    generation = await generations.shared(engine)
    request.state.generation = generation
    cache: PrincipalCache = request.app.state.principals

    async def authenticate() -> Principal:
        # The database work is blocking: it runs in the thread pool, never on the event loop
        # (a loop blocked waiting for a pooled connection, while finished requests hold them
        # waiting for the loop, deadlocks the server under concurrency).
        return await run_in_threadpool(_authenticate, engine, kind, value, client_ip(request))

    # Concurrent misses of one credential share one authentication (principal_cache).
    principal = await cache.get_or_authenticate(f"{kind}:{token_hash(value)}",
                                                generation.identity, authenticate)
    if principal.via != "token" and request.method in UNSAFE_METHODS:
        sent = await _sent_csrf(request)
        expected = principal.csrf_token or ""
        if not sent or not expected or not hmac.compare_digest(sent, expected):
            await run_in_threadpool(_audit_csrf, engine, principal.username, client_ip(request),
                                    request.url.path)
            raise Forbidden("missing or invalid CSRF token; reload the page and try again",
                            field=CSRF_FIELD, rule="csrf")
    request.state.principal = principal
    return principal


def cached_principal(request: Request, generation: generations.Generation) -> Principal | None:
    """The principal of the request's credential from the process's cache, when it is there
    under ``generation`` (else None: no credential, never seen, revoked, older than the TTL).
    For GET fast paths only: it checks no CSRF token."""
    try:
        kind, value = _credential(request)
    except Unauthenticated:
        return None
    cache: PrincipalCache = request.app.state.principals
    return cache.get(f"{kind}:{token_hash(value)}", generation.identity)


def _credential(request: Request) -> tuple[str, str]:
    """(``token`` | ``session``, the clear credential), or Unauthenticated."""
    header = request.headers.get("authorization", "")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise Unauthenticated("Authorization header must be `Bearer <token>`")
        return "token", value.strip()
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        raise Unauthenticated("sign in first (no session cookie or API token)")
    return "session", cookie


def _authenticate(engine: Engine, kind: str, value: str, ip: str) -> Principal:
    with Session(engine, expire_on_commit=False) as session:
        if kind == "token":
            return auth_service.authenticate_token(session, value, ip=ip)
        return auth_service.authenticate_session(session, value, ip=ip)


def _audit_csrf(engine: Engine, actor: str, ip: str, path: str) -> None:
    with Session(engine, expire_on_commit=False) as session:
        audit.record(session, actor=actor, action="auth.csrf", outcome="denied", ip=ip,
                     target=path)


async def _sent_csrf(request: Request) -> str | None:
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()  # Starlette caches it; the route can read it again.
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    return sent


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require_admin(principal: PrincipalDep) -> Principal:
    if not principal.is_platform_admin:
        raise Forbidden("platform-admin role required", rule="role")
    return principal


AdminDep = Annotated[Principal, Depends(require_admin)]


# ---- login CSRF -------------------------------------------------------------------------------
# Before sign-in there is no session to hold a CSRF token, yet a forged cross-site POST to the
# sign-in form could sign the victim in as the attacker. The sign-in page therefore sets a random
# pre-session cookie and the form carries an HMAC of it under the portal's secret key: another
# site can neither read the cookie nor compute the token.


def _login_mac(settings: Settings, nonce: str) -> str:
    key = settings.resolved_secret_key().encode()
    return hmac.new(key, b"login-csrf:" + nonce.encode(), hashlib.sha256).hexdigest()


def login_csrf(request: Request, settings: Settings) -> tuple[str, str]:
    """(form token, cookie nonce) for the sign-in form; reuses the browser's nonce if any."""
    nonce = request.cookies.get(PRELOGIN_COOKIE, "")
    if not (16 <= len(nonce) <= 64 and nonce.replace("-", "").replace("_", "").isalnum()):
        nonce = secrets.token_urlsafe(24)
    return _login_mac(settings, nonce), nonce


def set_login_csrf_cookie(response: Response, settings: Settings, nonce: str) -> None:
    response.set_cookie(PRELOGIN_COOKIE, nonce, max_age=2 * 3600, httponly=True,
                        secure=settings.cookie_secure, samesite="lax", path="/")


async def require_login_csrf(request: Request, session: SessionDep,
                             settings: SettingsDep) -> None:
    """Dependency of the sign-in form's POST: the token must match this browser's cookie."""
    form = await request.form()  # Starlette caches it; the route reads it again.
    value = form.get(CSRF_FIELD)
    sent = value if isinstance(value, str) else ""
    nonce = request.cookies.get(PRELOGIN_COOKIE, "")
    if not sent or not nonce or not hmac.compare_digest(sent, _login_mac(settings, nonce)):
        user = form.get("username")
        await run_in_threadpool(
            audit.record, session, actor=user[:64] if isinstance(user, str) else "",
            action="auth.csrf", outcome="denied", ip=client_ip(request),
            target=request.url.path)
        raise Forbidden("missing or invalid CSRF token; reload the sign-in page and try again",
                        field=CSRF_FIELD, rule="csrf")


LoginCsrfDep = Annotated[None, Depends(require_login_csrf)]
