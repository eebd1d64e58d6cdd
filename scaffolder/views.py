"""Scaffolder API: templates, dry runs, tasks (with an SSE step stream) and change review."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Query, Request
from sqlmodel import Session
from sse_starlette.sse import EventSourceResponse

from portal.deps import EngineDep, PrincipalDep, SessionDep, client_ip
from portal.errors import error_responses
from portal.params import LastEventId, PathId
from scaffolder import review, service, tasks
from scaffolder.deps import ForgeDep, RegistryDep
from scaffolder.models import (
    ApproveRequest,
    ChangeDetail,
    ChangePublic,
    DecommissionRequest,
    DryRunResult,
    ScaffoldRequest,
    TaskPublic,
    TemplateDetail,
    TemplateSummary,
    UnitAnswers,
)
from scaffolder.units import unit_answers

ERRORS = error_responses(400, 401, 403, 404, 409, 413, 422)
router = APIRouter(prefix="/api", tags=["scaffolder"], responses=ERRORS)
# A repository folder as units have them (segments never empty, never starting with "."):
# what ``gitops.paths.is_safe`` accepts, narrowed so the schema states it.
UNIT_FOLDER = r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*(?:/[A-Za-z0-9_-][A-Za-z0-9_.-]*)*$"
ChangeStatus = Literal["pending", "open", "merged", "closed", "failed"]
POLL_S = 0.2


@router.get("/templates", response_model=list[TemplateSummary])
def list_templates(_principal: PrincipalDep, registry: RegistryDep) -> list[TemplateSummary]:
    """Every template of the registry with its version (the git tree id of its folder)."""
    return service.list_templates(registry=registry)


@router.get("/templates/{name}", response_model=TemplateDetail)
def get_template(name: str, principal: PrincipalDep, registry: RegistryDep,
                 forge: ForgeDep) -> TemplateDetail:
    """The template's JSON Schema parameters and the caller's dynamic choices."""
    return service.get_template(registry=registry, forge=forge, principal=principal, name=name)


@router.get("/scaffolder/units", response_model=UnitAnswers)
def get_unit(unit: Annotated[str, Query(max_length=300, pattern=UNIT_FOLDER,
                                        description="The unit's folder.")],
             _principal: PrincipalDep, registry: RegistryDep, forge: ForgeDep) -> UnitAnswers:
    """A unit on main: its template, stored answers and identifying fields; change it by
    sending these answers (edited) with ``update: true`` to the dry run or a task."""
    return unit_answers(forge=forge, registry=registry, unit=unit)


@router.post("/scaffolder/decommission", response_model=TaskPublic, status_code=201)
def decommission(body: DecommissionRequest, request: Request, principal: PrincipalDep,
                 session: SessionDep, registry: RegistryDep, forge: ForgeDep) -> TaskPublic:
    """Open the PR that deletes the unit's files and updates the lists naming it (AppProject
    destinations, CODEOWNERS). 409 naming the dependants while a team still has namespaces or
    applications, or a namespace applications; 400 for an environment (`installed: false`)."""
    return service.decommission_task(session, registry=registry, forge=forge,
                                     principal=principal, unit=body.unit,
                                     ip=client_ip(request))


@router.post("/scaffolder/dry-run", response_model=DryRunResult)
def dry_run(body: ScaffoldRequest, principal: PrincipalDep, session: SessionDep,
            registry: RegistryDep, forge: ForgeDep) -> DryRunResult:
    """Rendered files, the diff against main and the check results; touches no git ref."""
    return service.dry_run(session, registry=registry, forge=forge, principal=principal,
                           request=body)


@router.post("/scaffolder/tasks", response_model=TaskPublic, status_code=201)
def create_task(body: ScaffoldRequest, request: Request, principal: PrincipalDep,
                session: SessionDep, registry: RegistryDep, forge: ForgeDep) -> TaskPublic:
    """Render, check and open the pull request. 409 when the unit exists (without `update`)
    or another open change already requests it."""
    return service.create_task(session, registry=registry, forge=forge, principal=principal,
                               request=body, ip=client_ip(request))


@router.get("/scaffolder/tasks/{task_id}", response_model=TaskPublic)
def get_task(task_id: PathId, principal: PrincipalDep, session: SessionDep) -> TaskPublic:
    return service.get_task(session, principal=principal, task_id=task_id)


@router.post("/scaffolder/tasks/{task_id}/retry", response_model=TaskPublic)
def retry_task(task_id: PathId, request: Request, principal: PrincipalDep, session: SessionDep,
               registry: RegistryDep, forge: ForgeDep) -> TaskPublic:
    """Run a failed task again (same branch: an already opened PR is reused, never doubled)."""
    return service.retry_task(session, registry=registry, forge=forge, principal=principal,
                              task_id=task_id, ip=client_ip(request))


@router.get("/scaffolder/tasks/{task_id}/events", response_class=EventSourceResponse,
            responses={200: {"content": {"text/event-stream": {}},
                             "description": "The task's step log as Server-Sent Events."}})
async def task_events(task_id: PathId, principal: PrincipalDep, session: SessionDep,
                      engine: EngineDep,
                      last_event_id: LastEventId = 0) -> EventSourceResponse:
    """Streams each step event (`event: step`), then `event: end` with the final status."""
    service.get_task(session, principal=principal, task_id=task_id)  # 404 for others' tasks
    session.close()

    async def stream() -> AsyncIterator[dict[str, str]]:
        after = last_event_id
        while True:
            with Session(engine, expire_on_commit=False) as s:
                found = tasks.events(s, task_id, after_id=after)
                status = tasks.get(s, task_id).status
            for event in found:
                after = event.id
                yield {"event": "step", "id": str(event.id), "data": event.model_dump_json()}
            if status in tasks.TERMINAL:
                yield {"event": "end", "data": json.dumps({"status": status})}
                return
            await asyncio.sleep(POLL_S)

    return EventSourceResponse(stream())


@router.get("/changes", response_model=list[ChangePublic])
def list_changes(_principal: PrincipalDep, session: SessionDep,
                 status: ChangeStatus | None = None,
                 limit: Annotated[int, Query(ge=1, le=500)] = 100) -> list[ChangePublic]:
    return review.list_changes(session, status=status, limit=limit)


@router.get("/changes/{change_id}", response_model=ChangeDetail)
def get_change(change_id: PathId, _principal: PrincipalDep, session: SessionDep) -> ChangeDetail:
    """The change set: files, diff, checks, approval routing and status."""
    return review.get_change(session, change_id=change_id)


@router.post("/changes/{change_id}/approve", response_model=ChangePublic)
def approve(change_id: PathId, request: Request, principal: PrincipalDep, session: SessionDep,
            forge: ForgeDep, body: Annotated[ApproveRequest | None, Body()] = None
            ) -> ChangePublic:
    """Local forge: approve (never your own change; routing by tier); with ``head_sha``, only
    the head the reviewer saw (409 ``head-moved`` when the PR moved on)."""
    return review.approve_change(session, forge=forge, principal=principal,
                                  change_id=change_id, ip=client_ip(request),
                                  head_sha=body.head_sha if body else None)


@router.post("/changes/{change_id}/merge", response_model=ChangePublic)
def merge(change_id: PathId, request: Request, principal: PrincipalDep, session: SessionDep,
          forge: ForgeDep, registry: RegistryDep) -> ChangePublic:
    """Local forge: merge when approved and every check passes on current main (the
    main-dependent ones re-evaluated, merges per environment serialised); 409 otherwise."""
    return review.merge_change(session, forge=forge, registry=registry, principal=principal,
                               change_id=change_id, ip=client_ip(request))


@router.post("/changes/{change_id}/close", response_model=ChangePublic)
def close(change_id: PathId, request: Request, principal: PrincipalDep, session: SessionDep,
          forge: ForgeDep, registry: RegistryDep) -> ChangePublic:
    return review.close_change(session, forge=forge, registry=registry, principal=principal,
                               change_id=change_id, ip=client_ip(request))


