"""HTTP: jobs (list, detail, log as Server-Sent Events, retry), merges, environment status,
and the GitHub webhook that turns pushes and merged pull requests into merge events."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import Engine
from sqlmodel import Session
from sse_starlette.sse import EventSourceResponse

from gitops.forges.github_webhook import verify_signature
from gitops.names import DNS_LABEL_PATTERN
from portal.deps import AdminDep, EngineDep, PrincipalDep, SessionDep, SettingsDep, client_ip
from portal.errors import BadRequest, Unauthenticated, Unavailable, error_responses
from portal.params import CursorId, LastEventId, PathId
from reconciler import service, webhooks
from reconciler.models import (
    TERMINAL,
    EnvironmentStatus,
    JobDetail,
    JobKind,
    JobList,
    JobLogPublic,
    JobPublic,
    JobState,
    MergePublic,
)
from scaffolder.deps import ForgeDep

log = logging.getLogger("caas.reconciler.http")
router = APIRouter(tags=["reconciler"], responses=error_responses(401, 404, 422))
SSE: dict[int | str, dict[str, Any]] = {200: {"content": {"text/event-stream": {}},
             "description": "The job's log as Server-Sent Events."}}
STREAM_POLL_S = 0.3


@router.get("/api/reconciler/jobs", response_model=JobList)
def list_jobs(
    session: SessionDep, _principal: PrincipalDep,
    state: Annotated[JobState | None, Query(description="Only jobs in this state.")] = None,
    commit: Annotated[str | None, Query(max_length=64, description="Commit id prefix")] = None,
    environment: Annotated[str | None, Query(max_length=100)] = None,
    kind: Annotated[JobKind | None, Query(description="Only jobs of this kind.")] = None,
    before_id: CursorId = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> JobList:
    """Jobs, newest first."""
    return service.list_jobs(session, state=state.value if state else None, commit=commit,
                             environment=environment, kind=kind.value if kind else None,
                             before_id=before_id, limit=limit)


@router.get("/api/reconciler/jobs/{job_id}", response_model=JobDetail)
def get_job(job_id: PathId, session: SessionDep, _principal: PrincipalDep) -> JobDetail:
    """One job with its whole log."""
    return service.job_detail(session, job_id=job_id)


@router.get("/api/reconciler/jobs/{job_id}/events", response_class=EventSourceResponse,
            responses=SSE)
async def job_events(
    job_id: PathId, request: Request, engine: EngineDep, session: SessionDep,
    _principal: PrincipalDep,
    last_event_id: LastEventId = 0,
) -> EventSourceResponse:
    """The job's log as Server-Sent Events: `log` events, then one `end` event with the final
    state once the job has finished. Reconnecting with `Last-Event-ID` resumes after that
    line."""
    service.get_job(session, job_id=job_id)  # 404 before the stream starts
    session.close()
    return EventSourceResponse(_stream(request, engine, job_id, last_event_id))


def _read(engine: Engine, job_id: PathId, after: int) -> tuple[list[JobLogPublic], JobPublic]:
    with Session(engine) as session:
        return (service.job_logs(session, job_id=job_id, after_id=after),
                service.job_public(service.get_job(session, job_id=job_id)))


async def _stream(request: Request, engine: Engine, job_id: PathId,
                  after: int) -> AsyncIterator[dict[str, Any]]:
    while True:
        lines, job = await run_in_threadpool(_read, engine, job_id, after)
        for line in lines:
            after = line.id
            yield {"event": "log", "id": str(line.id), "data": line.model_dump_json()}
        if JobState(job.state) in TERMINAL:
            yield {"event": "end", "data": json.dumps({"state": job.state,
                                                       "message": job.message})}
            return
        if await request.is_disconnected():
            return
        await asyncio.sleep(STREAM_POLL_S)


@router.post("/api/reconciler/jobs/{job_id}/retry", response_model=JobPublic,
             responses=error_responses(403, 409))
def retry_job(job_id: PathId, request: Request, session: SessionDep,
              principal: AdminDep) -> JobPublic:
    """Queue a failed or dead job again (platform-admin)."""
    return service.retry_job(session, job_id=job_id, principal=principal, ip=client_ip(request))


@router.get("/api/reconciler/merges", response_model=list[MergePublic])
def list_merges(session: SessionDep, _principal: PrincipalDep,
                limit: Annotated[int, Query(ge=1, le=500)] = 50) -> list[MergePublic]:
    """Commits that landed on main, newest first, and what became of them."""
    return service.list_merges(session, limit=limit)


@router.get("/api/reconciler/environments/{environment}", response_model=EnvironmentStatus)
def environment_status(environment: Annotated[str, Path(pattern=f"^{DNS_LABEL_PATTERN}$")],
                       session: SessionDep,
                       _principal: PrincipalDep) -> EnvironmentStatus:
    """Units of an environment: last job, last plan, last apply, non-sensitive outputs."""
    return service.environment_status(session, environment=environment)


@router.post("/api/webhooks/github", status_code=202,
             responses=error_responses(400, 409, 413, 503))
async def github_webhook(
    request: Request, session: SessionDep, settings: SettingsDep, forge: ForgeDep,
    x_github_event: Annotated[str, Header(max_length=64)] = "",
    x_hub_signature_256: Annotated[str | None, Header()] = None,
    x_github_delivery: Annotated[str, Header(max_length=64, description="GitHub's id of the "
                                             "delivery; a repeated id is not handled again")
                                 ] = "",
) -> dict[str, str]:
    """GitHub deliveries signed with `X-Hub-Signature-256`; what each does is the README's
    "GitHub webhooks" table (`status` says which row applied)."""
    secret = settings.github_webhook_secret
    if secret is None or not secret.get_secret_value():
        raise Unavailable("GitHub webhooks are not configured (CAAS_GITHUB_WEBHOOK_SECRET)")
    body = await request.body()
    if not verify_signature(secret.get_secret_value(), body, x_hub_signature_256):
        log.warning("webhook with a bad signature refused", extra={"ip": client_ip(request)})
        raise Unauthenticated("X-Hub-Signature-256 does not match the payload",
                              field="X-Hub-Signature-256", rule="signature")
    try:
        payload = json.loads(body)
    except ValueError as exc:
        raise BadRequest("body is not JSON", field="body", rule="json") from exc
    if not isinstance(payload, dict):
        raise BadRequest("body must be a JSON object", field="body", rule="type")
    if not x_github_delivery:
        raise BadRequest("X-GitHub-Delivery is missing", field="X-GitHub-Delivery",
                         rule="required")
    outcome = await run_in_threadpool(
        lambda: webhooks.handle_delivery(
            session, forge=forge, delivery_id=x_github_delivery, event_name=x_github_event,
            payload=payload, repository=settings.github_repo, main_branch=settings.main_branch,
            after_merge=getattr(request.app.state, "after_merge", None),
            on_pull_request=getattr(request.app.state, "on_pull_request", None)))
    return {"status": outcome}


@router.post("/api/reconciler/previews/{change_number}/allow", status_code=202,
             responses=error_responses(403, 503))
def allow_preview(change_number: Annotated[int, Path(ge=1, le=2**31 - 1)], request: Request,
                  session: SessionDep, forge: ForgeDep, principal: AdminDep) -> dict[str, str]:
    """Allow (platform-admin, audited) a Terraform plan preview of the pull request's current
    head commit, which the portal does not plan on its own (a fork or a branch it did not
    create); the preview is queued. A later push needs a new allowance."""
    head = webhooks.allow_preview(session, forge=forge, change_number=change_number,
                                  principal=principal, ip=client_ip(request))
    return {"status": "plan preview queued", "head_sha": head}
