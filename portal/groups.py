"""The one rule for identity group names: team groups derived from the team name, platform groups
apart, and every group name safe to put in a URL.

**Team groups** are never free text: they are derived from the team name (the folder name of
``teams/<team>/``) by :func:`team_groups`::

    team-<team>            developers: the team's owners and members (Keycloak sync), the
                           AppProject ``admin`` role, the tenants' ``edit`` RoleBinding, the
                           GitHub team that owns the team's tenants in CODEOWNERS
    team-<team>-admins     reviewers: the team's owners (Keycloak sync), the tenants' ``admin``
                           RoleBinding, the GitHub team that owns ``teams/<team>/``
    team-<team>-viewers    viewers: the tenants' ``view`` RoleBinding (not synced: not listed)

**Why it cannot collide.** A team name is a DNS-1123 label of at most 30 characters
(``[a-z0-9]``, inner ``-``) that does not end in a reserved suffix (``-admins``, ``-viewers``).
The names are ``"team-" + team + s`` with ``s`` in ``{"", "-admins", "-viewers"}``. If two
(team, s) pairs gave one name with ``s1 != s2``, the shorter suffix would be a suffix of the
longer one (impossible: neither of ``-admins``/``-viewers`` ends the other), or, when one suffix
is empty, that team name would end in the other suffix (refused). With equal suffixes the team
names are equal. So ``(team, role) -> name`` is injective; ``tests/portal/test_groups.py`` also
checks it exhaustively over a small alphabet. (Before this rule, team ``pay``'s admin group and
team ``pay-admins``' edit group were both ``team-pay-admins``.)

**Platform groups** are the groups the settings name (``CAAS_OIDC_ADMIN_GROUP``). They never
start with ``team-`` (:func:`normalise_platform_group` refuses it), so no team group is ever a
platform group and no team file can name one and pass :func:`check_team_group`.

**Group-name rule** (:func:`check_group_path`): a group path is one or more segments separated by
``/``, each a DNS-1123 label (at most 63 characters). So a group name never carries ``#``, ``%``,
``?``, spaces or an upper-case letter that Keycloak would treat as another group; the admin
client still escapes each segment (defence in depth).

**Claims** (:func:`parse_claim_group`): Keycloak's group-membership mapper sends ``team-pay``
with "Full group path" off and ``/team-pay`` with it on; both are accepted, nothing else is read
as a team group. Legacy forms (``pay``, ``pay-admins``, ``pay-reviewers``, ``/teams/pay/...``)
are ignored; the README says how to migrate.

Errors are ``GroupRuleError`` (422, names the field and the rule ``group-name``,
``team-name`` or ``team-group``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from gitops.names import is_dns_label
from portal.errors import ValidationFailed

TEAM_PREFIX = "team-"
REVIEWERS_SUFFIX = "-admins"
VIEWERS_SUFFIX = "-viewers"
RESERVED_TEAM_SUFFIXES = (REVIEWERS_SUFFIX, VIEWERS_SUFFIX)
TEAM_NAME_MAX = 30


class GroupRuleError(ValidationFailed):
    """A group or team name breaks the group rule (see the module docstring)."""

    code = "group_rule"


class TeamRole(StrEnum):
    developers = "developers"
    reviewers = "reviewers"
    viewers = "viewers"


@dataclass(frozen=True)
class TeamGroups:
    """The groups of one team, all derived from its name."""

    team: str
    developers: str
    reviewers: str
    viewers: str

    @property
    def all(self) -> tuple[str, str, str]:
        return (self.developers, self.reviewers, self.viewers)

    def role_of(self, group: str) -> TeamRole | None:
        return {self.developers: TeamRole.developers, self.reviewers: TeamRole.reviewers,
                self.viewers: TeamRole.viewers}.get(group)


@dataclass(frozen=True)
class ClaimGroup:
    """A team group read from an ID token's groups claim."""

    team: str
    role: TeamRole


def check_team_name(team: object, *, field: str = "team") -> str:
    """``team`` when it may name a team: DNS-1123 label, at most 30 characters, not ending in
    ``-admins``/``-viewers``; else ``GroupRuleError`` (rule ``team-name``)."""
    if not isinstance(team, str) or len(team) > TEAM_NAME_MAX or not is_dns_label(team):
        raise GroupRuleError(f"{team!r} is not a team name: a DNS-1123 label (lowercase "
                             f"letters, digits, inner '-') of at most {TEAM_NAME_MAX} characters",
                             field=field, rule="team-name")
    for suffix in RESERVED_TEAM_SUFFIXES:
        if team.endswith(suffix):
            raise GroupRuleError(
                f"team name {team!r} ends in {suffix!r}: its groups would collide with the "
                f"groups of team {team[:-len(suffix)]!r} (team-<team>{suffix})",
                field=field, rule="team-name")
    return team


def team_groups(team: str, *, field: str = "team") -> TeamGroups:
    """The derived groups of ``team`` (validated by :func:`check_team_name`)."""
    check_team_name(team, field=field)
    base = TEAM_PREFIX + team
    return TeamGroups(team, base, base + REVIEWERS_SUFFIX, base + VIEWERS_SUFFIX)


def team_of_group(name: str) -> ClaimGroup | None:
    """The (team, role) a derived team group name stands for; ``None`` for any other name."""
    if not name.startswith(TEAM_PREFIX):
        return None
    rest = name[len(TEAM_PREFIX):]
    role = TeamRole.developers
    for suffix, suffix_role in ((REVIEWERS_SUFFIX, TeamRole.reviewers),
                                (VIEWERS_SUFFIX, TeamRole.viewers)):
        if rest.endswith(suffix):
            rest, role = rest[:-len(suffix)], suffix_role
            break
    try:
        check_team_name(rest)
    except GroupRuleError:
        return None
    return ClaimGroup(rest, role)


def check_group_path(path: object, *, field: str) -> str:
    """``path`` (``name`` or ``parent/child``, no outer slashes) when every segment is a DNS-1123
    label; else ``GroupRuleError`` (rule ``group-name``). The only names the sync puts in URLs."""
    segments = path.split("/") if isinstance(path, str) else [""]
    if not all(is_dns_label(s) for s in segments):
        raise GroupRuleError(f"{str(path)[:100]!r} is not a group name: each '/'-separated "
                             "segment must be a DNS-1123 label (lowercase letters, digits, "
                             "inner '-', at most 63)", field=field, rule="group-name")
    return str(path)


def normalise_platform_group(value: str, *, field: str = "oidc_admin_group") -> str:
    """A platform group setting as the one canonical path: outer spaces and slashes dropped
    (``/platform-admins/`` → ``platform-admins``), segments checked, never a team group."""
    path = check_group_path(value.strip().strip("/"), field=field)
    if path.startswith(TEAM_PREFIX):
        raise GroupRuleError(f"{path!r} starts with {TEAM_PREFIX!r}: names of that form belong "
                             "to teams (team-<team>...), a platform group cannot use them",
                             field=field, rule="team-group")
    return path


def check_team_group(value: object, *, team: str, role: TeamRole, field: str,
                     platform_groups: Iterable[str] = ()) -> str:
    """``value`` when it is exactly ``team``'s derived group for ``role``; otherwise a
    ``GroupRuleError`` (rule ``team-group``) that names what ``value`` is (a platform group,
    another team's group, not a group name) and what the rule requires."""
    wanted = str(getattr(team_groups(team), role.value))
    if value == wanted:
        return wanted
    platform = {p.strip("/") for p in platform_groups}
    text = value if isinstance(value, str) else repr(value)
    if isinstance(value, str) and value.strip("/") in platform:
        why = f"{text!r} is a platform group"
    elif isinstance(value, str) and (other := team_of_group(value)) is not None:
        why = f"{text!r} is team {other.team!r}'s {other.role.value} group"
    else:
        why = f"{text[:100]!r} is not {team!r}'s {role.value} group"
    raise GroupRuleError(f"{why}; a team's groups are derived from its name: {role.value} of "
                         f"{team!r} is {wanted!r}", field=field, rule="team-group")


_GROUP_KEYS = {"edit": TeamRole.developers, "admin": TeamRole.reviewers,
               "view": TeamRole.viewers}


def check_team_file(team: str, doc: Mapping[str, Any], *, where: str,
                    platform_groups: Iterable[str] = ()) -> TeamGroups:
    """The derived groups of ``team`` once its parsed ``teams/<team>/team.yaml`` (``doc``,
    ``caas.io/v1 Team``) agrees with them: ``metadata.name``, ``spec.keycloakGroup`` and
    ``spec.groups.{edit,admin,view}``, where present, are exactly ``team`` / the derived names.
    ``GroupRuleError`` names ``<where>: <field>`` and the rule otherwise."""
    groups = team_groups(team, field=f"{where}: folder")
    metadata = doc.get("metadata")
    if isinstance(metadata, Mapping) and metadata.get("name", team) != team:
        raise GroupRuleError(f"metadata.name must be the folder name {team!r}",
                             field=f"{where}: metadata.name", rule="team-name")
    spec = doc.get("spec")
    spec = spec if isinstance(spec, Mapping) else {}
    if "keycloakGroup" in spec:
        check_team_group(spec["keycloakGroup"], team=team, role=TeamRole.developers,
                         field=f"{where}: spec.keycloakGroup", platform_groups=platform_groups)
    named = spec.get("groups", {})
    if not isinstance(named, Mapping):
        raise GroupRuleError("spec.groups must map edit/admin/view to group names",
                             field=f"{where}: spec.groups", rule="team-group")
    for key, value in named.items():
        role = _GROUP_KEYS.get(str(key))
        if role is None:
            raise GroupRuleError(f"spec.groups.{key}: only edit, admin and view exist",
                                 field=f"{where}: spec.groups.{key}", rule="team-group")
        check_team_group(value, team=team, role=role, field=f"{where}: spec.groups.{key}",
                         platform_groups=platform_groups)
    return groups


def parse_claim_group(value: str) -> ClaimGroup | None:
    """A team group from a groups claim: ``team-<t>[-admins|-viewers]`` with "Full group path"
    off, or the same with one leading ``/`` (on). Any other form: ``None``."""
    name = value[1:] if value.startswith("/") else value
    if "/" in name:
        return None
    return team_of_group(name)
