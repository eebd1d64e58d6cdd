"""Promotion on the application page: the matrix (per environment: source, chart or path,
revision, images, sync policy, since when and by which PR, live sync and health) and the
"Promote" form, whose POST opens the promotion PR and follows its task page; on a promotion's
change page, "Re-check gates" and "Override source-health" (with its reason), whose refusals
show the change page with the reason."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session

from frontend.change_pages import act_on_change
from gitops.forges.base import Forge
from portal.deps import PrincipalDep, SessionDep, SettingsDep, client_ip
from portal.errors import NotFound
from portal.params import PathId
from portal.settings import Settings
from scaffolder import (
    promotion,
    promotion_gates,
    promotion_matrix,
    promotion_review,
    promotion_tenant,
)
from scaffolder.deps import ForgeDep, RegistryDep

router = APIRouter(include_in_schema=False)


def promotion_context(session: Session, settings: Settings, forge: Forge, team: str,
                      app: str) -> dict[str, Any]:
    """``promotion``: the matrix of the application, or None when it is not on main."""
    try:
        found = promotion_matrix.matrix(session, forge=forge, settings=settings, team=team,
                                        app=app)
    except NotFound:
        return {"promotion": None}
    session.commit()
    return {"promotion": found}


@router.post("/catalog/applications/{team}/{app}/promote")
async def promote(request: Request, team: str, app: str, principal: PrincipalDep,
                  session: SessionDep, registry: RegistryDep, forge: ForgeDep,
                  settings: SettingsDep) -> Response:
    """"Promote" on the application page; a refusal is the error page naming the field."""
    form = await request.form()
    source, target = str(form.get("from") or "")[:63], str(form.get("to") or "")[:63]
    task = promotion.promote(session, registry=registry, forge=forge, settings=settings,
                             principal=principal, team=team[:63], app=app[:63], source=source,
                             target=target, ip=client_ip(request))
    return RedirectResponse(f"/tasks/{task.id}", status_code=303)


@router.post("/catalog/namespaces/{team}/{namespace}/promote")
async def promote_tenant(request: Request, team: str, namespace: str, principal: PrincipalDep,
                         session: SessionDep, registry: RegistryDep, forge: ForgeDep,
                         settings: SettingsDep) -> Response:
    """"Promote quota" on the namespace page; a refusal is the error page naming the field."""
    form = await request.form()
    source, target = str(form.get("from") or "")[:63], str(form.get("to") or "")[:63]
    task = promotion_tenant.promote(session, registry=registry, forge=forge,
                                    settings=settings, principal=principal, team=team[:63],
                                    namespace=namespace[:63], source=source, target=target,
                                    ip=client_ip(request))
    return RedirectResponse(f"/tasks/{task.id}", status_code=303)


@router.post("/changes/{change_id}/promotion/gates")
def recheck_gates(request: Request, change_id: PathId, principal: PrincipalDep,
                  session: SessionDep, forge: ForgeDep, settings: SettingsDep) -> Response:
    """"Re-check gates": ``promotion_review.refresh_by_id``, then the change page."""
    return act_on_change(request, session, forge, principal, change_id, done="gates",
                         act=lambda: promotion_review.refresh_by_id(
                             session, forge=forge, settings=settings, principal=principal,
                             change_id=change_id))


@router.post("/changes/{change_id}/promotion/override")
async def override_gate(request: Request, change_id: PathId, principal: PrincipalDep,
                        session: SessionDep, forge: ForgeDep, settings: SettingsDep
                        ) -> Response:
    """"Override source-health" with the reason typed beside it (``promotion_review.override``,
    audited either way); a refusal shows the change page naming the field."""
    form = await request.form()
    reason = str(form.get("reason") or "")[:2000]
    gate = str(form.get("gate") or promotion_gates.HEALTH)[:63]
    return act_on_change(request, session, forge, principal, change_id, done="override",
                         act=lambda: promotion_review.override(
                             session, forge=forge, settings=settings, principal=principal,
                             change_id=change_id, gate=gate, reason=reason,
                             ip=client_ip(request)))
