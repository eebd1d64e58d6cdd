"""The review of change sets: list and read them, approve, merge, close, and follow what the
forge reports (PR events), with policy, audit and catalog status at each step.

Approve and merge need a forge that reviews inside the portal (``Forge.review()``, the local
forge); on GitHub they happen on the pull request and arrive as events.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from catalog import service as catalog_service
from gitops import object_names
from gitops.forges.base import ChangeState, Forge, MergeEvent, Review
from gitops.forges.github_webhook import PullRequestEvent
from portal import tracing
from portal.auth import audit, policy
from portal.auth.principal import Principal
from portal.db import aware, utcnow
from portal.errors import BadRequest, CaasError, Conflict, Forbidden, NotFound
from reconciler import service as reconciler_service
from scaffolder import (
    merge_gate,
    merge_lock,
    pr_checks,
    promotion_gates,
    promotion_review,
)
from scaffolder.changeset import touched_envs
from scaffolder.checks.identity import check_identity
from scaffolder.models import Change, ChangeDetail, ChangePublic, CheckResult, RenderedFile
from scaffolder.registry import Registry

OPEN = ("pending", "open")


# ---- changes ------------------------------------------------------------------------------------


def _public(change: Change) -> dict[str, Any]:
    return {
        "id": change.id or 0, "number": change.number, "url": change.url,
        "template": change.template,
        "template_version": change.template_version, "action": change.action,
        "unit_key": change.unit_key, "title": change.title, "author": change.author,
        "team": change.team,
        "envs": change.envs, "tier": change.tier, "touches_envs": change.touches_envs,
        "routing": change.routing, "status": change.status,
        "checks": [CheckResult.model_validate(c) for c in change.checks],
        "checks_green": change.checks_green, "approved_by": change.approved_by,
        "base_sha": change.base_sha, "head_sha": change.head_sha, "merge_sha": change.merge_sha,
        "created_at": aware(change.created_at), "updated_at": aware(change.updated_at)}


def list_changes(session: Session, *, status: str | None = None, limit: int = 100
                 ) -> list[ChangePublic]:
    stmt = select(Change).order_by(col(Change.id).desc()).limit(max(1, min(limit, 500)))
    if status:
        stmt = stmt.where(Change.status == status)
    return [ChangePublic(**_public(c)) for c in session.exec(stmt).all()]


def open_changes(session: Session, *, entity: str | None = None, team: str | None = None,
                 limit: int = 20) -> list[ChangePublic]:
    """The open changes (pending or open pull requests) of one catalog entity, or of one team
    (what its decommission waits for, ``scaffolder.decommission``), newest first."""
    stmt = select(Change).where(col(Change.status).in_(OPEN))
    stmt = stmt.where(Change.entity == entity) if entity is not None else stmt
    stmt = stmt.where(Change.team == team) if team is not None else stmt
    rows = session.exec(stmt.order_by(col(Change.id).desc()).limit(limit)).all()
    return [ChangePublic(**_public(c)) for c in rows]


def change_numbers(session: Session, *, ids: Sequence[int]) -> dict[int, int | None]:
    """Change id → pull request number (None while it has none), for pages that link them."""
    wanted = sorted(set(ids))[:500]
    if not wanted:
        return {}
    return {i: n for i, n in session.exec(select(Change.id, Change.number).where(
        col(Change.id).in_(wanted))).all() if i is not None}


def list_one(session: Session, *, change_id: int) -> ChangePublic:
    """One change without its files and diff."""
    return ChangePublic(**_public(_change(session, change_id)))


def _change(session: Session, change_id: int) -> Change:
    change = session.get(Change, change_id)
    if change is None:
        raise NotFound(f"change {change_id} does not exist", field="change_id")
    return change


def get_change(session: Session, *, change_id: int) -> ChangeDetail:
    change = _change(session, change_id)
    return ChangeDetail(**_public(change),
                        files=[RenderedFile.model_validate(f) for f in change.files],
                        diff=change.diff, answers=change.answers)


def _local(forge: Forge) -> Review:
    review = forge.review()
    if review is None:
        raise BadRequest("this forge reviews and merges on its own site; use the pull request",
                         field="forge", rule="local-forge-only")
    return review


def _open_number(change: Change) -> int:
    if change.status != "open" or change.number is None:
        raise Conflict(f"change {change.id} is {change.status}, not open", field="change_id",
                       rule="state")
    return change.number


# ---- who may do what: one owner for the POSTs below and the buttons of the change page -------


def _tier(change: Change | ChangePublic) -> policy.Tier:
    """The change's tier; an unknown one is treated as prod (the strictest routing)."""
    return policy.Tier(change.tier) if change.tier in policy.Tier.__members__ \
        else policy.Tier.prod


def failing_checks(checks: Sequence[CheckResult | dict[str, Any]]) -> list[str]:
    """Names of the checks that do not pass (``capacity``, ``collisions``, …)."""
    return [c.name for c in map(CheckResult.model_validate, checks) if c.state != "success"]


def approve_decision(principal: Principal, change: Change | ChangePublic) -> policy.Decision:
    """``policy.can_approve`` for this change (the four-eyes rule and the tier's routing)."""
    return policy.can_approve(principal, author=change.author, team=change.team,
                              tier=_tier(change), touches_envs=change.touches_envs)


def merge_decision(principal: Principal, change: Change | ChangePublic, *,
                   approved_by: Sequence[str] | None = None) -> policy.Decision:
    """Checks first ("checks failing: capacity"), then ``policy.can_merge`` with the approvals
    on record (``approved_by``: the forge's, at merge time; the change row's otherwise)."""
    still = pr_checks.running(change.checks)
    if still:
        return policy.Decision(False, "checks still running: " + ", ".join(still))
    failing = failing_checks(change.checks)
    if failing:
        return policy.Decision(False, "checks failing: " + ", ".join(failing))
    return policy.can_merge(principal, author=change.author, team=change.team,
                            tier=_tier(change), touches_envs=change.touches_envs,
                            approved_by=change.approved_by if approved_by is None
                            else approved_by, checks_green=change.checks_green)


def close_decision(principal: Principal, change: Change | ChangePublic) -> policy.Decision:
    return policy.can_close(principal, author=change.author, team=change.team)


def action_decisions(principal: Principal, change: Change | ChangePublic
                     ) -> dict[str, policy.Decision]:
    """What ``principal`` may do with ``change`` now, with the reason when not: the rules
    :func:`approve_change`, :func:`merge_change` and :func:`close_change` apply (a page shows
    a refused action disabled with its reason). Approving twice is accepted by the POST (it
    changes nothing) and shown as refused here: "you already approved it"."""
    state = policy.Decision(False, f"the change is {change.status}, not open")
    is_open = change.status == "open" and change.number is not None
    approve = approve_decision(principal, change)
    if approve and principal.username in change.approved_by:
        approve = policy.Decision(False, "you already approved it")
    return {"approve": approve if is_open else state,
            "merge": merge_decision(principal, change) if is_open else state,
            "close": close_decision(principal, change) if change.status in OPEN else state}


def approve_change(session: Session, *, forge: Forge, principal: Principal, change_id: int,
                   ip: str = "", head_sha: str | None = None) -> ChangePublic:
    """Approve the change's PR on the local forge; ``head_sha`` is the head the reviewer saw
    (409 ``head-moved``, nothing recorded, when the PR moved on since: an update pushed while
    the page was open must be reviewed again)."""
    change = _change(session, change_id)
    number = _open_number(change)
    decision = approve_decision(principal, change)
    if not decision:
        audit.record(session, actor=principal.username, action="scaffolder.approve",
                     target=change.unit_key, outcome="denied", ip=ip,
                     detail={"change": change.id, "reason": decision.reason})
        raise Forbidden(decision.reason, rule="can-approve")
    session.commit()  # the forge writes through its own connection (see _run)
    try:
        _local(forge).approve(number, by=principal.username, head_sha=head_sha)
    except Conflict as exc:
        audit.record(session, actor=principal.username, action="scaffolder.approve",
                     target=change.unit_key, outcome="denied", ip=ip,
                     detail={"change": change.id, "reason": exc.message})
        raise
    change.approved_by = sorted({*change.approved_by, principal.username})
    change.updated_at = utcnow()
    session.add(change)
    if change.entity:
        catalog_service.record_timeline(session, entity=change.entity, event="pr.approved",
                                        actor=principal.username, detail={"change": change.id})
    audit.record(session, actor=principal.username, action="scaffolder.approve",
                 target=change.unit_key, ip=ip, detail={"change": change.id}, commit=False)
    session.commit()
    if change.action == promotion_gates.ACTION:  # the approval gate is met now
        promotion_review.refresh_approval(session, forge=forge, change=change)
    return ChangePublic(**_public(change))


def _identity_at_merge(forge: Forge, number: int, platform_groups: Sequence[str]) -> None:
    """The identity boundary again, on the files the change would bring to main now (a team
    file may have been edited on the branch after the request was checked)."""
    head = forge.get_change(number).head_sha
    paths = [p for p in forge.changed_paths(forge.head(), head)
             if p.startswith(("teams/", "tenants/"))]
    check_identity({p: forge.read_file(p, head) for p in paths}, platform_groups=platform_groups)


def merge_change(session: Session, *, forge: Forge, registry: Registry, principal: Principal,
                 change_id: int, ip: str = "") -> ChangePublic:
    """Merge when approved and every check passes — the main-dependent ones (collisions,
    capacity, policies, CODEOWNERS) evaluated again on current main + the change, while the
    change's environments and names are locked (``scaffolder.merge_gate``); then re-check the
    open changes that touch the same environments or names. A check that no longer passes is
    stored, shown on the change and refused with a 409 naming it (and a team's decommission
    re-checks that team's open changes: red on ``team``); ``GroupRuleError`` (422) when
    a team file names a group it may not (nothing merged)."""
    change = _change(session, change_id)
    number = _open_number(change)
    local = _local(forge)
    still = pr_checks.running(change.checks)
    if still:  # not re-checked now: the results would overtake the ones being computed
        reason = "checks still running: " + ", ".join(still) + "; merge once they are green"
        audit.record(session, actor=principal.username, action="scaffolder.merge",
                     target=change.unit_key, outcome="denied", ip=ip,
                     detail={"change": change.id, "reason": reason})
        raise Conflict(reason, field="checks", rule="checks-pending")
    engine = session.get_bind()
    assert isinstance(engine, Engine)
    session.commit()
    with merge_lock.hold(engine, merge_gate.scopes(change), holder=f"change-{change.id}"):
        gates: list[CheckResult] = []
        if change.action == promotion_gates.ACTION:  # the source's health now, the approvals
            gates = promotion_review.refresh(session, forge=forge, settings=registry.settings,
                                             change=change)
        fresh = gates + merge_gate.recheck_change(session, forge=forge, change=change,
                                                  code_owners=registry.code_owners)
        approvals = local.approvals(number)
        decision = merge_decision(principal, change, approved_by=approvals)
        failing = [c for c in fresh if c.state != "success"]
        if failing or not decision:
            reason = ("checks failing with current main: " + "; ".join(
                f"{c.name}: {c.summary} ({'; '.join(c.details[:5])})" for c in failing)
                if failing else decision.reason)
            audit.record(session, actor=principal.username, action="scaffolder.merge",
                         target=change.unit_key, outcome="denied", ip=ip,
                         detail={"change": change.id, "reason": reason[:1000]})
            if failing:
                raise Conflict(reason, field="checks", rule="merge-recheck")
            if not change.checks_green or not [a for a in approvals if a != change.author]:
                raise Conflict(decision.reason, field="change_id", rule="mergeable")
            raise Forbidden(decision.reason, rule="can-merge")
        session.commit()
        try:
            _identity_at_merge(forge, number, registry.platform_groups)
            event = local.merge(number, by=principal.username)
        except CaasError as exc:
            audit.record(session, actor=principal.username, action="scaffolder.merge",
                         target=change.unit_key, outcome="failed", ip=ip,
                         detail={"change": change.id, "reason": exc.message})
            raise
        change.status, change.open_unit_key, change.merge_sha = "merged", None, event.commit
        tracing.set_attributes(change_number=number, commit=event.commit)  # the request's span
        change.updated_at = utcnow()
        session.add(change)
        if change.entity:
            catalog_service.record_timeline(session, entity=change.entity, event="pr.merged",
                                            actor=principal.username,
                                            detail={"change": change.id, "commit": event.commit})
            catalog_service.set_status(session, entity=change.entity, status="merged")
        audit.record(session, actor=principal.username, action="scaffolder.merge",
                     target=change.unit_key, ip=ip,
                     detail={"change": change.id, "commit": event.commit}, commit=False)
        session.commit()
    reconciler_service.record_merge_event(session, event=event)
    merge_gate.recheck_open_changes(session, forge=forge, code_owners=registry.code_owners,
                                    envs=change.envs, units=[change.unit_key],
                                    teams=merge_gate.gone_teams(forge, [change.unit_key]))
    return ChangePublic(**_public(change))


def close_change(session: Session, *, forge: Forge, registry: Registry, principal: Principal,
                 change_id: int, ip: str = "") -> ChangePublic:
    """Close an open change (its author or a reviewer of its team): the PR closes, the unit's
    reservation is released, and the open changes that touch its environments or generate one
    of its names are re-checked (``merge_gate``): a collision with it, which only a closed or
    merged change ends, no longer holds them red."""
    change = _change(session, change_id)
    if change.status not in OPEN:
        raise Conflict(f"change {change.id} is {change.status}, not open", field="change_id",
                       rule="state")
    decision = close_decision(principal, change)
    if not decision:
        raise Forbidden(decision.reason, rule="can-close")
    if change.number is not None:
        session.commit()
        forge.close_change(change.number, by=principal.username)
    change.status, change.open_unit_key = "closed", None
    change.updated_at = utcnow()
    session.add(change)
    if change.entity:
        catalog_service.record_timeline(session, entity=change.entity, event="pr.closed",
                                        actor=principal.username, detail={"change": change.id})
        catalog_service.set_status(session, entity=change.entity, status="closed")
    audit.record(session, actor=principal.username, action="scaffolder.close",
                 target=change.unit_key, ip=ip, detail={"change": change.id}, commit=False)
    session.commit()
    closed = ChangePublic(**_public(change))
    merge_gate.recheck_open_changes(session, forge=forge, code_owners=registry.code_owners,
                                    envs=change.envs, units=[change.unit_key])
    return closed


def record_pr_event(session: Session, *, event: MergeEvent | PullRequestEvent) -> str:
    """Keep a change in step with what its forge reports (GitHub webhooks, the poller):
    merged → ``merged`` (the unit key is released, the catalog says merged), closed unmerged →
    ``closed``, a new head → new ``head_sha``. Unknown PR numbers are ignored."""
    number = event.change_number if isinstance(event, MergeEvent) else event.number
    if not number:
        return "no change number"
    change = session.exec(select(Change).where(Change.number == number,
                                               col(Change.status).in_(OPEN))).first()
    if change is None:
        return "not a scaffolder change"
    actor = (event.merged_by if isinstance(event, MergeEvent) else event.sender) or "forge"
    if isinstance(event, MergeEvent) or event.merged:
        change.status, change.open_unit_key = "merged", None
        change.merge_sha = event.commit if isinstance(event, MergeEvent) else None
        outcome, status = "pr.merged", "merged"
    elif event.action == "closed":
        change.status, change.open_unit_key = "closed", None
        outcome, status = "pr.closed", "closed"
    else:
        if event.head_sha:
            change.head_sha = event.head_sha
        change.updated_at = utcnow()
        session.add(change)
        session.commit()
        return "head updated"
    change.updated_at = utcnow()
    session.add(change)
    if change.entity:
        catalog_service.record_timeline(session, entity=change.entity, event=outcome,
                                        actor=actor[:100], detail={"change": change.id})
        catalog_service.set_status(session, entity=change.entity, status=status)
    audit.record(session, actor=actor, action=f"scaffolder.{status}", target=change.unit_key,
                 detail={"change": change.id, "source": "forge"}, commit=False)
    session.commit()
    return outcome


def closed_on_forge(session: Session, *, forge: Forge,
                    code_owners: tuple[str | None, Sequence[str]],
                    event: PullRequestEvent) -> str | None:
    """A pull request closed without merging on the forge's own site (GitHub's ``closed``
    delivery, ``merged: false``): its open change is closed (``record_pr_event``: the unit's
    reservation released, the catalog says closed) once the forge confirms the PR is closed
    (a late delivery of a reopened PR changes nothing), and the open changes that touch its
    environments or names are re-checked, as when it is closed in the portal. None when the
    PR is no open change's."""
    change = session.exec(select(Change).where(Change.number == event.number,
                                               col(Change.status).in_(OPEN))).first()
    if change is None or forge.get_change(event.number).state is not ChangeState.closed:
        return None
    envs, unit = list(change.envs), change.unit_key
    outcome = record_pr_event(session, event=event)
    merge_gate.recheck_open_changes(session, forge=forge, code_owners=code_owners, envs=envs,
                                    units=[unit])
    return outcome


def main_moved(session: Session, *, forge: Forge, code_owners: tuple[str | None, Sequence[str]],
               event: MergeEvent) -> list[int]:
    """``main`` moved on the forge (a GitHub merge or push): the change it merged is recorded
    as merged, and every open change touching an environment or a unit name that the new
    commits touch, and every open change of a team whose decommission they merged, is
    re-checked (``merge_gate``), its ``caas/*`` statuses updated on the PR (commit statuses on
    GitHub). Returns the ids of the re-checked changes."""
    try:
        changed = forge.changed_paths(event.before, event.commit) if event.before else []
    except CaasError:  # a PR's base commit the forge no longer has: the change row suffices
        changed = []
    envs, units = set(touched_envs(changed, {})), set(object_names.units_in(changed))
    if event.change_number:
        # A merged pull request event carries no "before": the change row says what it touched.
        merged = session.exec(select(Change).where(Change.number == event.change_number)).first()
        if merged is not None:
            envs |= set(merged.envs)
            units.add(merged.unit_key)
        record_pr_event(session, event=event)
    return merge_gate.recheck_open_changes(session, forge=forge, code_owners=code_owners,
                                           envs=sorted(envs), units=sorted(units),
                                           teams=merge_gate.gone_teams(forge, units))
