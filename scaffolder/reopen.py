"""A pull request reopened on the forge's own site (GitHub's ``reopened`` delivery): its closed
change opens again, as a new reservation, and is checked again before anything can merge it.

- ``reopened_on_forge(session, *, forge, code_owners, event) -> str | None``: for a
  ``PullRequestEvent`` whose PR belongs to a change the portal closed (``review.closed_on_forge``
  or ``review.close_change``), once ``forge.get_change`` confirms the PR is open again:

  1. the change is ``open`` again with ``reservation`` one past every change's place in the
     reservation order (``merge_gate.reservation_order``): a change reserved while it was
     closed is earlier and wins the unit (``merge_gate.open_units``). It takes the unit's
     ``open_unit_key`` back only when no other open change holds it; otherwise it stays open
     without it, and its ``collisions`` name the unit ("already requested by another open
     change"). The PR's current head becomes the change's; audited (``scaffolder.reopened``,
     the delivery's sender), on the entity's timeline (``pr.reopened``), catalog
     ``requested``;
  2. every stored check is set back to ``pending`` on that head in one ``Forge.set_checks``
     (its old green ``caas/*`` statuses no longer let GitHub merge it: required checks);
  3. the checks run as for a PR update: the ``pr_checks`` job of the head
     (``reconciler.service.request_pr_checks``: manifests, kustomize, policies, capacity)
     and, now, the main-dependent checks on current main (``merge_gate.recheck_change``:
     collisions, capacity, policies, CODEOWNERS — main may have moved while it was closed).

  Returns ``"pr.reopened"``; None — nothing written — when the PR is no change's, its change
  is not ``closed`` (already open again: a redelivered or repeated ``reopened``; merged), or
  the forge says the PR is not open (a late delivery of a PR closed again since). Two
  deliveries racing: the conditional UPDATE lets exactly one reopen it.

The local forge reviews inside the portal and has no reopen: a change closed there stays closed.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from catalog import service as catalog_service
from gitops.forges.base import ChangeState, Forge
from gitops.forges.github_webhook import PullRequestEvent
from portal.auth import audit
from portal.db import utcnow
from reconciler import service as reconciler_service
from scaffolder import merge_gate, pr_checks
from scaffolder.models import Change, CheckResult

SUMMARY = "the pull request was reopened: checked again"


def reopened_on_forge(session: Session, *, forge: Forge,
                      code_owners: tuple[str | None, Sequence[str]],
                      event: PullRequestEvent) -> str | None:
    change = session.exec(select(Change).where(col(Change.number) == event.number)
                          .order_by(col(Change.id).desc())).first()
    if change is None or change.status != "closed" or change.id is None:
        return None
    session.commit()  # the forge may read through its own connection
    info = forge.get_change(event.number)
    if info.state is not ChangeState.open:
        return None
    if not _reserve_anew(session, change.id, unit=change.unit_key):
        return None  # another delivery reopened it first
    session.refresh(change)
    pending = [CheckResult.model_validate({**c, "state": pr_checks.PENDING, "summary": SUMMARY,
                                           "details": []}) for c in change.checks]
    change.head_sha, change.checks_green = info.head_sha, False
    change.checks = [c.model_dump() for c in pending]
    change.updated_at = utcnow()
    session.add(change)
    actor = (event.sender or "forge")[:100]
    if change.entity:
        catalog_service.record_timeline(session, entity=change.entity, event="pr.reopened",
                                        actor=actor, detail={"change": change.id})
        catalog_service.set_status(session, entity=change.entity, status="requested")
    audit.record(session, actor=actor, action="scaffolder.reopened", target=change.unit_key,
                 detail={"change": change.id, "source": "forge", "head": info.head_sha,
                         "holds_unit": change.open_unit_key is not None}, commit=False)
    session.commit()
    forge.set_checks(event.number, [c.as_status() for c in pending])
    reconciler_service.request_pr_checks(session, change_number=event.number,
                                         head_sha=info.head_sha)
    merge_gate.recheck_change(session, forge=forge, change=change, code_owners=code_owners)
    return "pr.reopened"


def _reserve_anew(session: Session, change_id: int, *, unit: str) -> bool:
    """``closed`` → ``open`` with a new place in the reservation order, holding the unit when
    nobody else does; False when the change was not closed any more (commits)."""
    every = aliased(Change)  # not correlated with the row being updated
    place = sa.select(sa.func.max(merge_gate.reservation_order(every)) + 1).scalar_subquery()
    for holds in (True, False):
        values = {"status": "open", "reservation": place,
                  "open_unit_key": unit if holds else None}
        try:
            with session.begin_nested():
                done = session.connection().execute(sa.update(Change).where(
                    col(Change.id) == change_id, col(Change.status) == "closed"
                ).values(**values)).rowcount
        except IntegrityError:  # a newer open change holds the unit: it keeps it
            continue
        session.commit()
        return bool(done)
    return False
