"""Identity services: accounts, teams, API tokens, sign-in sessions, and resolving a Principal."""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlmodel import Session, col, func, select

from portal.auth import audit, git_members
from portal.auth.models import ApiToken, AuditEvent, Membership, Role, Team, User, WebSession
from portal.auth.passwords import hash_password, new_secret, token_hash, verify_password
from portal.auth.principal import Principal
from portal.db import aware, utcnow
from portal.errors import (
    Conflict,
    Forbidden,
    NotFound,
    TooManyRequests,
    Unauthenticated,
    ValidationFailed,
)
from portal.groups import check_team_name

USERNAME_RE = re.compile(r"^[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?$")
TOKEN_PREFIX = "caas_"  # noqa: S105 - a prefix, not a secret
MIN_PASSWORD = 10
LAST_USED_PRECISION = timedelta(minutes=1)


# ---- accounts -----------------------------------------------------------------------------------


def create_user(
    session: Session,
    *,
    username: str,
    password: str | None,
    display_name: str = "",
    email: str = "",
    is_platform_admin: bool = False,
    source: str = "local",
    actor: str = "system",
) -> User:
    if not USERNAME_RE.match(username):
        raise ValidationFailed(
            "username must be 1-64 lowercase letters, digits, '.', '_' or '-', "
            "starting and ending with a letter or digit", field="username", rule="pattern")
    if password is not None and len(password) < MIN_PASSWORD:
        raise ValidationFailed(f"password must be at least {MIN_PASSWORD} characters",
                               field="password", rule="minLength")
    if session.exec(select(User).where(User.username == username)).first():
        raise Conflict(f"user {username!r} already exists", field="username", rule="unique")
    user = User(
        username=username, display_name=display_name or username, email=email,
        password_hash=hash_password(password) if password else None,
        is_platform_admin=is_platform_admin, source=source,
    )
    session.add(user)
    session.flush()
    roles = git_members.apply_declared(session, user=user)  # team.yaml on main names them
    audit.record(session, actor=actor, action="user.create", target=username,
                 detail={"platform_admin": is_platform_admin, "source": source,
                         "roles_from_git": roles}, commit=False)
    session.commit()
    session.refresh(user)
    return user


def get_user(session: Session, *, username: str) -> User:
    user = session.exec(select(User).where(User.username == username)).first()
    if user is None:
        raise NotFound(f"user {username!r} does not exist", field="username")
    return user


def set_password(session: Session, *, username: str, password: str, actor: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise ValidationFailed(f"password must be at least {MIN_PASSWORD} characters",
                               field="password", rule="minLength")
    user = get_user(session, username=username)
    user.password_hash = hash_password(password)
    session.add(user)
    audit.record(session, actor=actor, action="user.password", target=username, commit=False)
    session.commit()


# ---- teams --------------------------------------------------------------------------------------


def create_team(session: Session, *, name: str, display_name: str = "",
                actor: str = "system") -> Team:
    """A portal team (``Conflict`` when it exists). The name rule is the one team groups need
    (:func:`portal.groups.check_team_name`): a team ``pay-admins`` would own ``pay``'s groups."""
    check_team_name(name, field="name")
    if session.exec(select(Team).where(Team.name == name)).first():
        raise Conflict(f"team {name!r} already exists", field="name", rule="unique")
    team = Team(name=name, display_name=display_name or name)
    session.add(team)
    audit.record(session, actor=actor, action="team.create", target=name, commit=False)
    session.commit()
    session.refresh(team)
    return team


def ensure_team(session: Session, *, name: str, actor: str = "system") -> Team:
    team = session.exec(select(Team).where(Team.name == name)).first()
    return team if team is not None else create_team(session, name=name, actor=actor)


def add_member(session: Session, *, team: str, username: str, role: Role = Role.developer,
               actor: str = "system") -> Membership:
    if role not in (Role.developer, Role.reviewer):
        raise ValidationFailed("a team role is `developer` or `reviewer`; platform-admin is "
                               "global", field="role", rule="enum")
    team_row = session.exec(select(Team).where(Team.name == team)).first()
    if team_row is None:
        raise NotFound(f"team {team!r} does not exist", field="team")
    user = get_user(session, username=username)
    assert team_row.id is not None and user.id is not None
    existing = session.exec(select(Membership).where(
        Membership.user_id == user.id, Membership.team_id == team_row.id)).first()
    membership = existing or Membership(user_id=user.id, team_id=team_row.id)
    membership.role = role.value
    session.add(membership)
    audit.record(session, actor=actor, action="team.member", target=f"{team}/{username}",
                 detail={"role": role.value}, commit=False)
    session.commit()
    session.refresh(membership)
    return membership


def team_roles(session: Session, *, user_id: int) -> dict[str, Role]:
    rows = session.exec(
        select(Team.name, Membership.role)
        .join(Membership, col(Membership.team_id) == col(Team.id))
        .where(Membership.user_id == user_id)
    ).all()
    return {name: Role(role) for name, role in rows}


def list_teams(session: Session) -> Sequence[Team]:
    return session.exec(select(Team).order_by(Team.name)).all()


def team_members(session: Session, *, team: str) -> list[tuple[User, Role]]:
    rows = session.exec(
        select(User, Membership.role)
        .join(Membership, col(Membership.user_id) == col(User.id))
        .join(Team, col(Team.id) == col(Membership.team_id))
        .where(Team.name == team)
        .order_by(User.username)
    ).all()
    return [(user, Role(role)) for user, role in rows]


def principal_for(session: Session, user: User, *, via: str, web: WebSession | None = None,
                  expires_at: datetime | None = None) -> Principal:
    """The principal of ``user``; ``expires_at`` is its credential's end (a session's own when
    ``web`` is given)."""
    assert user.id is not None
    return Principal(
        user_id=user.id, username=user.username, display_name=user.display_name,
        email=user.email, team_roles=team_roles(session, user_id=user.id),
        is_platform_admin=user.is_platform_admin, via=via,
        session_id=web.id if web else None, csrf_token=web.csrf_token if web else None,
        expires_at=aware(web.expires_at) if web else (aware(expires_at) if expires_at else None),
    )


# ---- API tokens ---------------------------------------------------------------------------------


def create_token(session: Session, *, username: str, name: str, ttl_days: int | None = None,
                 actor: str | None = None) -> tuple[ApiToken, str]:
    """Create a bearer token; the clear value is returned once and never stored."""
    if not name or len(name) > 100:
        raise ValidationFailed("token name must be 1-100 characters", field="name",
                               rule="length")
    if ttl_days is not None and not 1 <= ttl_days <= 3650:
        raise ValidationFailed("ttl_days must be between 1 and 3650", field="ttl_days",
                               rule="range")
    user = get_user(session, username=username)
    assert user.id is not None
    clear = new_secret(TOKEN_PREFIX)
    token = ApiToken(
        user_id=user.id, name=name, token_hash=token_hash(clear), prefix=clear[:12],
        expires_at=utcnow() + timedelta(days=ttl_days) if ttl_days else None,
    )
    session.add(token)
    audit.record(session, actor=actor or username, action="token.create",
                 target=f"{username}/{name}", commit=False)
    session.commit()
    session.refresh(token)
    return token, clear


def list_tokens(session: Session, *, user_id: int) -> Sequence[ApiToken]:
    return session.exec(select(ApiToken).where(ApiToken.user_id == user_id)
                        .order_by(col(ApiToken.id).desc())).all()


def revoke_token(session: Session, *, token_id: int, principal: Principal) -> ApiToken:
    token = session.get(ApiToken, token_id)
    if token is None or (token.user_id != principal.user_id and not principal.is_platform_admin):
        raise NotFound(f"token {token_id} does not exist", field="token_id")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        session.add(token)
        audit.record(session, actor=principal.username, action="token.revoke",
                     target=f"{token.id}:{token.name}", commit=False)
        session.commit()
        session.refresh(token)
    return token


def authenticate_token(session: Session, clear: str, *, ip: str = "") -> Principal:
    token = session.exec(select(ApiToken).where(ApiToken.token_hash == token_hash(clear))).first()
    now = utcnow()
    if token is None:
        raise Unauthenticated("invalid, expired or revoked API token")
    user = session.get(User, token.user_id)
    if token.revoked_at is not None or (
        token.expires_at is not None and aware(token.expires_at) <= now
    ) or user is None or not user.is_active:
        audit.record(session, actor=user.username if user else "", action="auth.token",
                     outcome="denied", ip=ip, target=f"token:{token.id}:{token.name}",
                     detail={"reason": "revoked" if token.revoked_at else "expired or disabled"})
        raise Unauthenticated("invalid, expired or revoked API token")
    # A write per request would serialise every API call on SQLite's single writer; the last
    # use is only worth a minute's precision.
    if token.last_used_at is None or now - aware(token.last_used_at) > LAST_USED_PRECISION:
        token.last_used_at = now
        session.add(token)
        session.commit()
    return principal_for(session, user, via="token", expires_at=token.expires_at)


# ---- sign-in sessions ---------------------------------------------------------------------------


def failed_logins(session: Session, *, username: str, ip: str, window_s: int) -> int:
    since = utcnow() - timedelta(seconds=window_s)
    stmt = select(func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "auth.login", AuditEvent.outcome == "failure",
        col(AuditEvent.at) >= since,
        (AuditEvent.actor == username) | (AuditEvent.ip == ip),
    )
    return int(session.exec(stmt).one())


def login(session: Session, *, username: str, password: str, ip: str, ttl_hours: int,
          rate_limit: int, rate_window_s: int, local_enabled: bool = True
          ) -> tuple[WebSession, str, User]:
    """Check a password and open a session. Every outcome is audited.

    With ``local_enabled=False`` (single sign-on is the way in) a local platform-admin can
    still sign in: the break-glass account for when the identity provider is down.
    """
    username = username.strip().lower()[:64]
    if failed_logins(session, username=username, ip=ip, window_s=rate_window_s) >= rate_limit:
        audit.record(session, actor=username, action="auth.login", outcome="denied", ip=ip,
                     detail={"reason": "rate limited"})
        raise TooManyRequests("too many failed sign-ins; wait a minute and try again",
                              field="username", rule="rate_limit")
    user = session.exec(select(User).where(User.username == username)).first()
    if user is None or not user.is_active or not verify_password(password, user.password_hash):
        audit.record(session, actor=username, action="auth.login", outcome="failure", ip=ip,
                     detail={"reason": "bad credentials"})
        raise Unauthenticated("wrong username or password", field="password")
    if not local_enabled and not user.is_platform_admin:
        audit.record(session, actor=username, action="auth.login", outcome="denied", ip=ip,
                     detail={"reason": "local sign-in disabled"})
        raise Forbidden("local sign-in is disabled; use single sign-on", field="username",
                        rule="local_login")
    via = "password" if local_enabled else "break-glass"
    web, clear = open_session(session, user=user, ip=ip, ttl_hours=ttl_hours, via=via)
    return web, clear, user


def open_session(session: Session, *, user: User, ip: str, ttl_hours: int, via: str
                 ) -> tuple[WebSession, str]:
    assert user.id is not None
    clear = new_secret()
    web = WebSession(
        token_hash=token_hash(clear), user_id=user.id, csrf_token=secrets.token_urlsafe(32),
        via=via, ip=ip[:64], expires_at=utcnow() + timedelta(hours=ttl_hours),
    )
    session.add(web)
    audit.record(session, actor=user.username, action="auth.login", ip=ip,
                 detail={"via": via}, commit=False)
    session.commit()
    session.refresh(web)
    return web, clear


def authenticate_session(session: Session, clear: str, *, ip: str = "") -> Principal:
    web = session.exec(select(WebSession).where(WebSession.token_hash == token_hash(clear))).first()
    if web is None:
        raise Unauthenticated("session expired or signed out; sign in again")
    user = session.get(User, web.user_id)
    if web.revoked_at is not None or aware(web.expires_at) <= utcnow() or user is None \
            or not user.is_active:
        # A known session presented after sign-out or expiry: a replayed (maybe stolen) cookie.
        reason = "signed out" if web.revoked_at is not None else (
            "expired" if aware(web.expires_at) <= utcnow() else "account disabled")
        audit.record(session, actor=user.username if user else "", action="auth.session",
                     outcome="denied", ip=ip, target=f"session:{web.id}",
                     detail={"reason": reason})
        raise Unauthenticated("session expired or signed out; sign in again")
    return principal_for(session, user, via="oidc" if web.via == "oidc" else "session", web=web)


def logout(session: Session, *, principal: Principal, ip: str) -> None:
    if principal.session_id is None:
        return
    web = session.get(WebSession, principal.session_id)
    if web is not None and web.revoked_at is None:
        web.revoked_at = utcnow()
        session.add(web)
    audit.record(session, actor=principal.username, action="auth.logout", ip=ip, commit=False)
    session.commit()
