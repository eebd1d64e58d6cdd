"""Identity tables and their public shapes."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, DateTime, UniqueConstraint
from sqlmodel import Field, SQLModel

from portal.db import UtcDatetime, utcnow


class Role(StrEnum):
    developer = "developer"
    reviewer = "reviewer"
    platform_admin = "platform-admin"


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(index=True, unique=True, max_length=64)
    display_name: str = Field(default="", max_length=200)
    email: str = Field(default="", max_length=320)
    password_hash: str | None = Field(default=None, max_length=300)
    is_platform_admin: bool = Field(default=False)
    is_active: bool = Field(default=True)
    source: str = Field(default="local", max_length=16)  # local | oidc
    # The ID token's `sub` of an OIDC user: two Keycloak accounts never share one portal name.
    oidc_subject: str | None = Field(default=None, max_length=255, unique=True, index=True)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )


class Team(SQLModel, table=True):
    __tablename__ = "teams"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True, max_length=63)
    display_name: str = Field(default="", max_length=200)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )


class Membership(SQLModel, table=True):
    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("user_id", "team_id"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True, ondelete="CASCADE")
    team_id: int = Field(foreign_key="teams.id", index=True, ondelete="CASCADE")
    role: str = Field(default=Role.developer.value, max_length=32)


class DeclaredMembership(SQLModel, table=True):
    """A team's owner or member as ``teams/<team>/team.yaml`` on main declares them: the source
    of truth for team roles (``portal.auth.git_members``). Kept for names with no portal account
    yet, so the role applies at their first sign-in."""

    __tablename__ = "declared_memberships"
    __table_args__ = (UniqueConstraint("team", "username"),)

    id: int | None = Field(default=None, primary_key=True)
    team: str = Field(index=True, max_length=63)
    username: str = Field(index=True, max_length=64)
    role: str = Field(max_length=32)
    commit: str = Field(default="", max_length=64)


class ApiToken(SQLModel, table=True):
    __tablename__ = "api_tokens"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True, ondelete="CASCADE")
    name: str = Field(max_length=100)
    token_hash: str = Field(unique=True, max_length=64)
    prefix: str = Field(max_length=16)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    expires_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    revoked_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    last_used_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )


class WebSession(SQLModel, table=True):
    """A sign-in session. The cookie holds a random id; only its hash is stored."""

    __tablename__ = "web_sessions"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(unique=True, max_length=64)
    user_id: int = Field(foreign_key="users.id", index=True, ondelete="CASCADE")
    csrf_token: str = Field(max_length=64)
    via: str = Field(default="password", max_length=16)  # password | oidc
    ip: str = Field(default="", max_length=64)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    expires_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    revoked_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )


class AuditEvent(SQLModel, table=True):
    """Append-only: the code has no update or delete path for this table."""

    __tablename__ = "audit_events"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(
        default_factory=utcnow,
        sa_column=Column(DateTime(timezone=True), nullable=False, index=True),
    )
    actor: str = Field(default="", max_length=64, index=True)
    action: str = Field(max_length=64, index=True)
    target: str = Field(default="", max_length=300)
    outcome: str = Field(default="success", max_length=16)  # success|failure|denied|skipped
    ip: str = Field(default="", max_length=64)
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class OidcLogin(SQLModel, table=True):
    """A sign-in started at the identity provider and not yet finished.

    The callback consumes the row with one ``DELETE`` (single use); the PKCE verifier and the
    nonce never leave the server.
    """

    __tablename__ = "oidc_logins"

    id: int | None = Field(default=None, primary_key=True)
    state_id: str = Field(unique=True, max_length=64)
    nonce: str = Field(max_length=64)
    code_verifier: str = Field(max_length=128)
    next_url: str = Field(default="/", max_length=2000)
    ip: str = Field(default="", max_length=64)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    expires_at: datetime = Field(
        sa_column=Column(DateTime(timezone=True), nullable=False, index=True)
    )


# ---- public shapes ------------------------------------------------------------------------------


class UserPublic(SQLModel):
    id: int
    username: str
    display_name: str
    email: str
    is_platform_admin: bool
    teams: dict[str, str] = {}


class TokenCreated(SQLModel):
    id: int
    name: str
    token: str
    expires_at: UtcDatetime | None


class TokenPublic(SQLModel):
    id: int
    name: str
    prefix: str
    created_at: UtcDatetime
    expires_at: UtcDatetime | None
    revoked_at: UtcDatetime | None
    last_used_at: UtcDatetime | None


class AuditEventPublic(SQLModel):
    id: int
    at: UtcDatetime
    actor: str
    action: str
    target: str
    outcome: str
    ip: str
    detail: dict[str, Any]
