"""FastAPI dependencies for every router: settings, engine, database session, the caller.

Defined in ``portal.auth.deps`` (they authenticate, and the identity routes use them too);
re-exported here so that routers import them from one stable place.
"""

from __future__ import annotations

from portal.auth.deps import (
    CSRF_FIELD,
    CSRF_HEADER,
    PRELOGIN_COOKIE,
    SESSION_COOKIE,
    UNSAFE_METHODS,
    AdminDep,
    EngineDep,
    LoginCsrfDep,
    PrincipalDep,
    SessionDep,
    SettingsDep,
    cached_principal,
    client_ip,
    get_engine,
    get_principal,
    get_session,
    get_settings,
    login_csrf,
    require_admin,
    require_login_csrf,
    set_login_csrf_cookie,
)

__all__ = [
    "CSRF_FIELD", "CSRF_HEADER", "PRELOGIN_COOKIE", "SESSION_COOKIE", "UNSAFE_METHODS",
    "AdminDep", "EngineDep", "LoginCsrfDep", "PrincipalDep", "SessionDep", "SettingsDep",
    "cached_principal", "client_ip", "get_engine", "get_principal", "get_session",
    "get_settings", "login_csrf", "require_admin", "require_login_csrf", "set_login_csrf_cookie",
]
