"""The authenticated caller, as every route and service sees it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from portal.auth.models import Role


@dataclass(frozen=True)
class Principal:
    """Who is calling: user, teams (with the role held in each) and global roles.

    Local accounts, API tokens and OIDC sign-ins all produce this same shape.
    """

    user_id: int
    username: str
    display_name: str = ""
    email: str = ""
    team_roles: Mapping[str, Role] = field(default_factory=dict)
    is_platform_admin: bool = False
    via: str = "session"  # session | token | oidc | system
    session_id: int | None = None
    csrf_token: str | None = None
    # When the credential stops being valid (UTC; None: never, or not from a credential).
    expires_at: datetime | None = None

    @property
    def teams(self) -> frozenset[str]:
        return frozenset(self.team_roles)

    @property
    def roles(self) -> frozenset[Role]:
        roles = set(self.team_roles.values())
        if self.is_platform_admin:
            roles.add(Role.platform_admin)
        return frozenset(roles)

    def in_team(self, team: str) -> bool:
        return self.is_platform_admin or team in self.team_roles

    def role_in(self, team: str) -> Role | None:
        return self.team_roles.get(team)

    def can_review(self, team: str) -> bool:
        return self.is_platform_admin or self.team_roles.get(team) == Role.reviewer


SYSTEM = Principal(user_id=0, username="system", display_name="caas reconciler",
                   is_platform_admin=True, via="system")
