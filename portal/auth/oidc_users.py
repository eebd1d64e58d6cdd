"""From a verified ID token to a portal user: the groups claim mapping and the user upsert.

Groups claim mapping (Keycloak sends full group paths when "Full group path" is on, plain
names otherwise; both work; a leading ``/`` is ignored):

- ``settings.oidc_admin_group`` (default ``platform-admins``): platform-admin (global);
- ``team-<team>`` (``spec.groups.edit`` of ``teams/<team>/team.yaml``, the group the Keycloak
  admin sync creates), ``/teams/<team>``, ``/teams/<team>/developers``: developer of the team;
- ``team-<team>-admins`` (``spec.groups.admin``), ``/teams/<team>/reviewers``,
  ``/teams/<team>-reviewers``: reviewer of the team;
- ``team-<team>-viewers`` (``spec.groups.view``): nothing (everybody signed in reads);
- ``<team>`` / ``<team>-reviewers`` / ``<team>-admins``: developer / reviewer of a team the
  portal already knows;
- anything else (``offline_access``, ``default-roles-…``): ignored.

A user in both a team's group and its reviewers group is a reviewer. ``team-…`` and
``/teams/…`` groups create the team when it is missing; flat names only count for existing
teams, so unrelated realm groups never become teams. At every sign-in the user's memberships
and the platform-admin flag are replaced by what the claim says (removal in Keycloak revokes).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from portal.auth import audit
from portal.auth.models import Membership, Role, Team, User
from portal.auth.oidc import SignInRefused
from portal.auth.service import TEAM_RE, USERNAME_RE

_RANK = {Role.developer: 0, Role.reviewer: 1}


@dataclass(frozen=True)
class GroupMapping:
    team_roles: dict[str, Role]
    is_platform_admin: bool
    creates_teams: frozenset[str]  # teams named by a `/teams/...` path (created when missing)


def map_groups(groups: Iterable[str], *, admin_group: str,
               known_teams: Iterable[str] = ()) -> GroupMapping:
    known = set(known_teams)
    admin = admin_group.strip("/")
    roles: dict[str, Role] = {}
    creates: set[str] = set()
    is_admin = False
    for raw in groups:
        if not isinstance(raw, str):
            continue
        path = raw.strip().strip("/")
        if path == admin:
            is_admin = True
            continue
        if path.startswith("team-") and path.endswith("-viewers"):
            continue
        explicit = path.startswith(("teams/", "team-"))
        name = path.split("/", 1)[1] if path.startswith("teams/") else (
            path[len("team-"):] if explicit else path)
        role = Role.developer
        for suffix, suffix_role in (("/reviewers", Role.reviewer), ("-reviewers", Role.reviewer),
                                    ("-admins", Role.reviewer), ("/developers", Role.developer)):
            if name.endswith(suffix):
                name, role = name[: -len(suffix)], suffix_role
                break
        if not TEAM_RE.match(name) or (not explicit and name not in known):
            continue
        if explicit:
            creates.add(name)
        if name not in roles or _RANK[role] > _RANK[roles[name]]:
            roles[name] = role
    return GroupMapping(roles, is_admin, frozenset(creates))


def username_from(claims: Mapping[str, Any]) -> str:
    raw = claims.get("preferred_username") or claims.get("email") or ""
    username = str(raw).strip().lower()
    if "@" in username and not claims.get("preferred_username"):
        username = username.split("@", 1)[0]
    if not USERNAME_RE.match(username):
        raise SignInRefused(f"the identity provider's username {username[:64]!r} is not a "
                            "valid portal username (lowercase letters, digits, '.', '_', '-')",
                            field="preferred_username", rule="pattern")
    return username


def groups_from(claims: Mapping[str, Any], claim: str) -> list[str]:
    value = claims.get(claim, [])
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def upsert_user(session: Session, *, claims: Mapping[str, Any], groups_claim: str,
                admin_group: str) -> User:
    """Create or update the OIDC user and replace its memberships; one transaction."""
    username = username_from(claims)
    user = session.exec(select(User).where(User.username == username)).first()
    if user is not None and user.source != "oidc":
        # Never let an IdP account take over a local (possibly break-glass) account.
        raise SignInRefused(f"a local account named {username!r} exists; single sign-on "
                            "cannot use it", field="preferred_username", rule="local_account")
    if user is not None and not user.is_active:
        raise SignInRefused(f"the account {username!r} is disabled in the portal",
                            field="preferred_username", rule="inactive")
    known = session.exec(select(Team.name)).all()
    mapping = map_groups(groups_from(claims, groups_claim), admin_group=admin_group,
                         known_teams=known)
    display = str(claims.get("name") or username)[:200]
    email = str(claims.get("email") or "")[:320]
    created = user is None
    if user is None:
        user = User(username=username, display_name=display, email=email, source="oidc",
                    is_platform_admin=mapping.is_platform_admin, password_hash=None)
    admin_changed = user.is_platform_admin != mapping.is_platform_admin
    user.display_name, user.email = display, email
    user.is_platform_admin = mapping.is_platform_admin
    session.add(user)
    session.flush()
    assert user.id is not None
    changes = _sync_memberships(session, user_id=user.id, wanted=mapping)
    if created or admin_changed or changes:
        audit.record(session, actor=username, action="user.oidc-sync", target=username,
                     detail={"created": created, "platform_admin": mapping.is_platform_admin,
                             "teams": {t: r.value for t, r in mapping.team_roles.items()},
                             "changes": changes}, commit=False)
    session.commit()
    session.refresh(user)
    return user


def _sync_memberships(session: Session, *, user_id: int, wanted: GroupMapping) -> list[str]:
    teams = {t.name: t for t in session.exec(select(Team).where(
        col(Team.name).in_(list(wanted.team_roles)))).all()}
    for name in wanted.team_roles:
        if name not in teams and name in wanted.creates_teams:
            teams[name] = Team(name=name, display_name=name)
            session.add(teams[name])
    session.flush()
    current = {m.team_id: m for m in session.exec(
        select(Membership).where(Membership.user_id == user_id)).all()}
    changes: list[str] = []
    for name, role in wanted.team_roles.items():
        team_id = teams[name].id
        assert team_id is not None
        membership = current.pop(team_id, None)
        if membership is None:
            session.add(Membership(user_id=user_id, team_id=team_id, role=role.value))
            changes.append(f"+{name}:{role.value}")
        elif membership.role != role.value:
            membership.role = role.value
            session.add(membership)
            changes.append(f"~{name}:{role.value}")
    for team_id, membership in current.items():
        team = session.get(Team, team_id)
        session.delete(membership)
        changes.append(f"-{team.name if team else team_id}")
    return changes
