"""The drift page: findings across git, the catalog, the cluster and Keycloak, filtered by
kind, side, team and entity, each with the fix it offers as a button; and when each side was
last checked (or why it could not be)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from catalog.drift import service as drift_service
from catalog.drift.models import Side
from catalog.models import Kind
from frontend.catalog_pages import entity_url
from frontend.pages import render
from portal.deps import AdminDep, PrincipalDep, SessionDep, SettingsDep, client_ip
from portal.errors import CaasError, NotFound
from portal.params import PathId
from scaffolder.deps import ForgeDep, RegistryDep

router = APIRouter(include_in_schema=False)
Filter = Annotated[str, Query(max_length=300)]


def _page(request: Request, session: SessionDep, *, kind: str, side: str, team: str,
          entity: str, error: CaasError | None = None, done: str = "") -> Response:
    filters = {k: v for k, v in (("kind", kind), ("side", side), ("team", team),
                                 ("entity", entity)) if v}
    report = drift_service.report(session, kind=kind or None, side=side or None,
                                  team=team or None, entity=entity or None)
    return render(request, "drift.html", title="Drift", report=report, filters=filters,
                  kinds=[k.value for k in Kind], sides=[s.value for s in Side],
                  urls={f.entity: entity_url(f.entity) for f in report.findings},
                  query=urlencode(filters), error=error, done=done,
                  status=error.status if error else 200)


@router.get("/drift")
def drift_page(request: Request, principal: PrincipalDep, session: SessionDep,
               kind: Filter = "", side: Filter = "", team: Filter = "", entity: Filter = "",
               done: Annotated[str, Query(max_length=300)] = "") -> Response:
    return _page(request, session, kind=kind, side=side, team=team, entity=entity, done=done)


@router.post("/drift/run")
def run_drift(request: Request, admin: AdminDep, session: SessionDep, settings: SettingsDep,
              forge: ForgeDep, registry: RegistryDep) -> Response:
    """Start a run in the background (platform-admins; the worker also runs it periodically);
    the page then says it is running until its results replace the previous ones."""
    run = drift_service.request_run(session, settings=settings, forge=forge, registry=registry,
                                    requested_by=admin.username)
    note = (f"run {run.id} was already running: refresh to see its results" if run.joined
            else f"run {run.id} started: refresh to see its results")
    return RedirectResponse("/drift?" + urlencode({"done": note}), status_code=303)


@router.post("/drift/findings/{finding_id}/fix")
def fix_finding(request: Request, finding_id: PathId, principal: PrincipalDep,
                session: SessionDep, settings: SettingsDep, forge: ForgeDep,
                registry: RegistryDep, back: Annotated[str, Query(max_length=600)] = ""
                ) -> Response:
    try:
        result = drift_service.fix(session, settings=settings, forge=forge, registry=registry,
                                   principal=principal, finding_id=finding_id,
                                   ip=client_ip(request))
    except CaasError as exc:
        if isinstance(exc, NotFound):
            raise
        session.rollback()
        return _page(request, session, kind="", side="", team="", entity="", error=exc)
    target = "/drift?" + urlencode({"done": result.message[:300]})
    if result.change_id is not None:
        target = f"/changes/{result.change_id}"
    return RedirectResponse(target, status_code=303)
