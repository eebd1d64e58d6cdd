"""Identity API: sign-in and out, who am I, API tokens, the audit log."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from portal.auth import audit
from portal.auth import service as auth_service
from portal.auth.deps import (
    SESSION_COOKIE,
    AdminDep,
    PrincipalDep,
    SessionDep,
    SettingsDep,
    client_ip,
)
from portal.auth.models import AuditEventPublic, TokenCreated, TokenPublic, UserPublic
from portal.auth.principal import Principal
from portal.errors import error_responses
from portal.params import CursorId, IsoDatetime, PathId
from portal.settings import Settings

router = APIRouter(prefix="/api", tags=["identity"], responses=error_responses(400, 401, 422))


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class LoginOut(BaseModel):
    user: UserPublic
    csrf_token: str


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100)
    ttl_days: int | None = Field(default=None, ge=1, le=3650)


def set_session_cookie(response: Response, settings: Settings, clear: str) -> None:
    response.set_cookie(
        SESSION_COOKIE, clear, max_age=settings.session_ttl_hours * 3600, httponly=True,
        secure=settings.cookie_secure, samesite="lax", path="/",
    )


@router.post("/auth/login", response_model=LoginOut, responses=error_responses(403, 429))
def login(body: LoginIn, request: Request, response: Response, session: SessionDep,
          settings: SettingsDep) -> LoginOut:
    web, clear, user = auth_service.login(
        session, username=body.username, password=body.password, ip=client_ip(request),
        ttl_hours=settings.session_ttl_hours, rate_limit=settings.login_rate_limit,
        rate_window_s=settings.login_rate_window_s, local_enabled=settings.local_login_enabled,
    )
    set_session_cookie(response, settings, clear)
    principal = auth_service.principal_for(session, user, via="session", web=web)
    return LoginOut(user=_public(principal), csrf_token=web.csrf_token)


@router.post("/auth/logout", status_code=204)
def logout(request: Request, response: Response, principal: PrincipalDep,
           session: SessionDep) -> Response:
    auth_service.logout(session, principal=principal, ip=client_ip(request))
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/auth/me", response_model=UserPublic)
def me(principal: PrincipalDep) -> UserPublic:
    return _public(principal)


@router.get("/auth/tokens", response_model=list[TokenPublic])
def list_tokens(principal: PrincipalDep, session: SessionDep) -> list[TokenPublic]:
    rows = auth_service.list_tokens(session, user_id=principal.user_id)
    return [TokenPublic.model_validate(t, from_attributes=True) for t in rows]


@router.post("/auth/tokens", response_model=TokenCreated, status_code=201)
def create_token(body: TokenIn, principal: PrincipalDep, session: SessionDep) -> TokenCreated:
    token, clear = auth_service.create_token(
        session, username=principal.username, name=body.name, ttl_days=body.ttl_days)
    assert token.id is not None
    return TokenCreated(id=token.id, name=token.name, token=clear, expires_at=token.expires_at)


@router.delete("/auth/tokens/{token_id}", response_model=TokenPublic,
               responses=error_responses(403, 404))
def revoke_token(token_id: PathId, principal: PrincipalDep, session: SessionDep) -> TokenPublic:
    token = auth_service.revoke_token(session, token_id=token_id, principal=principal)
    return TokenPublic.model_validate(token, from_attributes=True)


@router.get("/audit", response_model=list[AuditEventPublic], responses={
    **error_responses(403),
    200: {"description": "Audit events, newest first (`format=csv`: the same as CSV).",
          "content": {"text/csv": {"schema": {"type": "string"}}}}})
def audit_log(
    _admin: AdminDep,
    session: SessionDep,
    actor: str | None = None,
    action: Annotated[str | None, Query(description="prefix, e.g. `auth.`")] = None,
    outcome: Literal["success", "failure", "denied", "skipped"] | None = None,
    target: Annotated[str | None, Query(description="substring of the target")] = None,
    ip: Annotated[str | None, Query(description="client address, exact")] = None,
    since: IsoDatetime | None = None,
    until: IsoDatetime | None = None,
    before_id: CursorId = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    format: Literal["json", "csv"] = "json",
) -> object:
    events = audit.query(session, actor=actor, action=action, outcome=outcome, target=target,
                         ip=ip, since=since, until=until, before_id=before_id, limit=limit)
    # Newest first; the next page is `before_id=<last id>` (the header says it when full).
    headers = {"x-next-before-id": str(events[-1].id)} if len(events) == limit else {}
    if format == "csv":
        return Response(audit.to_csv(events), media_type="text/csv", headers={
            "content-disposition": "attachment; filename=audit.csv", **headers})
    body = [AuditEventPublic.model_validate(e, from_attributes=True).model_dump(mode="json")
            for e in events]
    return JSONResponse(body, headers=headers)


def _public(principal: Principal) -> UserPublic:
    return UserPublic(
        id=principal.user_id, username=principal.username,
        display_name=principal.display_name, email=principal.email,
        is_platform_admin=principal.is_platform_admin,
        teams={team: role.value for team, role in principal.team_roles.items()},
    )
