"""From a verified ID token to a portal user: the groups claim mapping and the user upsert.

Groups claim mapping — exactly the forms ``portal.groups`` derives, with "Full group path"
on (``/team-pay``) or off (``team-pay``) in the client's group-membership mapper:

- ``settings.oidc_admin_group`` (default ``platform-admins``; ``/platform-admins`` with full
  paths): platform-admin (global). A nested admin group (``ops/admins``) needs "Full group path"
  on: its plain leaf name (``admins``) is refused with a message naming that realm setting;
- ``team-<team>`` / ``/team-<team>``: developer of the team;
- ``team-<team>-admins`` / ``/team-<team>-admins``: reviewer of the team;
- ``team-<team>-viewers``: nothing (everybody signed in reads);
- anything else — including the retired forms ``<team>``, ``<team>-reviewers``,
  ``<team>-admins`` and ``/teams/<team>/...`` (README: "Migrating group names") — is ignored.

A user in both a team's group and its reviewers group is a reviewer. Team groups create the team
when it is missing. At every sign-in the platform-admin flag is replaced by what the claim says
(removal in Keycloak revokes). Team roles of a team whose ``team.yaml`` on main declares owners or
members come from git (``portal.auth.git_members``), not from the claim: a claim that disagrees
is recorded in the ``user.oidc-sync`` audit event (``claim_ignored``) and shown on the profile
page; the claim's team groups count only for teams git does not declare.

Usernames (:func:`username_from`, by ``portal.auth.usernames.portal_username``):
``preferred_username`` (or ``email``), lower-cased. Realms with "Email as username" send
``alice@example.org``; it becomes the portal name ``alice_at_example.org`` (characters a portal
name cannot hold become ``-``). The portal keeps
the token's ``sub`` per user, so two Keycloak accounts that map to one portal name are refused
(``rule=username-collision``) instead of sharing an account.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from portal.auth import audit
from portal.auth.git_members import (
    claim_disagreements,
    declared_for,
    declared_teams,
    last_claim_ignored,
)
from portal.auth.models import Membership, Role, Team, User
from portal.auth.oidc import SignInRefused
from portal.auth.usernames import portal_username
from portal.groups import TeamRole, parse_claim_group

_RANK = {Role.developer: 0, Role.reviewer: 1}
_ROLE = {TeamRole.developers: Role.developer, TeamRole.reviewers: Role.reviewer}


@dataclass(frozen=True)
class GroupMapping:
    team_roles: dict[str, Role]
    is_platform_admin: bool
    creates_teams: frozenset[str]  # teams named by a team group (created when missing)


def map_groups(groups: Iterable[str], *, admin_group: str) -> GroupMapping:
    """Teams, roles and the platform-admin flag a groups claim grants (see module docstring).
    ``admin_group`` is the normalised setting (``platform-admins`` or ``ops/admins``)."""
    admin = admin_group.strip("/")
    leaf = admin.rsplit("/", 1)[-1] if "/" in admin else None
    roles: dict[str, Role] = {}
    is_admin = False
    for raw in groups:
        if not isinstance(raw, str):
            continue
        value = raw.strip()
        if value in (admin, "/" + admin) and (value.startswith("/") or leaf is None):
            is_admin = True
            continue
        if leaf is not None and value == leaf:
            raise SignInRefused(
                f"the groups claim carries the plain group name {leaf!r}, but the admin group "
                f"is the sub-group {admin!r}: turn on \"Full group path\" in the Keycloak "
                "client's group-membership mapper (Clients → <client> → Client scopes → "
                "dedicated scope → groups mapper)", field="groups", rule="full-group-path")
        found = parse_claim_group(value)
        if found is None or found.role not in _ROLE:
            continue
        role = _ROLE[found.role]
        if found.team not in roles or _RANK[role] > _RANK[roles[found.team]]:
            roles[found.team] = role
    return GroupMapping(roles, is_admin, frozenset(roles))


def username_from(claims: Mapping[str, Any]) -> str:
    """The portal name of the token's user: ``preferred_username`` (else ``email``), lower-case;
    an e-mail address (Keycloak's "Email as username") becomes ``<local>_at_<domain>``."""
    raw = str(claims.get("preferred_username") or claims.get("email") or "").strip().lower()
    username = portal_username(raw)
    if username is None:
        raise SignInRefused(f"the identity provider's username {raw[:64]!r} cannot be a "
                            "portal username (lowercase letters, digits, '.', '_', '-', at most "
                            "64; e-mail addresses become <local>_at_<domain>)",
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
    subject = str(claims.get("sub") or "")[:255] or None
    user = session.exec(select(User).where(User.username == username)).first()
    if (user is not None and user.source == "oidc" and subject is not None
            and user.oidc_subject not in (None, subject)):
        raise SignInRefused(f"the portal name {username!r} already belongs to another "
                            "identity-provider account (e-mail usernames map to "
                            "<local>_at_<domain>; two accounts reached the same name)",
                            field="preferred_username", rule="username-collision")
    if user is not None and user.source != "oidc":
        # Never let an IdP account take over a local (possibly break-glass) account.
        raise SignInRefused(f"a local account named {username!r} exists; single sign-on "
                            "cannot use it", field="preferred_username", rule="local_account")
    if user is not None and not user.is_active:
        raise SignInRefused(f"the account {username!r} is disabled in the portal",
                            field="preferred_username", rule="inactive")
    if user is None and subject is not None and session.exec(
            select(User).where(User.oidc_subject == subject)).first() is not None:
        raise SignInRefused(f"this identity-provider account already signs in under another "
                            f"portal name; its username changed to {username!r}, which the "
                            "portal does not rename", field="preferred_username",
                            rule="username-changed")
    claimed = map_groups(groups_from(claims, groups_claim), admin_group=admin_group)
    # Team roles of teams git declares come from git (team.yaml on main); the claim decides
    # platform-admin, and its team groups only for teams git does not declare.
    managed = declared_teams(session)
    declared = declared_for(session, username=username)
    ignored = claim_disagreements(claimed.team_roles, declared, managed)
    roles = {t: r for t, r in claimed.team_roles.items() if t not in managed}
    roles.update(declared)
    mapping = GroupMapping(roles, claimed.is_platform_admin,
                           frozenset(t for t in roles if t not in managed))
    display = str(claims.get("name") or username)[:200]
    email = str(claims.get("email") or "")[:320]
    created = user is None
    if user is None:
        user = User(username=username, display_name=display, email=email, source="oidc",
                    is_platform_admin=mapping.is_platform_admin, password_hash=None)
    admin_changed = user.is_platform_admin != mapping.is_platform_admin
    user.display_name, user.email = display, email
    user.oidc_subject = subject or user.oidc_subject
    user.is_platform_admin = mapping.is_platform_admin
    session.add(user)
    session.flush()
    assert user.id is not None
    changes = _sync_memberships(session, user_id=user.id, wanted=mapping)
    shown = {} if created else last_claim_ignored(session, username=username)
    if created or admin_changed or changes or ignored != shown:
        audit.record(session, actor=username, action="user.oidc-sync", target=username,
                     detail={"created": created, "platform_admin": mapping.is_platform_admin,
                             "teams": {t: r.value for t, r in mapping.team_roles.items()},
                             "changes": changes, "claim_ignored": ignored}, commit=False)
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
