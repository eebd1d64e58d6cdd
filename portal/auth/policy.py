"""Who may do what: the rules every service enforces (pages only mirror them).

- Everybody signed in reads the catalog, changes and jobs ("guardrails, not gates").
- A developer requests only for teams they belong to; a platform-admin for any team. Anybody
  signed in requests a **new team** (its owners are declared in its team.yaml); the request
  has no owning team yet, so a platform-admin approves it. Only a
  platform-admin requests another change without an owning team or one that touches
  ``envs/`` (environments), and only a platform-admin manages environments, settings, users
  and the audit log.
- Nobody approves their own change (four-eyes), not even a platform-admin.
- Approval routing by environment tier: ``dev`` needs one approval from a member of the owning
  team; ``staging`` a reviewer of the team; ``prod`` and every change under ``envs/`` a
  platform-admin. A platform-admin may approve anything that is not their own.
- Merging needs green checks and an approval from someone other than the author (the service
  records only approvals that passed ``can_approve``, so an approval on record is one the
  routing asked for); the merger is the author, a member of the owning team or a
  platform-admin.
- Closing a change: its author, a reviewer of the owning team, or a platform-admin.
- Retrying a failed job: a reviewer of the owning team for team units, a platform-admin for
  everything (environment units have no owning team).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from portal.auth.models import Role
from portal.auth.principal import Principal
from portal.errors import Forbidden


class Tier(StrEnum):
    dev = "dev"
    staging = "staging"
    prod = "prod"


class Approver(StrEnum):
    team_member = "team-member"
    team_reviewer = "team-reviewer"
    platform_admin = "platform-admin"


class Action(StrEnum):
    """Every governed action; ``check`` dispatches on it (the permission matrix test uses it)."""

    view = "view"
    request = "request"
    approve = "approve"
    merge = "merge"
    close = "close"
    retry_job = "retry-job"
    manage_team = "manage-team"
    manage_environments = "manage-environments"
    manage_settings = "manage-settings"
    manage_users = "manage-users"
    read_audit = "read-audit"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str

    def __bool__(self) -> bool:
        return self.allowed


ALLOW = Decision(True, "allowed")

_TIER_ORDER = {Tier.dev: 0, Tier.staging: 1, Tier.prod: 2}


def require(decision: Decision) -> None:
    """Turn a refusal into ``Forbidden`` naming the rule (services call this)."""
    if not decision.allowed:
        raise Forbidden(decision.reason, rule="policy")


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


def describe_routing(*, tier: Tier, touches_envs: bool, team: str | None,
                     new_team: bool = False) -> str:
    """One sentence for the change page and the PR body."""
    who = required_approver(tier=tier, touches_envs=touches_envs)
    why = "it changes an environment" if touches_envs else f"its strictest tier is `{tier}`"
    if team is None and who is not Approver.platform_admin:
        # A change without an owning team has no team to approve it.
        who = Approver.platform_admin
        why = "it creates a new team" if new_team else "it has no owning team"
    if who is Approver.platform_admin:
        need = "one approval from a platform-admin"
    elif who is Approver.team_reviewer:
        need = f"one approval from a reviewer of team `{team}`"
    else:
        need = f"one approval from a member of team `{team}`"
    return f"Needs green checks and {need} (not the author), because {why}."


def can_view(principal: Principal) -> Decision:
    return ALLOW if principal.username else Decision(False, "sign in first")


def can_request_new_team(principal: Principal) -> Decision:
    """Anybody signed in may ask for a new team; a platform-admin approves it (no owning team
    exists yet to approve it)."""
    return ALLOW if principal.username else Decision(False, "sign in first")


def can_request(principal: Principal, *, team: str | None, touches_envs: bool = False
                ) -> Decision:
    if principal.is_platform_admin:
        return ALLOW
    if touches_envs:
        return Decision(False, "only a platform-admin requests environment changes")
    if team is None:
        return Decision(False, "only a platform-admin requests a change without an owning team")
    if team not in principal.team_roles:
        return Decision(False, f"you are not a member of team `{team}`")
    return ALLOW


def can_approve(principal: Principal, *, author: str, team: str | None, tier: Tier,
                touches_envs: bool) -> Decision:
    if principal.username == author:
        return Decision(False, "nobody approves their own change (four-eyes rule)")
    who = required_approver(tier=tier, touches_envs=touches_envs)
    if principal.is_platform_admin:
        return ALLOW
    if who is Approver.platform_admin or team is None:
        return Decision(False, "this change needs a platform-admin's approval")
    role = principal.team_roles.get(team)
    if role is None:
        return Decision(False, f"only members of team `{team}` approve its changes")
    if who is Approver.team_reviewer and role != Role.reviewer:
        return Decision(False, f"`{tier}` changes need a reviewer of team `{team}`")
    return ALLOW


def can_merge(principal: Principal, *, author: str, team: str | None, tier: Tier,
              touches_envs: bool, approved_by: Iterable[str], checks_green: bool) -> Decision:
    """``approved_by``: approvals on record (each one passed ``can_approve`` when given)."""
    del tier, touches_envs  # the routing was applied when each approval was recorded
    if not checks_green:
        return Decision(False, "checks are not all green")
    if not any(a != author for a in approved_by):
        return Decision(False, "needs an approval from someone other than the author")
    if principal.username == author:
        return Decision(True, "author merging after another person's approval")
    if principal.is_platform_admin or (team is not None and team in principal.team_roles):
        return ALLOW
    return Decision(False, f"only members of team `{team}` or a platform-admin merge it")


def can_close(principal: Principal, *, author: str, team: str | None) -> Decision:
    if principal.username == author or principal.is_platform_admin:
        return ALLOW
    if team is not None and principal.team_roles.get(team) == Role.reviewer:
        return ALLOW
    return Decision(False, "only the author, a reviewer of the owning team or a platform-admin "
                           "closes a change")


def can_retry_job(principal: Principal, *, team: str | None, touches_envs: bool) -> Decision:
    if principal.is_platform_admin:
        return ALLOW
    if touches_envs or team is None:
        return Decision(False, "only a platform-admin retries environment and platform jobs")
    if principal.team_roles.get(team) == Role.reviewer:
        return ALLOW
    return Decision(False, f"only a reviewer of team `{team}` or a platform-admin retries "
                           "its jobs")


def can_manage_team(principal: Principal, *, team: str) -> Decision:
    """Membership and team settings: a reviewer of that team or a platform-admin."""
    if principal.is_platform_admin or principal.team_roles.get(team) == Role.reviewer:
        return ALLOW
    return Decision(False, f"only a reviewer of team `{team}` or a platform-admin manages it")


def _admin_only(principal: Principal, what: str) -> Decision:
    if principal.is_platform_admin:
        return ALLOW
    return Decision(False, f"only a platform-admin {what}")


def can_manage_environments(principal: Principal) -> Decision:
    return _admin_only(principal, "manages environments")


def can_manage_settings(principal: Principal) -> Decision:
    return _admin_only(principal, "changes settings")


def can_manage_users(principal: Principal) -> Decision:
    return _admin_only(principal, "manages users")


def can_read_audit(principal: Principal) -> Decision:
    return _admin_only(principal, "reads the audit log")


def check(principal: Principal, action: Action, *, team: str | None = None,
          tier: Tier = Tier.dev, author: str = "", touches_envs: bool = False,
          approved_by: Iterable[str] = (), checks_green: bool = True) -> Decision:
    """One entry point over every rule (the matrix test and generic callers use it)."""
    if action is Action.view:
        return can_view(principal)
    if action is Action.request:
        return can_request(principal, team=team, touches_envs=touches_envs)
    if action is Action.approve:
        return can_approve(principal, author=author, team=team, tier=tier,
                           touches_envs=touches_envs)
    if action is Action.merge:
        return can_merge(principal, author=author, team=team, tier=tier,
                         touches_envs=touches_envs, approved_by=approved_by,
                         checks_green=checks_green)
    if action is Action.close:
        return can_close(principal, author=author, team=team)
    if action is Action.retry_job:
        return can_retry_job(principal, team=team, touches_envs=touches_envs)
    if action is Action.manage_team:
        return can_manage_team(principal, team=team or "")
    if action is Action.manage_environments:
        return can_manage_environments(principal)
    if action is Action.manage_settings:
        return can_manage_settings(principal)
    if action is Action.manage_users:
        return can_manage_users(principal)
    return can_read_audit(principal)
