"""The reconciler's service layer: record merges, queue previews, read and retry jobs.

Merges arrive from the local forge, GitHub webhooks and the poller; each is recorded once per
commit with a ``plan`` job. The worker runs that job: it verifies the commit is on main (or
refuses it, visibly) and plans the real jobs. Keeping the forge out of this function lets every
caller hand over just a session and the event.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from gitops.forges.base import MergeEvent
from gitops.names import is_dns_label
from portal.auth import audit
from portal.auth.principal import Principal
from portal.db import aware, utcnow
from portal.errors import Conflict, NotFound, ValidationFailed
from portal.settings import Settings
from reconciler import queue, wakeup
from reconciler.models import (
    TERMINAL,
    EnvironmentStatus,
    EnvLock,
    Job,
    JobDetail,
    JobKind,
    JobList,
    JobLog,
    JobLogPublic,
    JobPublic,
    JobState,
    MergePublic,
    MergeRecord,
    MergeState,
    UnitApply,
    UnitStatus,
)
from reconciler.previews import preview_unit
from reconciler.units import UNIT_ORDER

if TYPE_CHECKING:
    from collections.abc import Iterable

    from gitops.forges.base import Forge
    from reconciler.identity_drift import GroupDrift
    from reconciler.keycloak import SyncReport

_SHA = re.compile(r"^[0-9a-f]{7,64}$")
ACTOR = "reconciler"


def _check_sha(value: str, field: str) -> None:
    if not _SHA.match(value):
        raise ValidationFailed(f"{field} must be a hexadecimal commit id", field=field,
                               rule="pattern")


# ---- merge events -------------------------------------------------------------------------------


def record_merge_event(session: Session, *, event: MergeEvent) -> None:
    """Record a commit that landed on main and queue its planning. Idempotent per commit."""
    _check_sha(event.commit, "commit")
    if event.before is not None:
        _check_sha(event.before, "before")
    if session.exec(select(MergeRecord.id).where(MergeRecord.commit == event.commit)).first():
        return
    record = MergeRecord(commit=event.commit, before=event.before,
                         change_number=event.change_number, merged_by=event.merged_by or "",
                         source=event.source[:16])
    try:
        with session.begin_nested():
            session.add(record)
    except IntegrityError:  # the same commit recorded concurrently (webhook + poller)
        return
    queue.enqueue(session, commit=event.commit, change_number=event.change_number, jobs=[
        queue.NewJob(unit="plan", kind=JobKind.plan.value, payload={"before": event.before})])
    audit.record(session, actor=event.merged_by or ACTOR, action="reconciler.merge",
                 target=event.commit, detail={"source": event.source,
                                              "change": event.change_number}, commit=False)
    session.commit()
    wakeup.notify()


def request_plan_preview(session: Session, *, change_number: int, head_sha: str) -> None:
    """Queue a Terraform plan preview for an open PR's head (plan only, never apply)."""
    _check_sha(head_sha, "head_sha")
    if change_number < 1:
        raise ValidationFailed("change_number must be positive", field="change_number",
                               rule="minimum")
    queue.enqueue(session, commit=head_sha, change_number=change_number, jobs=[
        queue.NewJob(unit=preview_unit(change_number), kind=JobKind.plan_preview.value,
                     payload={"change": change_number})])
    session.commit()
    wakeup.notify()


def pr_checks_unit(change_number: int) -> str:
    """The job unit of a change's checks after its PR opened (one job per head commit)."""
    return f"pr-checks#{change_number}"


def request_pr_checks(session: Session, *, change_number: int, head_sha: str) -> None:
    """Queue the checks an open PR reports after it opened (``scaffolder.pr_checks``), keyed
    (head commit, ``pr-checks#<number>``): asking twice for one head queues one job, a new
    head gets its own; a head whose job has ended has it run again (a retried request stored
    them pending again). Commits, and wakes in-process workers."""
    _check_sha(head_sha, "head_sha")
    if change_number < 1:
        raise ValidationFailed("change_number must be positive", field="change_number",
                               rule="minimum")
    unit = pr_checks_unit(change_number)
    ended = session.exec(select(Job).where(Job.commit == head_sha, Job.unit == unit,
                                           col(Job.state).in_(sorted(TERMINAL)))).first()
    if ended is not None:  # asked again (a retried request marked them pending): run again
        queue.requeue(session, job=ended)
    queue.enqueue(session, commit=head_sha, change_number=change_number, jobs=[
        queue.NewJob(unit=unit, kind=JobKind.pr_checks.value,
                     payload={"change": change_number})])
    session.commit()
    wakeup.notify()


def refuse_merge(session: Session, *, commit: str, reason: str) -> None:
    """A commit that is not on main: nothing will run for it (caller commits)."""
    record = session.exec(select(MergeRecord).where(MergeRecord.commit == commit)).first()
    if record is not None:
        record.state, record.reason, record.finished_at = MergeState.refused.value, reason, utcnow()
        session.add(record)
    audit.record(session, actor=ACTOR, action="reconciler.merge.refused", target=commit,
                 outcome="denied", detail={"reason": reason}, commit=False)


def mark_planned(session: Session, *, commit: str, paths: list[str],
                 entities: list[str]) -> None:
    """A ``recorded`` merge becomes ``planned`` with its paths and entities (one UPDATE; a
    merge in any other state is left alone). Caller commits."""
    session.execute(update(MergeRecord).where(
        col(MergeRecord.commit) == commit, col(MergeRecord.state) == MergeState.recorded.value)
        .values(state=MergeState.planned.value, paths=paths, entities=entities)
        .execution_options(synchronize_session=False))


# ---- reading ------------------------------------------------------------------------------------


def job_public(job: Job) -> JobPublic:
    # Attribute access (not model_dump) so an expired instance reloads itself.
    data: dict[str, Any] = {name: getattr(job, name) for name in JobPublic.model_fields}
    for key in ("not_before", "lease_expires_at", "created_at", "started_at", "finished_at"):
        if data.get(key) is not None:
            data[key] = aware(data[key])
    return JobPublic.model_validate(data)


def list_jobs(session: Session, *, state: str | None = None, commit: str | None = None,
              environment: str | None = None, kind: str | None = None,
              before_id: int | None = None, limit: int = 50) -> JobList:
    if state is not None and state not in {s.value for s in JobState}:
        raise ValidationFailed(f"state must be one of {', '.join(s.value for s in JobState)}",
                               field="state", rule="enum")
    if kind is not None and kind not in {k.value for k in JobKind}:
        raise ValidationFailed(f"kind must be one of {', '.join(k.value for k in JobKind)}",
                               field="kind", rule="enum")
    if not 1 <= limit <= 500:
        raise ValidationFailed("limit must be between 1 and 500", field="limit", rule="range")
    stmt = select(Job)
    if state:
        stmt = stmt.where(Job.state == state)
    if commit:
        stmt = stmt.where(col(Job.commit).startswith(commit))
    if environment:
        stmt = stmt.where(Job.environment == environment)
    if kind:
        stmt = stmt.where(Job.kind == kind)
    if before_id:
        stmt = stmt.where(col(Job.id) < before_id)
    rows = session.exec(stmt.order_by(col(Job.id).desc()).limit(limit + 1)).all()
    items = [job_public(j) for j in rows[:limit]]
    return JobList(items=items, next_before_id=items[-1].id if len(rows) > limit else None)


def get_job(session: Session, *, job_id: int) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise NotFound(f"job {job_id} does not exist", field="job_id")
    return job


def job_logs(session: Session, *, job_id: int, after_id: int = 0) -> list[JobLogPublic]:
    rows = session.exec(select(JobLog).where(JobLog.job_id == job_id, col(JobLog.id) > after_id)
                        .order_by(col(JobLog.id))).all()
    return [JobLogPublic(id=r.id or 0, at=aware(r.at), level=r.level, message=r.message)
            for r in rows]


def job_detail(session: Session, *, job_id: int) -> JobDetail:
    job = get_job(session, job_id=job_id)
    return JobDetail(**job_public(job).model_dump(), log=job_logs(session, job_id=job_id))


def list_merges(session: Session, *, limit: int = 50) -> list[MergePublic]:
    rows = session.exec(select(MergeRecord).order_by(col(MergeRecord.id).desc())
                        .limit(max(1, min(limit, 500)))).all()
    return [MergePublic.model_validate({
        **r.model_dump(), "id": r.id or 0, "created_at": aware(r.created_at),
        "finished_at": aware(r.finished_at) if r.finished_at else None}) for r in rows]


def retry_job(session: Session, *, job_id: int, principal: Principal, ip: str = "") -> JobPublic:
    """Put a failed or dead job back in the queue (with the units it held back)."""
    job = get_job(session, job_id=job_id)
    if job.state not in (JobState.failed.value, JobState.dead.value):
        raise Conflict(f"job {job_id} is {job.state}; only failed or dead jobs can be retried",
                       field="state", rule="retryable")
    queue.requeue(session, job=job)
    pending = [job.unit]
    while pending:  # units that failed only because this one did
        unit = pending.pop()
        for held in session.exec(select(Job).where(
                Job.commit == job.commit, Job.depends_on == unit,
                Job.state == JobState.failed.value)).all():
            queue.requeue(session, job=held)
            pending.append(held.unit)
    record = session.exec(select(MergeRecord).where(MergeRecord.commit == job.commit)).first()
    if record is not None and record.state == MergeState.failed.value:
        # A retried plan job has not planned anything yet; any other job reopens the merge.
        back = MergeState.recorded if job.kind == JobKind.plan.value else MergeState.planned
        record.state, record.finished_at = back.value, None
        session.add(record)
    audit.record(session, actor=principal.username, action="reconciler.job.retry",
                 target=f"{job.id} {job.unit}", ip=ip, detail={"commit": job.commit},
                 commit=False)
    session.commit()
    wakeup.notify()
    return job_public(job)


def environment_status(session: Session, *, environment: str) -> EnvironmentStatus:
    """Units of an environment: last job, last plan, last apply, non-sensitive outputs."""
    if not is_dns_label(environment):
        raise ValidationFailed("environment must be a lower-case DNS label",
                               field="environment", rule="pattern")
    jobs = session.exec(select(Job).where(Job.environment == environment,
                                          Job.kind == JobKind.terraform.value)
                        .order_by(col(Job.id).desc())).all()
    applies = session.exec(select(UnitApply).where(UnitApply.environment == environment)
                           .order_by(col(UnitApply.id).desc())).all()
    if not jobs and not applies:
        raise NotFound(f"no reconciler activity for environment {environment!r}",
                       field="environment")
    units: dict[str, UnitStatus] = {}
    for job in jobs:
        name = str(job.payload.get("unit") or job.unit.rsplit("/", 1)[-1])
        if name not in units:
            units[name] = UnitStatus(unit=name, last_job=job_public(job),
                                     last_plan=job.result.get("plan"), last_apply=None,
                                     outputs={})
    for row in applies:
        status = units.setdefault(row.unit, UnitStatus(unit=row.unit, last_job=None,
                                                       last_plan=None, last_apply=None,
                                                       outputs={}))
        if status.last_apply is None:
            status.last_apply = {"commit": row.commit, "action": row.action, "job_id": row.job_id,
                                 "at": aware(row.applied_at).isoformat(),
                                 "summary": row.summary}
            status.outputs = row.outputs
    lock = session.get(EnvLock, environment)
    return EnvironmentStatus(environment=environment,
                             locked_by_job=lock.job_id if lock else None,
                             units=sorted(units.values(), key=lambda u: _unit_rank(u.unit)))


def _unit_rank(unit: str) -> tuple[int, str]:
    """Units in the order they apply (backend first); unknown names after, by name."""
    order = UNIT_ORDER.index(unit) if unit in UNIT_ORDER else len(UNIT_ORDER)
    return order, unit


# Pull request actions that change what a plan preview shows (reconciler.webhooks).
PREVIEW_ACTIONS = frozenset({"opened", "synchronize", "reopened", "ready_for_review"})


# ---- drift: the cluster and identity adapters, imported only when used -----------------------


def argocd_sync(settings: Settings, *, application: str, actor: str) -> bool:
    """Ask ArgoCD to sync ``application`` now (drift's fix for cluster objects); False when
    the Application does not exist. ``NotConfigured`` without a cluster."""
    from reconciler.argocd import ArgoCDApplier

    return ArgoCDApplier.from_settings(settings).sync(application, actor=actor)


def identity_drift(settings: Settings, forge: Forge) -> list[GroupDrift]:
    """Keycloak's team groups against the team files on main (``reconciler.identity_drift``)."""
    from reconciler.identity_drift import identity_drift as run

    return run(settings, forge)


def keycloak_sync_teams(settings: Settings, forge: Forge, teams: Iterable[str]) -> SyncReport:
    """The Keycloak sync of ``teams``' groups now (drift's fix for identity differences)."""
    from reconciler.identity_drift import sync_teams

    return sync_teams(settings, forge, teams)
