"""Promotion on the application page: the matrix (per environment: source, chart or path,
revision, images, sync policy, since when and by which PR, live sync and health) and the
"Promote" form, whose POST opens the promotion PR and follows its task page."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session

from gitops.forges.base import Forge
from portal.deps import PrincipalDep, SessionDep, SettingsDep, client_ip
from portal.errors import NotFound
from portal.settings import Settings
from scaffolder import promotion, promotion_matrix
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
