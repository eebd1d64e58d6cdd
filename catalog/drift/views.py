"""Drift API: the stored findings (filtered), a run of the checks, and a finding's fix.

Any signed-in user reads; a platform-admin starts a run (it reads all of main and every
connected system), which runs in the background (202 with the run; one at a time); a fix is
authorized per fix (``catalog.drift.service.fix``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict
from pydantic import Field as PField

from catalog import service as catalog_service
from catalog.drift import service
from catalog.drift.models import DriftReport, FixResult, RunPublic, Side
from catalog.models import Kind
from portal.deps import AdminDep, PrincipalDep, SessionDep, SettingsDep, client_ip
from portal.errors import error_responses
from portal.params import PathId
from scaffolder.deps import ForgeDep, RegistryDep

router = APIRouter(prefix="/api/drift", tags=["drift"], responses=error_responses(401, 422))

KindQ = Annotated[Kind | None, Query(description="Only findings on entities of this kind.")]
SideQ = Annotated[Side | None, Query(description="Only findings of this side.")]
TeamQ = Annotated[str | None, Query(max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
                                    description="Only findings of this team.")]
EntityQ = Annotated[str | None, Query(max_length=300, pattern=catalog_service.ENTITY_KEY_PATTERN,
                                      description="One entity's findings "
                                      "(`namespace:<team>/<ns>`, …).")]


class RunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sides: list[Side] | None = PField(None, max_length=4, description="Sides to check "
                                      "(default: all four).")


@router.get("", response_model=DriftReport)
def list_drift(principal: PrincipalDep, session: SessionDep, kind: KindQ = None,
               side: SideQ = None, team: TeamQ = None, entity: EntityQ = None) -> DriftReport:
    """What the last drift runs found, and when each side was last checked."""
    del principal  # any signed-in user reads
    return service.report(session, kind=kind.value if kind else None,
                          side=side.value if side else None, team=team, entity=entity)


@router.post("/run", response_model=RunPublic, status_code=202,
             responses=error_responses(400, 403, 413))
def run_drift(body: RunRequest, response: Response, admin: AdminDep, session: SessionDep,
              settings: SettingsDep, registry: RegistryDep, forge: ForgeDep) -> RunPublic:
    """Start a drift run and return at once (202) with its id; the findings replace the
    previous run's when it ends (`GET /api/drift/runs/{id}`, then `GET /api/drift`). At most
    one run goes at a time: while one runs, this returns that run (`joined: true`)."""
    run = service.request_run(session, settings=settings, forge=forge, registry=registry,
                              requested_by=admin.username,
                              sides=[s.value for s in body.sides] if body.sides else None)
    response.headers["Location"] = f"/api/drift/runs/{run.id}"
    return run


@router.get("/runs/{run_id}", response_model=RunPublic, responses=error_responses(404))
def get_run(run_id: PathId, principal: PrincipalDep, session: SessionDep) -> RunPublic:
    """A drift run: `running`, then `succeeded` (how many findings) or `failed` (why)."""
    del principal  # any signed-in user reads
    return service.get_run(session, run_id)


@router.post("/findings/{finding_id}/fix", response_model=FixResult,
             responses=error_responses(403, 404, 409, 503))
def fix_finding(finding_id: PathId, request: Request, principal: PrincipalDep,
                session: SessionDep, settings: SettingsDep, registry: RegistryDep,
                forge: ForgeDep) -> FixResult:
    """Apply the fix the finding offers: a re-render PR, an ArgoCD sync, a Keycloak sync or a
    reindex."""
    return service.fix(session, settings=settings, forge=forge, registry=registry,
                       principal=principal, finding_id=finding_id, ip=client_ip(request))
