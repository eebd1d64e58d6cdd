"""Changes: the list, and the change page with its diff, checks, plan summary and the
approve / merge / close actions of the local forge (the policy's reason shown when it blocks)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session

from catalog.models import Kind
from catalog.search import page_path
from frontend.highlight import split_diff
from frontend.pages import render
from frontend.services import ForgeDep, RegistryDep
from gitops.forges.base import Forge
from gitops.layout import key_for_unit
from portal.auth.principal import Principal
from portal.deps import PrincipalDep, SessionDep, client_ip
from portal.errors import CaasError, NotFound
from portal.params import PathId
from reconciler.previews import UnitPlanPreview, latest_plan_preview
from scaffolder import promotion_review
from scaffolder import review as scaffolder_review
from scaffolder.models import HEAD_SHA, ChangeDetail, ChangePublic

router = APIRouter(include_in_schema=False)

DONE = {"approve": "Approved.", "merge": "Merged: the reconciler takes it from here.",
        "close": "Closed without merging.", "gates": "Gates evaluated again.",
        "override": "source-health overridden; the reason is in the audit log."}
VIEWS = ("open", "mine", "review", "merged", "closed", "all")


@dataclass(frozen=True)
class ActionView:
    name: str
    label: str
    style: str
    allowed: bool
    reason: str


def can_approve(principal: Principal, change: ChangePublic) -> bool:
    return scaffolder_review.approve_decision(principal, change).allowed


def _actions(principal: Principal, change: ChangeDetail) -> list[ActionView]:
    """The buttons, each disabled with its reason when the POST would refuse it (the review
    service's own rules: ``scaffolder.review.action_decisions``)."""
    decisions = scaffolder_review.action_decisions(principal, change)
    return [ActionView(name, label, style, decisions[name].allowed, decisions[name].reason)
            for name, label, style in (("approve", "Approve", "primary"),
                                       ("merge", "Merge", "primary"),
                                       ("close", "Close", "danger"))]


def _gate_actions(principal: Principal, change: ChangeDetail) -> list[ActionView]:
    """A promotion's "Re-check gates" and "Override source-health", each disabled with its
    reason when the POST would refuse it (``scaffolder.promotion_review.gate_decisions``)."""
    if change.action != promotion_review.ACTION:
        return []
    decisions = promotion_review.gate_decisions(principal, change)
    return [ActionView(name, label, style, decisions[name].allowed, decisions[name].reason)
            for name, label, style in (("gates", "Re-check gates", ""),
                                       ("override", "Override source-health", "danger"))]


def _plan(session: Session, change: ChangeDetail) -> tuple[str, list[UnitPlanPreview]]:
    """The latest Terraform plan preview of this PR (changes under ``envs/``): the preview
    job's state and, per environment/unit, add/change/destroy with the resources."""
    if not change.touches_envs or change.number is None:
        return "", []
    preview = latest_plan_preview(session, change_number=change.number)
    if preview is None:
        return "not started", []
    return preview.state, preview.units


def _forge_checks(forge: Forge, change: ChangeDetail) -> list[dict[str, str]]:
    """Checks other parts set on the PR (the reconciler's ``terraform-plan``); the
    scaffolder's own, mirrored as ``caas/<name>``, are already on the page."""
    if change.number is None:
        return []
    try:
        info = forge.get_change(change.number)
    except CaasError:
        return []
    return [{"name": c.name, "state": c.state.value, "summary": c.description}
            for c in info.checks if not c.name.startswith("caas/")]


def _entity_link(unit_key: str) -> str | None:
    entity = key_for_unit(unit_key)
    kind, _, name = entity.partition(":")
    if not name or kind not in {k.value for k in Kind}:
        return None
    return page_path(entity)


def render_change_page(request: Request, session: Session, forge: Forge, principal: Principal,
                 change_id: int, *, error: CaasError | None = None,
                 flash: str | None = None) -> Response:
    change = scaffolder_review.get_change(session, change_id=change_id)
    local = forge.kind == "local"
    plan_state, plan = _plan(session, change)
    return render(
        request, "change.html", status=error.status if error else 200,
        title=f"Change #{change.number or change.id}", change=change,
        files=split_diff(change.diff), actions=_actions(principal, change),
        gate_actions=_gate_actions(principal, change),
        local_forge=local, external_url=change.url if not local and change.url else None,
        plan_state=plan_state, plan=plan, forge_checks=_forge_checks(forge, change),
        entity_link=_entity_link(change.unit_key),
        error=error.message if error else None, flash=flash)


@router.get("/changes")
def changes_page(request: Request, principal: PrincipalDep, session: SessionDep,
                 view: Annotated[str, Query(pattern="^(open|mine|review|merged|closed|all)$")]
                 = "open") -> Response:
    status = {"open": "open", "review": "open", "merged": "merged", "closed": "closed"}.get(view)
    changes = scaffolder_review.list_changes(session, status=status, limit=200)
    if view == "mine":
        changes = [c for c in changes if c.author == principal.username]
    elif view == "review":
        changes = [c for c in changes
                   if c.author != principal.username and can_approve(principal, c)]
    return render(request, "changes.html", title="Changes", changes=changes, view=view,
                  views=VIEWS)


@router.get("/changes/{change_id}")
def change_page(request: Request, change_id: PathId, principal: PrincipalDep, session: SessionDep,
                forge: ForgeDep,
                done: Annotated[str, Query(pattern="^(|approve|merge|close|gates|override)$")]
                = "") -> Response:
    return render_change_page(request, session, forge, principal, change_id,
                        flash=DONE.get(done))


@router.post("/changes/{change_id}/{action}")
def change_action(request: Request, change_id: PathId, action: str, principal: PrincipalDep,
                  session: SessionDep, forge: ForgeDep, registry: RegistryDep,
                  head_sha: Annotated[str | None, Form(pattern=HEAD_SHA)] = None) -> Response:
    """Approve (the head the page showed: ``head_sha``), merge or close."""
    handlers: dict[str, Callable[..., ChangePublic]] = {
        "approve": partial(scaffolder_review.approve_change, head_sha=head_sha),
        "merge": partial(scaffolder_review.merge_change, registry=registry),
        "close": partial(scaffolder_review.close_change, registry=registry)}
    handler = handlers.get(action)
    if handler is None:
        raise NotFound(f"no action {action[:20]!r} on a change", field="action")
    return act_on_change(request, session, forge, principal, change_id, done=action,
                         act=lambda: handler(session, forge=forge, principal=principal,
                                             change_id=change_id, ip=client_ip(request)))


def act_on_change(request: Request, session: Session, forge: Forge, principal: Principal,
                  change_id: int, *, done: str, act: Callable[[], object]) -> Response:
    """Run one of the change page's actions: success redirects to the page with ``done``'s
    flash (303); a refusal (any ``CaasError`` but ``NotFound``, which stays a 404) rolls back
    and shows the change page naming the field and the rule."""
    try:
        act()
    except CaasError as exc:
        if isinstance(exc, NotFound):
            raise
        session.rollback()
        return render_change_page(request, session, forge, principal, change_id, error=exc)
    return RedirectResponse(f"/changes/{change_id}?done={done}", status_code=303)
