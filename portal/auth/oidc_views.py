"""Page routes of the Keycloak (OIDC) sign-in: start at the provider, come back with a code."""

from __future__ import annotations

import threading

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from portal.auth import oidc_flow
from portal.auth.deps import SessionDep, SettingsDep, client_ip
from portal.auth.oidc import OidcClient
from portal.auth.views import set_session_cookie
from portal.errors import NotFound, Unavailable
from portal.settings import Settings

STATE_COOKIE = "caas_oidc"
_client_lock = threading.Lock()

router = APIRouter(include_in_schema=False)


def oidc_client(request: Request, settings: Settings) -> OidcClient:
    """One client per application (it caches discovery and the JWKS)."""
    if not settings.oidc_enabled:
        raise NotFound("single sign-on is not enabled (CAAS_OIDC_ENABLED)", field="oidc")
    if not settings.oidc_issuer or not settings.oidc_client_id:
        raise Unavailable("single sign-on is misconfigured: set CAAS_OIDC_ISSUER and "
                          "CAAS_OIDC_CLIENT_ID", field="oidc_issuer")
    with _client_lock:
        client: OidcClient | None = getattr(request.app.state, "oidc_client", None)
        if client is None:
            secret = settings.oidc_client_secret
            client = OidcClient(issuer=settings.oidc_issuer, client_id=settings.oidc_client_id,
                                client_secret=secret.get_secret_value() if secret else None)
            request.app.state.oidc_client = client
        return client


@router.get("/auth/oidc/login")
def oidc_login(request: Request, session: SessionDep, settings: SettingsDep,
               next: str = "/") -> Response:
    client = oidc_client(request, settings)
    started = oidc_flow.begin(session, settings=settings, client=client, next_url=next,
                              ip=client_ip(request))
    response = RedirectResponse(started.authorization_url, status_code=303)
    # Lax: the provider's redirect back is a top-level GET, which Lax cookies accompany.
    response.set_cookie(STATE_COOKIE, started.state, max_age=oidc_flow.STATE_TTL_S,
                        httponly=True, secure=settings.cookie_secure, samesite="lax",
                        path="/auth/oidc")
    return response


@router.get(oidc_flow.CALLBACK_PATH)
def oidc_callback(request: Request, session: SessionDep, settings: SettingsDep,
                  state: str = "", code: str = "", error: str = "",
                  error_description: str = "") -> Response:
    client = oidc_client(request, settings)
    ip = client_ip(request)
    if error:
        raise oidc_flow.refuse_provider_error(session, error=error,
                                              description=error_description, ip=ip)
    done = oidc_flow.finish(session, settings=settings, client=client, state=state,
                            cookie_state=request.cookies.get(STATE_COOKIE), code=code, ip=ip)
    response = RedirectResponse(done.next_url, status_code=303)
    set_session_cookie(response, settings, done.clear)
    response.delete_cookie(STATE_COOKIE, path="/auth/oidc")
    return response
