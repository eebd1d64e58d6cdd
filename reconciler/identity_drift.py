"""Keycloak against the team files on main: the read-only half of the Keycloak sync.

``identity_drift(settings, forge) -> list[GroupDrift]`` computes the groups of every team on
main exactly as the periodic resync does (``KeycloakResync.groups``) and asks
``KeycloakSync.plan`` — the sync's own read-then-write plan, run without its writes — what a
sync would change. Each planned change is one difference: a group to create, a group renamed
in Keycloak, a member to add (listed in team.yaml, not in the group), a member to remove (in
the group, not listed), a listed user with no Keycloak account (no sync can add them until
they sign in). ``sync_teams(settings, forge, teams)`` is the fix: the same sync for those
teams. Raises ``NotConfigured`` without Keycloak and ``SyncError`` when it fails.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from gitops.forges.base import Forge
from portal.auth.usernames import portal_username
from portal.groups import team_of_group as claim_of_group
from portal.settings import Settings
from reconciler.identity_resync import KeycloakResync
from reconciler.keycloak import KeycloakSync, SyncReport


def team_of_group(name: str) -> str:
    claim = claim_of_group(name)
    return claim.team if claim is not None else ""


@dataclass(frozen=True)
class GroupDrift:
    team: str
    group: str
    kind: str  # group-missing | group-renamed | member-missing | member-extra | user-missing
    member: str = ""
    what: str = ""


def identity_drift(settings: Settings, forge: Forge) -> list[GroupDrift]:
    sync = KeycloakSync.from_settings(settings)
    groups = KeycloakResync(settings, forge).groups()
    plans, report = sync.plan(groups, admins=())
    found: list[GroupDrift] = []
    for plan in plans:
        team = team_of_group(plan.path)
        if plan.group_id is None:
            found.append(GroupDrift(team, plan.path, "group-missing", what=(
                f"Keycloak group {plan.path} does not exist "
                f"({len(plan.add)} member(s) listed in team.yaml)")))
            continue
        if plan.renamed_from:
            found.append(GroupDrift(team, plan.path, "group-renamed", what=(
                f"Keycloak group {plan.path} was renamed to {plan.renamed_from}")))
        for username, _id in plan.add:
            found.append(GroupDrift(team, plan.path, "member-missing", username, (
                f"{username} is listed in teams/{team}/team.yaml but is not a member of "
                f"Keycloak group {plan.path}")))
        for username, _id in plan.remove:
            found.append(GroupDrift(team, plan.path, "member-extra", username, (
                f"{username} is a member of Keycloak group {plan.path} but is not listed "
                f"in teams/{team}/team.yaml")))
    missing = set(report.missing_users)
    for group in groups:
        for member in sorted({portal_username(m.lstrip("@")) or m.lower()
                              for m in group.members} & missing):
            team = team_of_group(group.name)
            found.append(GroupDrift(team, group.name, "user-missing", member, (
                f"{member} is listed in teams/{team}/team.yaml but has no Keycloak account "
                "yet (the resync adds them to the group once they sign in)")))
    return found


def sync_teams(settings: Settings, forge: Forge, teams: Iterable[str]) -> SyncReport:
    """The fix: the Keycloak sync of ``teams``' groups (what their merge job runs)."""
    sync = KeycloakSync.from_settings(settings)
    return sync.sync(KeycloakResync(settings, forge).groups(set(teams)))
