"""GitHub webhook deliveries: what each one does (the README's "GitHub webhooks" table).

Public contract:

- ``handle_delivery(session, *, forge, delivery_id, event_name, payload, repository,
  main_branch, after_merge=None) -> str``: the outcome of one verified delivery (the 202 body's
  ``status``). ``after_merge(session, forge, event)`` runs once a merge into main is recorded
  (the shell passes the scaffolder's re-check of the open changes that main moving affects); its
  failure is logged and does not undo the recorded merge. ``on_pull_request(session, forge,
  event) -> str | None`` runs once a pull request event in ``GATE_ACTIONS`` (a review given,
  edited or dismissed; new commits; reopened) is recorded (the shell passes the re-evaluation of
  a promotion's gates); what it returns is added to the outcome, and its failure is logged.
  Raises ``ValidationFailed`` (422, field ``after``) for a push to main whose ``after`` is not
  reachable from main — audited, nothing queued; ``Unavailable`` when the forge cannot answer
  (nothing recorded, so a redelivery is handled afresh).
- ``allow_preview(session, *, forge, change_number, principal, ip) -> str``: a platform-admin
  allows the plan preview of a pull request's current head commit that the portal refused to
  preview (fork or foreign branch); audited; the preview is queued. Returns the head commit.

Rows of the table, in order: a repeated ``X-GitHub-Delivery`` → "duplicate delivery" (nothing
done again); a delivery about another repository than ``CAAS_GITHUB_REPO`` → ignored, audited
once; a push to main → recorded if ``after`` is reachable from main, else 422; pushes to other
branches, tags and deleted branches → ignored (not audited); a merged pull request into main →
recorded; opened/synchronize/reopened/ready_for_review → a plan preview if the head is a branch
of the repository that the portal created, else no plan and the reason as a comment on the
pull request (Atlantis refuses fork PRs by default for the same reason: ``terraform plan`` runs
code from the change — an ``external`` data source, a provider of a new module — with the
portal's cloud credentials), unless a platform-admin allowed that head commit; ping and every
other event → ignored.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, or_, select

from gitops.forges.base import ChangeState, Forge, MergeEvent
from gitops.forges.github_webhook import PullRequestEvent, parse_event
from portal.auth import audit
from portal.auth.principal import Principal
from portal.errors import CaasError, Unavailable, ValidationFailed
from reconciler import service
from reconciler.webhook_models import PreviewAllowance, WebhookDelivery
from scaffolder.models import Change

log = logging.getLogger("caas.reconciler.webhooks")
_SHA = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")  # SHA-1 or SHA-256 object names
ACTOR = "github-webhook"
PREVIEW_KEY = "plan-preview"


def _claim(session: Session, delivery_id: str, event_name: str) -> WebhookDelivery | None:
    """Insert the delivery's row; None when that id was handled before."""
    row = WebhookDelivery(delivery_id=delivery_id[:64], event=event_name[:64])
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        return None
    return row


AfterMerge = Callable[[Session, Forge, MergeEvent], object]
OnPullRequest = Callable[[Session, Forge, PullRequestEvent], "str | None"]
# Pull request events after which a promotion's gates are evaluated again: a review (the
# approval gate), new commits (the overlay the policies judge), a reopened PR.
GATE_ACTIONS = frozenset({"review_submitted", "review_edited", "review_dismissed",
                          "synchronize", "reopened"})
# ... and a PR closed without merging (a merged one is a MergeEvent): its change is closed and
# the open changes it held red re-checked. The hook (``on_pull_request``) is told both; on
# ``reopened`` it also reopens a closed change, checked again (``scaffolder.reopen``).
HOOK_ACTIONS = GATE_ACTIONS | {"closed"}


def handle_delivery(session: Session, *, forge: Forge, delivery_id: str, event_name: str,
                    payload: dict[str, Any], repository: str | None,
                    main_branch: str, after_merge: AfterMerge | None = None,
                    on_pull_request: OnPullRequest | None = None) -> str:
    row = _claim(session, delivery_id, event_name)
    if row is None:
        session.rollback()
        return "duplicate delivery"
    try:
        outcome = _outcome(session, forge=forge, row=row, event_name=event_name,
                           payload=payload, repository=repository, main_branch=main_branch)
    except ValidationFailed as exc:
        row.outcome = f"refused: {exc.message}"[:200]
        session.add(row)
        session.commit()  # the refusal is kept (audit + delivery); nothing was queued
        raise
    except Exception:
        session.rollback()  # the delivery is not marked handled: a redelivery tries again
        raise
    row.outcome = outcome[:200]
    session.add(row)
    session.commit()
    if after_merge is not None and outcome == "merge recorded":
        event = parse_event(event_name, payload, main_branch)
        if isinstance(event, MergeEvent):
            try:
                after_merge(session, forge, event)
            except Exception:  # the merge is recorded; a later delivery or merge re-checks
                session.rollback()
                log.exception("re-checking open changes after %s failed", event.commit)
    if on_pull_request is not None and not outcome.startswith("ignored: another"):
        event = parse_event(event_name, payload, main_branch)
        if (isinstance(event, PullRequestEvent) and event.action in HOOK_ACTIONS
                and event.number > 0):
            try:
                said = on_pull_request(session, forge, event)
            except Exception:  # the delivery is recorded; "Re-check gates" or a merge re-checks
                session.rollback()
                log.exception("re-evaluating the gates of #%s failed", event.number)
            else:
                if said:
                    outcome = said if outcome == "ignored" else f"{outcome}; {said}"
    return outcome


def _outcome(session: Session, *, forge: Forge, row: WebhookDelivery, event_name: str,
             payload: dict[str, Any], repository: str | None, main_branch: str) -> str:
    named = _named_repository(payload)
    if named is not None and (repository is None or named.lower() != repository.lower()):
        audit.record(session, actor=ACTOR, action="reconciler.webhook.ignored", target=named,
                     outcome="denied", commit=False, detail={
                         "event": event_name, "delivery": row.delivery_id,
                         "reason": "another repository"})
        return "ignored: another repository"
    event = parse_event(event_name, payload, main_branch)
    if isinstance(event, MergeEvent):
        if not _SHA.fullmatch(event.commit):  # never hand the forge (git) anything else
            raise ValidationFailed("the commit id is not a hexadecimal object name",
                                   field="after" if event.change_number is None
                                   else "pull_request.merge_commit_sha", rule="pattern")
        if event.change_number is None and not forge.is_ancestor(event.commit, main_branch):
            reason = f"{event.commit} is not reachable from {main_branch}"
            audit.record(session, actor=ACTOR, action="reconciler.merge.refused",
                         target=event.commit, outcome="denied", commit=False,
                         detail={"reason": reason, "delivery": row.delivery_id})
            raise ValidationFailed(f"push refused: {reason}", field="after",
                                   rule="reachable-from-main")
        service.record_merge_event(session, event=event)
        return "merge recorded"
    if (isinstance(event, PullRequestEvent) and event.action in service.PREVIEW_ACTIONS
            and event.head_sha and event.number > 0):
        if event.action == "synchronize" and _refusal(session, event) is None and \
                session.exec(select(Change.id).where(Change.number == event.number)).first():
            # A push to a portal PR's branch: the checks of its new head (the portal queues
            # those of the head it opened itself).
            service.request_pr_checks(session, change_number=event.number,
                                      head_sha=event.head_sha)
        return _preview(session, forge=forge, event=event)
    return "ignored"


def _named_repository(payload: dict[str, Any]) -> str | None:
    repository = payload.get("repository")
    if isinstance(repository, dict):
        name = repository.get("full_name")
        return str(name) if name else ""
    return None


def _refusal(session: Session, event: PullRequestEvent) -> str | None:
    """Why the portal will not plan this pull request on its own; None when it will."""
    if event.from_fork:
        return (f"the pull request comes from a fork ({event.head_repo or 'a deleted fork'})")
    # The change row exists (with its branch) before the PR does, and gets the PR's number
    # only once opening finished: GitHub's "opened" may arrive in between.
    portal_branch = session.exec(select(Change.id).where(
        Change.branch == event.head_branch,
        or_(col(Change.number) == event.number, col(Change.number).is_(None)))).first()
    if portal_branch is None:
        return f"the branch {event.head_branch!r} was not created by the portal"
    return None


def _allowed(session: Session, number: int, head_sha: str) -> bool:
    return session.exec(select(PreviewAllowance.id).where(
        PreviewAllowance.change_number == number,
        PreviewAllowance.head_sha == head_sha)).first() is not None


def _preview(session: Session, *, forge: Forge, event: PullRequestEvent) -> str:
    reason = _refusal(session, event)
    if reason is None or _allowed(session, event.number, event.head_sha):
        service.request_plan_preview(session, change_number=event.number,
                                     head_sha=event.head_sha)
        return "plan preview queued"
    text = (f"**No Terraform plan preview** for {event.head_sha[:12]}: {reason}. A plan runs "
            "code from the change with the portal's cloud credentials, so the portal plans only "
            "branches it created itself. A platform-admin may allow a preview of this commit "
            f"(`POST /api/reconciler/previews/{event.number}/allow`).")
    # The forge may write through its own connection (the local forge's PR tables): end our
    # transaction first — the delivery row is kept either way.
    session.commit()
    try:
        forge.comment(event.number, text, key=PREVIEW_KEY)
    except (CaasError, OSError) as exc:  # the refusal stands; only its explanation is late
        log.warning("could not comment on #%s: %s", event.number, exc)
    return f"no plan: {reason}"


def allow_preview(session: Session, *, forge: Forge, change_number: int, principal: Principal,
                  ip: str = "") -> str:
    info = forge.get_change(change_number)
    if info.state is not ChangeState.open:
        raise ValidationFailed(f"change #{change_number} is {info.state.value}; only open "
                               "changes are previewed", field="change_number", rule="open")
    if not _allowed(session, change_number, info.head_sha):
        session.add(PreviewAllowance(change_number=change_number, head_sha=info.head_sha,
                                     allowed_by=principal.username[:100]))
        audit.record(session, actor=principal.username, action="reconciler.preview.allowed",
                     target=f"#{change_number}", ip=ip, commit=False,
                     detail={"head_sha": info.head_sha})
    try:
        service.request_plan_preview(session, change_number=change_number,
                                     head_sha=info.head_sha)
    except IntegrityError as exc:  # two admins at once: one allowance, one preview
        session.rollback()
        raise Unavailable("the preview was allowed concurrently; reload") from exc
    return info.head_sha
