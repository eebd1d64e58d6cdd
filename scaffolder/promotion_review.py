"""A promotion's gates after it opened: evaluated again on current data, and overridden.

- ``refresh(session, *, forge, settings, change)`` — every gate of ``scaffolder.promotion_gates``
  for the promotion ``change`` with the approvals on record now, the overrides it carries and
  the current main; stored on the change (``checks``, ``checks_green``) and reported to the forge
  as ``caas/<gate>``. ``scaffolder.review.merge_change`` calls it before its own re-check, so a
  merge is judged on the source's health at that moment; the API and the page call it on demand
  (on GitHub, where merges happen on the pull request);
- ``override(…)`` — a platform-admin passes the ``source-health`` gate with a reason (at least
  ``MIN_REASON`` characters); the reason stays on the change and in the audit log
  (``scaffolder.promote.override``). Anyone else: 403, audited as denied;
- ``gate_decisions(principal, change)`` — whether "Re-check gates" and "Override
  source-health" are allowed now, with the reason when not: the rules ``refresh_by_id`` and
  ``override`` apply (the change page shows a refused button disabled with that reason).
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, select

from gitops import app_overlays
from gitops.forges.base import ApprovalReader, Forge
from portal.auth import audit, policy
from portal.auth import service as auth_service
from portal.auth.principal import Principal
from portal.db import utcnow
from portal.errors import Conflict, Forbidden, NotFound, ValidationFailed
from portal.settings import Settings
from scaffolder import merge_gate, promotion_gates
from scaffolder.models import Change, ChangePublic, CheckResult

ACTION = promotion_gates.ACTION
MIN_REASON = 10


def _record(change: Change) -> dict[str, Any]:
    record = change.answers.get("promotion") if change.action == ACTION else None
    if not isinstance(record, dict):
        raise NotFound(f"change {change.id} is not a promotion", field="change_id",
                       rule="promotion")
    return record


def subject_of(forge: Forge, change: Change) -> promotion_gates.Subject:
    """What the gates judge, read back from the change and the file at its head."""
    record = _record(change)
    if record.get("kind") == promotion_gates.TENANT:
        return promotion_gates.tenant_subject(record, tier=policy.Tier(change.tier),
                                              author=change.author)
    team, app, target = str(record["team"]), str(record["app"]), str(record["to"])
    content = forge.read_file(app_overlays.overlay_path(team, app, target),
                              change.head_sha or "main") if change.head_sha else None
    doc = app_overlays.read(content) if content else {}
    return promotion_gates.Subject(
        team=team, app=app, source=str(record["from"]), target=target,
        tier=policy.Tier(change.tier), source_legacy=bool(record.get("legacy_source")),
        target_doc=doc, author=change.author, source_pr=_number(record.get("source_pr")))


def _number(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _while_open(change: Change | ChangePublic) -> policy.Decision:
    if change.status != "open":
        return policy.Decision(False, f"the change is {change.status}, not open")
    return policy.ALLOW


def recheck_decision(principal: Principal, change: Change | ChangePublic) -> policy.Decision:
    """Anyone signed in may ask for the gates again while the promotion is open (it reads)."""
    del principal
    return _while_open(change)


def override_decision(principal: Principal, change: Change | ChangePublic) -> policy.Decision:
    """Only a platform-admin overrides a gate, and only while the promotion is open."""
    if not principal.is_platform_admin:
        return policy.Decision(False, "only a platform-admin overrides a promotion gate")
    return _while_open(change)


def gate_decisions(principal: Principal, change: Change | ChangePublic
                   ) -> dict[str, policy.Decision]:
    """``{"gates": …, "override": …}`` for a promotion (see the module doc)."""
    return {"gates": recheck_decision(principal, change),
            "override": override_decision(principal, change)}


def _approvals(session: Session, forge: Forge, change: Change) -> list[str]:
    """Approvals on record: the local forge's (each passed ``can_approve`` when given); on a
    forge where reviews happen on its site (GitHub), the logins whose latest review approves
    that are portal users allowed to approve this change now (``policy.can_approve``, as
    ``review.approve_decision``: the four-eyes rule and the tier's routing) — a review by
    anyone else does not count."""
    review = forge.review()
    if review is not None and change.number is not None:
        return review.approvals(change.number)
    approved = list(change.approved_by)
    if isinstance(forge, ApprovalReader) and change.number is not None:
        for login in forge.approvals(change.number):
            try:
                user = auth_service.get_user(session, username=login)
            except NotFound:
                continue
            if not user.is_active:
                continue
            principal = auth_service.principal_for(session, user, via="forge-review")
            if policy.can_approve(principal, author=change.author, team=change.team,
                                  tier=policy.Tier(change.tier),
                                  touches_envs=change.touches_envs):
                approved.append(login)
    return sorted(set(approved))


def refresh(session: Session, *, forge: Forge, settings: Settings,
            change: Change) -> list[CheckResult]:
    """Evaluate the gates again and store them on the change (see the module doc)."""
    overrides = change.answers.get("overrides")
    fresh = promotion_gates.evaluate(
        settings, forge, subject_of(forge, change), sha=forge.head(),
        approvals=_approvals(session, forge, change),
        overrides=overrides if isinstance(overrides, dict) else {})
    return _store(session, forge=forge, change=change, fresh=fresh)


def refresh_approval(session: Session, *, forge: Forge, change: Change) -> list[CheckResult]:
    """Only the ``approval`` gate (after an approval; it needs neither cluster nor policies)."""
    fresh = [promotion_gates.approval(subject_of(forge, change),
                                      _approvals(session, forge, change))]
    return _store(session, forge=forge, change=change, fresh=fresh)


def _store(session: Session, *, forge: Forge, change: Change,
           fresh: list[CheckResult]) -> list[CheckResult]:
    return merge_gate.store_checks(session, forge=forge, change=change, fresh=fresh)


def _change(session: Session, change_id: int) -> Change:
    change = session.get(Change, change_id)
    if change is None:
        raise NotFound(f"change {change_id} does not exist", field="change_id")
    return change


def refresh_by_id(session: Session, *, forge: Forge, settings: Settings, principal: Principal,
                  change_id: int) -> Change:
    """``refresh`` for the API: any signed-in user may ask (it only reads)."""
    change = _change(session, change_id)
    _record(change)
    decision = recheck_decision(principal, change)
    if not decision:
        raise Conflict(f"change {change_id}: {decision.reason}", field="change_id",
                       rule="state")
    refresh(session, forge=forge, settings=settings, change=change)
    return change


def refresh_for_pull_request(session: Session, *, forge: Forge, settings: Settings,
                             number: int) -> str | None:
    """After a review or new commits on PR ``number`` (a forge webhook): ``refresh`` when it is
    an open promotion; None (nothing done) for any other pull request."""
    change = session.exec(select(Change).where(Change.number == number,
                                               Change.status == "open",
                                               Change.action == ACTION)).first()
    if change is None:
        return None
    gates = refresh(session, forge=forge, settings=settings, change=change)
    states = ", ".join(f"{g.name} {g.state}" for g in gates
                       if g.name in promotion_gates.GATES)
    return f"promotion gates evaluated: {states}"[:200]


def override(session: Session, *, forge: Forge, settings: Settings, principal: Principal,
             change_id: int, gate: str, reason: str, ip: str = "") -> Change:
    """A platform-admin overrides ``gate`` (only ``source-health``) with ``reason``."""
    change = _change(session, change_id)
    _record(change)
    if gate not in promotion_gates.OVERRIDABLE:
        raise ValidationFailed(f"gate: only {', '.join(sorted(promotion_gates.OVERRIDABLE))} "
                               "may be overridden", field="gate", rule="overridable")
    reason = reason.strip()
    if len(reason) < MIN_REASON:
        raise ValidationFailed(f"reason: say why in at least {MIN_REASON} characters",
                               field="reason", rule="min-length")
    decision = override_decision(principal, change)
    if not principal.is_platform_admin:
        audit.record(session, actor=principal.username, action="scaffolder.promote.override",
                     target=change.unit_key, outcome="denied", ip=ip,
                     detail={"change": change.id, "gate": gate, "reason": reason[:500]})
        raise Forbidden(decision.reason, rule="admin")
    if not decision:
        raise Conflict(f"change {change_id}: {decision.reason}", field="change_id",
                       rule="state")
    overrides = dict(change.answers.get("overrides") or {})
    overrides[gate] = {"by": principal.username, "reason": reason[:500],
                       "at": utcnow().isoformat()}
    change.answers = {**change.answers, "overrides": overrides}
    audit.record(session, actor=principal.username, action="scaffolder.promote.override",
                 target=change.unit_key, ip=ip,
                 detail={"change": change.id, "gate": gate, "reason": reason[:500]},
                 commit=False)
    refresh(session, forge=forge, settings=settings, change=change)
    return change
