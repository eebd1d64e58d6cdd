"""The scaffolder's use cases: templates, dry runs, tasks (request → checks → PR), and the
review of changes (approve, merge, close) with policy, audit and catalog status at each step."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from catalog import service as catalog_service
from gitops.forges.base import ChangeSpec, Check, CheckState, Forge, MergeEvent, Review
from gitops.forges.github_webhook import PullRequestEvent
from portal.auth import audit, policy
from portal.auth.principal import Principal
from portal.db import aware, utcnow
from portal.errors import BadRequest, CaasError, Conflict, Forbidden, NotFound
from portal.redact import redact
from reconciler import service as reconciler_service
from scaffolder import pr_text, tasks
from scaffolder.changeset import Prepared, parameter_context, prepare
from scaffolder.checks_runner import run_checks
from scaffolder.models import (
    Change,
    ChangeDetail,
    ChangePublic,
    CheckResult,
    DryRunResult,
    RenderedFile,
    ScaffoldRequest,
    Task,
    TaskPublic,
    TemplateDetail,
    TemplateSummary,
)
from scaffolder.parameters import form_fields
from scaffolder.registry import Registry

OPEN = ("pending", "open")


# ---- templates ----------------------------------------------------------------------------------


def list_templates(*, registry: Registry) -> list[TemplateSummary]:
    return [TemplateSummary(name=t.name, title=t.title, description=t.description,
                            version=t.version, target_path=t.target_path, kind=t.kind)
            for t in registry.all()]


def get_template(*, registry: Registry, forge: Forge, principal: Principal,
                 name: str) -> TemplateDetail:
    t = registry.get(name, field_name="name")
    context = parameter_context(forge, principal, registry)
    # "team"/"environment": the caller's teams on main and the environments on main; each
    # picker field also gets its own entry under its name.
    choices = {"team": sorted(context.teams), "environment": sorted(context.environments)}
    for f in form_fields(t.parameters):
        if f.ui_field == "TeamPicker" or f.rule == "team":
            choices[f.name] = sorted(context.teams)
        elif f.ui_field == "EnvironmentPicker" or f.rule == "environment":
            choices[f.name] = sorted(context.environments)
    return TemplateDetail(name=t.name, title=t.title, description=t.description,
                          version=t.version, target_path=t.target_path, kind=t.kind,
                          parameters=t.parameters, choices=choices)


# ---- dry run and tasks --------------------------------------------------------------------------


def _open_units(session: Session) -> list[str]:
    rows = session.exec(select(Change.unit_key).where(col(Change.status).in_(OPEN))).all()
    return list(rows)


def dry_run(session: Session, *, registry: Registry, forge: Forge, principal: Principal,
            request: ScaffoldRequest) -> DryRunResult:
    """Rendered files and check results; touches no git ref and writes no row."""
    prepared = prepare(forge, registry, principal, request)
    checks = run_checks(forge, prepared, open_units=_open_units(session))
    return DryRunResult(
        template=prepared.template.name, version=prepared.template.version,
        target_path=prepared.target, unit_exists=prepared.unit_exists, files=prepared.files,
        diff=prepared.diff, checks=checks, checks_green=_green(checks), routing=prepared.routing)


def _green(checks: list[CheckResult]) -> bool:
    return bool(checks) and all(c.state == "success" for c in checks)


def create_task(session: Session, *, registry: Registry, forge: Forge, principal: Principal,
                request: ScaffoldRequest, ip: str = "",
                progress: tasks.Progress | None = None) -> TaskPublic:
    """Validate and render (nothing written on refusal), reserve the unit, then run the task.

    The reservation is the INSERT of the change with ``open_unit_key``: of two identical
    requests racing, the database lets exactly one through and the other gets a 409.
    """
    try:
        prepared = prepare(forge, registry, principal, request)
    except Forbidden as exc:
        audit.record(session, actor=principal.username, action="scaffolder.request",
                     target=request.template, outcome="denied", ip=ip,
                     detail={"reason": exc.message})
        raise
    change = Change(
        template=prepared.template.name, template_version=prepared.template.version,
        action=prepared.action, unit_key=prepared.target, open_unit_key=prepared.target,
        entity=prepared.entity, branch=prepared.branch, forge=forge.kind, title=prepared.title,
        author=principal.username, team=prepared.team, envs=prepared.envs,
        tier=prepared.tier.value, touches_envs=prepared.touches_envs, routing=prepared.routing,
        answers=prepared.answers, files=[f.model_dump() for f in prepared.files],
        diff=prepared.diff, base_sha=prepared.base_sha,
    )
    task = Task(template=prepared.template.name, requested_by=principal.username,
                request=request.model_dump())
    session.add(change)
    try:
        session.flush()
        task.change_id = change.id
        session.add(task)
        session.commit()
    except IntegrityError:
        session.rollback()
        raise Conflict(f"an open change already requests {prepared.target}", field="answers",
                       rule="unit-open") from None
    audit.record(session, actor=principal.username, action="scaffolder.request",
                 target=prepared.target, ip=ip,
                 detail={"template": prepared.template.name, "task": task.id})
    tasks.log_step(session, task, "validate", "done",
                   f"{len(prepared.files)} file(s) rendered at {prepared.target}", progress)
    _run(session, task=task, change=change, prepared=prepared, forge=forge, progress=progress)
    return tasks.public(session, task)


def retry_task(session: Session, *, registry: Registry, forge: Forge, principal: Principal,
               task_id: int, ip: str = "", progress: tasks.Progress | None = None
               ) -> TaskPublic:
    """Run a failed task again; the branch is the same, so an opened PR is found, not doubled."""
    task = tasks.get(session, task_id)
    if task.requested_by != principal.username and not principal.is_platform_admin:
        raise Forbidden("only the requester or a platform-admin retries a task", rule="owner")
    if task.status != "failed":
        raise Conflict(f"task {task_id} is {task.status}; only failed tasks are retried",
                       field="task_id", rule="state")
    change = session.get(Change, task.change_id) if task.change_id else None
    if change is None or change.status not in OPEN:
        raise Conflict(f"task {task_id}'s change is no longer open", field="task_id")
    request = ScaffoldRequest.model_validate(task.request)
    prepared = prepare(forge, registry, principal, request)
    task.status, task.error, task.attempts = "running", "", task.attempts + 1
    tasks.log_step(session, task, "retry", "info", f"attempt {task.attempts}", progress)
    audit.record(session, actor=principal.username, action="scaffolder.retry",
                 target=change.unit_key, ip=ip, detail={"task": task.id})
    _run(session, task=task, change=change, prepared=prepared, forge=forge, progress=progress)
    return tasks.public(session, task)


def _run(session: Session, *, task: Task, change: Change, prepared: Prepared, forge: Forge,
         progress: tasks.Progress | None) -> None:
    step = "checks"
    try:
        tasks.log_step(session, task, step, "started", "", progress)
        others = [u for u in _open_units(session) if u != change.unit_key]
        checks = run_checks(forge, prepared, open_units=others)
        change.checks = [c.model_dump() for c in checks]
        change.checks_green = _green(checks)
        session.add(change)
        failed = [c.name for c in checks if c.state != "success"]
        tasks.log_step(session, task, step, "done",
                       "all green" if not failed else "failing: " + ", ".join(failed), progress)
        step = "pull-request"
        tasks.log_step(session, task, step, "started", prepared.branch, progress)
        spec = ChangeSpec(branch=prepared.branch, title=prepared.title,
                          body=pr_text.body(prepared, checks), files=prepared.changes,
                          author=change.author, labels=pr_text.labels(prepared))
        # The forge writes through its own connection: end ours first (an SQLite reader
        # that began before another writer's commit can never write afterwards).
        session.commit()
        # Resumes a change an earlier attempt opened: steps still missing are completed.
        info = forge.open_change(spec)
        change.number, change.url, change.status = info.number, info.url, "open"
        change.head_sha, change.base_sha = info.head_sha, info.base_sha
        change.updated_at = utcnow()
        session.add(change)
        tasks.log_step(session, task, step, "done", f"#{info.number} {info.url}", progress)
        step = "statuses"
        session.commit()
        for c in checks:
            forge.set_check(info.number, Check(name=f"caas/{c.name}", state=CheckState(c.state),
                                               description=c.summary[:140]))
        forge.comment(info.number, redact(pr_text.preview(prepared, checks)))
        tasks.log_step(session, task, step, "done", f"{len(checks)} check(s) reported", progress)
        step = "catalog"
        if change.entity:
            catalog_service.record_timeline(
                session, entity=change.entity, event="pr.opened", actor=change.author,
                detail={"change": change.id, "number": info.number, "url": info.url})
            catalog_service.record_timeline(
                session, entity=change.entity, event="checks.finished", actor="scaffolder",
                detail={"green": change.checks_green, "failing": failed})
            catalog_service.set_status(session, entity=change.entity, status="requested")
        session.commit()
        if prepared.touches_envs:
            step = "plan-preview"
            reconciler_service.request_plan_preview(session, change_number=info.number,
                                                    head_sha=info.head_sha)
            tasks.log_step(session, task, step, "done", "plan preview queued", progress)
        task.status = "succeeded"
        tasks.log_step(session, task, "done", "done", f"change #{info.number} opened", progress)
    except CaasError as exc:
        _fail(session, task, step, exc.message, progress)
    except Exception as exc:  # the task records why; the requester may retry
        _fail(session, task, step, f"{type(exc).__name__}: {exc}", progress)


def _fail(session: Session, task: Task, step: str, message: str,
          progress: tasks.Progress | None) -> None:
    session.rollback()
    task.status, task.error = "failed", redact(message)[:4000]
    tasks.log_step(session, task, step, "failed", message, progress)


def get_task(session: Session, *, principal: Principal, task_id: int) -> TaskPublic:
    task = tasks.get(session, task_id)
    _may_see(principal, task.requested_by)
    return tasks.public(session, task)


def _may_see(principal: Principal, owner: str) -> None:
    if principal.username != owner and not principal.is_platform_admin:
        raise NotFound("no such task for you", field="task_id")


# ---- changes ------------------------------------------------------------------------------------


def _public(change: Change) -> dict[str, Any]:
    return {
        "id": change.id or 0, "number": change.number, "url": change.url,
        "template": change.template,
        "template_version": change.template_version, "action": change.action,
        "unit_key": change.unit_key, "title": change.title, "author": change.author,
        "team": change.team,
        "envs": change.envs, "tier": change.tier, "touches_envs": change.touches_envs,
        "routing": change.routing, "status": change.status,
        "checks": [CheckResult.model_validate(c) for c in change.checks],
        "checks_green": change.checks_green, "approved_by": change.approved_by,
        "base_sha": change.base_sha, "head_sha": change.head_sha, "merge_sha": change.merge_sha,
        "created_at": aware(change.created_at), "updated_at": aware(change.updated_at)}


def list_changes(session: Session, *, status: str | None = None, limit: int = 100
                 ) -> list[ChangePublic]:
    stmt = select(Change).order_by(col(Change.id).desc()).limit(max(1, min(limit, 500)))
    if status:
        stmt = stmt.where(Change.status == status)
    return [ChangePublic(**_public(c)) for c in session.exec(stmt).all()]


def _change(session: Session, change_id: int) -> Change:
    change = session.get(Change, change_id)
    if change is None:
        raise NotFound(f"change {change_id} does not exist", field="change_id")
    return change


def get_change(session: Session, *, change_id: int) -> ChangeDetail:
    change = _change(session, change_id)
    return ChangeDetail(**_public(change),
                        files=[RenderedFile.model_validate(f) for f in change.files],
                        diff=change.diff, answers=change.answers)


def _local(forge: Forge) -> Review:
    review = forge.review()
    if review is None:
        raise BadRequest("this forge reviews and merges on its own site; use the pull request",
                         field="forge", rule="local-forge-only")
    return review


def _open_number(change: Change) -> int:
    if change.status != "open" or change.number is None:
        raise Conflict(f"change {change.id} is {change.status}, not open", field="change_id",
                       rule="state")
    return change.number


def approve_change(session: Session, *, forge: Forge, principal: Principal, change_id: int,
                   ip: str = "") -> ChangePublic:
    change = _change(session, change_id)
    number = _open_number(change)
    decision = policy.can_approve(principal, author=change.author, team=change.team,
                                  tier=policy.Tier(change.tier), touches_envs=change.touches_envs)
    if not decision:
        audit.record(session, actor=principal.username, action="scaffolder.approve",
                     target=change.unit_key, outcome="denied", ip=ip,
                     detail={"change": change.id, "reason": decision.reason})
        raise Forbidden(decision.reason, rule="can-approve")
    session.commit()  # the forge writes through its own connection (see _run)
    _local(forge).approve(number, by=principal.username)
    change.approved_by = sorted({*change.approved_by, principal.username})
    change.updated_at = utcnow()
    session.add(change)
    if change.entity:
        catalog_service.record_timeline(session, entity=change.entity, event="pr.approved",
                                        actor=principal.username, detail={"change": change.id})
    audit.record(session, actor=principal.username, action="scaffolder.approve",
                 target=change.unit_key, ip=ip, detail={"change": change.id}, commit=False)
    session.commit()
    return ChangePublic(**_public(change))


def merge_change(session: Session, *, forge: Forge, principal: Principal, change_id: int,
                 ip: str = "") -> ChangePublic:
    change = _change(session, change_id)
    number = _open_number(change)
    local = _local(forge)
    approvals = local.approvals(number)
    decision = policy.can_merge(principal, author=change.author, team=change.team,
                                tier=policy.Tier(change.tier), touches_envs=change.touches_envs,
                                approved_by=approvals, checks_green=change.checks_green)
    if not decision:
        audit.record(session, actor=principal.username, action="scaffolder.merge",
                     target=change.unit_key, outcome="denied", ip=ip,
                     detail={"change": change.id, "reason": decision.reason})
        if not change.checks_green or not [a for a in approvals if a != change.author]:
            raise Conflict(decision.reason, field="change_id", rule="mergeable")
        raise Forbidden(decision.reason, rule="can-merge")
    session.commit()
    try:
        event = local.merge(number, by=principal.username)
    except CaasError as exc:
        audit.record(session, actor=principal.username, action="scaffolder.merge",
                     target=change.unit_key, outcome="failed", ip=ip,
                     detail={"change": change.id, "reason": exc.message})
        raise
    change.status, change.open_unit_key, change.merge_sha = "merged", None, event.commit
    change.updated_at = utcnow()
    session.add(change)
    if change.entity:
        catalog_service.record_timeline(session, entity=change.entity, event="pr.merged",
                                        actor=principal.username,
                                        detail={"change": change.id, "commit": event.commit})
        catalog_service.set_status(session, entity=change.entity, status="merged")
    audit.record(session, actor=principal.username, action="scaffolder.merge",
                 target=change.unit_key, ip=ip,
                 detail={"change": change.id, "commit": event.commit}, commit=False)
    session.commit()
    reconciler_service.record_merge_event(session, event=event)
    return ChangePublic(**_public(change))


def close_change(session: Session, *, forge: Forge, principal: Principal, change_id: int,
                 ip: str = "") -> ChangePublic:
    change = _change(session, change_id)
    if change.status not in OPEN:
        raise Conflict(f"change {change.id} is {change.status}, not open", field="change_id",
                       rule="state")
    allowed = (principal.username == change.author or principal.is_platform_admin
               or (change.team is not None and principal.can_review(change.team)))
    if not allowed:
        raise Forbidden("only the author, a reviewer of the team or a platform-admin closes it",
                        rule="can-close")
    if change.number is not None:
        session.commit()
        forge.close_change(change.number, by=principal.username)
    change.status, change.open_unit_key = "closed", None
    change.updated_at = utcnow()
    session.add(change)
    if change.entity:
        catalog_service.record_timeline(session, entity=change.entity, event="pr.closed",
                                        actor=principal.username, detail={"change": change.id})
        catalog_service.set_status(session, entity=change.entity, status="closed")
    audit.record(session, actor=principal.username, action="scaffolder.close",
                 target=change.unit_key, ip=ip, detail={"change": change.id}, commit=False)
    session.commit()
    return ChangePublic(**_public(change))


def record_pr_event(session: Session, *, event: MergeEvent | PullRequestEvent) -> str:
    """Keep a change in step with what its forge reports (GitHub webhooks, the poller):
    merged → ``merged`` (the unit key is released, the catalog says merged), closed unmerged →
    ``closed``, a new head → new ``head_sha``. Unknown PR numbers are ignored."""
    number = event.change_number if isinstance(event, MergeEvent) else event.number
    if not number:
        return "no change number"
    change = session.exec(select(Change).where(Change.number == number,
                                               col(Change.status).in_(OPEN))).first()
    if change is None:
        return "not a scaffolder change"
    actor = (event.merged_by if isinstance(event, MergeEvent) else event.sender) or "forge"
    if isinstance(event, MergeEvent) or event.merged:
        change.status, change.open_unit_key = "merged", None
        change.merge_sha = event.commit if isinstance(event, MergeEvent) else None
        outcome, status = "pr.merged", "merged"
    elif event.action == "closed":
        change.status, change.open_unit_key = "closed", None
        outcome, status = "pr.closed", "closed"
    else:
        if event.head_sha:
            change.head_sha = event.head_sha
        change.updated_at = utcnow()
        session.add(change)
        session.commit()
        return "head updated"
    change.updated_at = utcnow()
    session.add(change)
    if change.entity:
        catalog_service.record_timeline(session, entity=change.entity, event=outcome,
                                        actor=actor[:100], detail={"change": change.id})
        catalog_service.set_status(session, entity=change.entity, status=status)
    audit.record(session, actor=actor, action=f"scaffolder.{status}", target=change.unit_key,
                 detail={"change": change.id, "source": "forge"}, commit=False)
    session.commit()
    return outcome
