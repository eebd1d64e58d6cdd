"""Who may do what: the rules every service enforces (pages only mirror them).

- A developer requests only for teams they belong to; a platform-admin for any team, and only
  a platform-admin requests environments.
- Nobody approves their own change.
- Approval routing by environment tier: ``dev`` needs one approval from a member of the owning
  team; ``staging`` a reviewer of the team; ``prod`` and every change under ``envs/`` a
  platform-admin.
- Merging needs green checks and the approval the routing asks for; the merger may be anyone
  allowed to approve (or the author, once someone else approved).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from portal.auth.principal import Principal


class Tier(StrEnum):
    dev = "dev"
    staging = "staging"
    prod = "prod"


class Approver(StrEnum):
    team_member = "team-member"
    team_reviewer = "team-reviewer"
    platform_admin = "platform-admin"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str

    def __bool__(self) -> bool:
        return self.allowed


ALLOW = Decision(True, "allowed")

_TIER_ORDER = {Tier.dev: 0, Tier.staging: 1, Tier.prod: 2}


def strictest_tier(tiers: Iterable[str]) -> Tier:
    """The highest tier among those a change touches (unknown tiers count as prod)."""
    result = Tier.dev
    for raw in tiers:
        tier = Tier(raw) if raw in Tier.__members__ else Tier.prod
        if _TIER_ORDER[tier] > _TIER_ORDER[result]:
            result = tier
    return result


def required_approver(*, tier: Tier, touches_envs: bool) -> Approver:
    if touches_envs or tier is Tier.prod:
        return Approver.platform_admin
    if tier is Tier.staging:
        return Approver.team_reviewer
    return Approver.team_member


def describe_routing(*, tier: Tier, touches_envs: bool, team: str | None) -> str:
    """One sentence for the change page and the PR body."""
    who = required_approver(tier=tier, touches_envs=touches_envs)
    why = "it changes an environment" if touches_envs else f"its strictest tier is `{tier}`"
    if who is Approver.platform_admin:
        need = "one approval from a platform-admin"
    elif who is Approver.team_reviewer:
        need = f"one approval from a reviewer of team `{team}`"
    else:
        need = f"one approval from a member of team `{team}`"
    return f"Needs green checks and {need} (not the author), because {why}."


def can_request(principal: Principal, *, team: str | None, touches_envs: bool = False
                ) -> Decision:
    if principal.is_platform_admin:
        return ALLOW
    if touches_envs:
        return Decision(False, "only a platform-admin requests environment changes")
    if team is None or team not in principal.team_roles:
        return Decision(False, f"you are not a member of team `{team}`")
    return ALLOW


def can_approve(principal: Principal, *, author: str, team: str | None, tier: Tier,
                touches_envs: bool) -> Decision:
    if principal.username == author:
        return Decision(False, "nobody approves their own change (four-eyes rule)")
    who = required_approver(tier=tier, touches_envs=touches_envs)
    if principal.is_platform_admin:
        return ALLOW
    if who is Approver.platform_admin:
        return Decision(False, "this change needs a platform-admin's approval")
    role = principal.team_roles.get(team) if team else None
    if role is None:
        return Decision(False, f"only members of team `{team}` approve its changes")
    if who is Approver.team_reviewer and role.value != "reviewer":
        return Decision(False, f"`{tier}` changes need a reviewer of team `{team}`")
    return ALLOW


def can_merge(principal: Principal, *, author: str, team: str | None, tier: Tier,
              touches_envs: bool, approved_by: Iterable[str], checks_green: bool) -> Decision:
    if not checks_green:
        return Decision(False, "checks are not all green")
    if not any(a != author for a in approved_by):
        return Decision(False, "needs an approval from someone other than the author")
    if principal.username == author:
        return Decision(True, "author merging after another person's approval")
    if principal.is_platform_admin or (team is not None and team in principal.team_roles):
        return ALLOW
    return Decision(False, f"only members of team `{team}` or a platform-admin merge it")
