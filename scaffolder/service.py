"""The scaffolder's requests: templates, dry runs and tasks (request → reserve → checks → PR).

The review of the changes these tasks open (approve, merge, close, PR events) is
``scaffolder.review``."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from catalog import search as catalog_search
from catalog import service as catalog_service
from gitops import layout
from gitops.forges.base import ChangeSpec, Forge
from portal import tracing
from portal.auth import audit
from portal.auth.principal import Principal
from portal.db import utcnow
from portal.errors import CaasError, Conflict, Forbidden, NotFound
from portal.redact import redact
from reconciler import service as reconciler_service
from scaffolder import capacity, merge_gate, pr_checks, pr_text, review, tasks
from scaffolder.changeset import Prepared, parameter_context, prepare
from scaffolder.checks_runner import check_collisions, immediate_checks, in_order, run_checks
from scaffolder.decommission import prepare_decommission
from scaffolder.models import (
    Change,
    CheckResult,
    DryRunResult,
    ScaffoldRequest,
    Task,
    TaskPublic,
    TemplateDetail,
    TemplateSummary,
)
from scaffolder.parameters import form_fields
from scaffolder.registry import Registry
from scaffolder.render_pool import WORKERS
from scaffolder.rerender import TemplateSource as TemplateSource
from scaffolder.rerender import UnitDrift as UnitDrift  # re-exported: drift reads units here
from scaffolder.rerender import answers_path as answers_path
from scaffolder.rerender import render_key as render_key
from scaffolder.rerender import template_at as template_at
from scaffolder.rerender import unit_digests as unit_digests
from scaffolder.rerender import unit_drift as unit_drift
from scaffolder.rerender import unit_template as unit_template
from scaffolder.review import OPEN
from scaffolder.units import unit_answers
from scaffolder.upgrade_changeset import replan

RENDER_WORKERS = WORKERS  # renders that run side by side (drift's render threads)

# A change whose task failed after reserving the unit: the reservation is released.
RELEASED = "failed"


# ---- templates ----------------------------------------------------------------------------------


def list_templates(*, registry: Registry) -> list[TemplateSummary]:
    return [TemplateSummary(name=t.name, title=t.title, description=t.description,
                            version=t.version, target_path=t.target_path, kind=t.kind)
            for t in registry.all()]


_DOCUMENTS: dict[int, tuple[float, list[catalog_search.Document]]] = {}
DOCUMENTS_TTL_S = 10.0  # the search box asks on every keystroke; the registry stats each file


def template_documents(*, registry: Registry) -> list[catalog_search.Document]:
    """The templates as catalog search documents (name, title, description; every signed-in
    user may see every template), read from the registry at most every DOCUMENTS_TTL_S."""
    now = time.monotonic()
    cached = _DOCUMENTS.get(id(registry))
    if cached is not None and now - cached[0] < DOCUMENTS_TTL_S:
        return cached[1]
    kind = catalog_search.TEMPLATE
    documents = [catalog_search.Document(kind=kind, key=f"{kind}:{t.name}", name=t.name,
                                         title=t.title, description=t.description,
                                         url=catalog_search.page_path(f"{kind}:{t.name}"))
                 for t in registry.all()]
    _DOCUMENTS[id(registry)] = (now, documents)
    return documents


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


def dry_run(session: Session, *, registry: Registry, forge: Forge, principal: Principal,
            request: ScaffoldRequest) -> DryRunResult:
    """Rendered files and check results; touches no git ref and writes no row."""
    prepared = prepare(forge, registry, principal, request)
    others = [u for u in merge_gate.open_units(session) if u != prepared.target]
    checks = run_checks(forge, prepared, open_units=others)
    return DryRunResult(
        template=prepared.template.name, version=prepared.template.version,
        target_path=prepared.target, unit_exists=prepared.unit_exists, files=prepared.files,
        diff=prepared.diff, checks=checks, checks_green=_green(checks), routing=prepared.routing,
        environments=capacity.previews(forge, prepared))


def _green(checks: list[CheckResult]) -> bool:
    return bool(checks) and all(c.state == "success" for c in checks)


@dataclass(frozen=True)
class Reservation:
    """A validated request whose unit is reserved: the task row, its change, what to write, and
    the first step of the run (audit + step log, inside the run so a failure releases it)."""

    task: Task
    change: Change
    prepared: Prepared
    start: Callable[[], None]
    # Checks beyond ``run_checks`` (a promotion's gates), run in the checks step.
    gates: Callable[[], list[CheckResult]] | None = None

    @property
    def task_id(self) -> int:
        assert self.task.id is not None  # set by the INSERT that reserved it
        return self.task.id


def create_task(session: Session, *, registry: Registry, forge: Forge, principal: Principal,
                request: ScaffoldRequest, ip: str = "",
                progress: tasks.Progress | None = None) -> TaskPublic:
    """``reserve_task`` then ``run_task``, in one call (the API's synchronous request)."""
    reservation = reserve_task(session, registry=registry, forge=forge, principal=principal,
                               request=request, ip=ip, progress=progress)
    return run_task(session, reservation=reservation, forge=forge, progress=progress)


def reserve_task(session: Session, *, registry: Registry, forge: Forge, principal: Principal,
                 request: ScaffoldRequest, ip: str = "",
                 progress: tasks.Progress | None = None) -> Reservation:
    """Validate and render (nothing written on refusal), then reserve the unit.

    The reservation is the INSERT of the change with ``open_unit_key``: of two identical
    requests racing, the database lets exactly one through and the other gets a 409.
    """
    try:
        with tracing.span("scaffolder.render", template=request.template):
            prepared = prepare(forge, registry, principal, request)
    except Forbidden as exc:
        audit.record(session, actor=principal.username, action="scaffolder.request",
                     target=request.template, outcome="denied", ip=ip,
                     detail={"reason": exc.message})
        raise
    _refuse_taken_names(session, forge, prepared)
    return _reserve(session, prepared=prepared, forge=forge, principal=principal,
                    request_doc=request.model_dump(), ip=ip, progress=progress,
                    action="scaffolder.request")


def _refuse_taken_names(session: Session, forge: Forge, prepared: Prepared) -> None:
    """409 ``name-taken``, before anything is written, when a name the unit would generate in
    a shared scope (``gitops.object_names``: a Namespace, an Application, an AppProject, …)
    is already generated by another unit on main or by an open change, naming both units.

    Two requests racing past this check each reserve their own unit; the PR's ``collisions``
    check (evaluated again under the merge lock, ``scaffolder.merge_checks``) lets only one
    of them merge."""
    others = [u for u in merge_gate.open_units(session) if u != prepared.target]
    _refuse_if_taken(check_collisions(forge, prepared, others))


def _refuse_if_taken(collisions: CheckResult) -> None:
    if collisions.state == "failure":
        raise Conflict("answers: " + "; ".join(collisions.details), field="answers",
                       rule="name-taken")


def decommission_task(session: Session, *, registry: Registry, forge: Forge,
                      principal: Principal, unit: str, ip: str = "",
                      progress: tasks.Progress | None = None) -> TaskPublic:
    """Open the pull request that removes ``unit`` (``scaffolder.decommission``): refused,
    with nothing written, while dependants exist (or, for a team, open changes of the team);
    reserved like any change of the unit."""
    kind, _, name = layout.key_for_unit(unit.strip().strip("/")).partition(":")
    waiting = review.open_changes(session, team=name) if kind == "team" else []
    try:
        prepared = prepare_decommission(forge, registry, principal, unit=unit,
                                        open_changes=waiting)
    except Forbidden as exc:
        audit.record(session, actor=principal.username, action="scaffolder.decommission",
                     target=unit[:300], outcome="denied", ip=ip,
                     detail={"reason": exc.message})
        raise
    reservation = _reserve(session, prepared=prepared, forge=forge, principal=principal,
                           request_doc={"decommission": prepared.target}, ip=ip,
                           progress=progress, action="scaffolder.decommission")
    return run_task(session, reservation=reservation, forge=forge, progress=progress)


def open_prepared(session: Session, *, prepared: Prepared, forge: Forge, principal: Principal,
                  request_doc: dict[str, Any], ip: str, action: str,
                  gates: Callable[[], list[CheckResult]] | None = None,
                  progress: tasks.Progress | None = None) -> TaskPublic:
    """Reserve the unit and run the task for a change set another module prepared (a
    promotion): the same reservation, checks (plus ``gates``), pull request and statuses."""
    reservation = _reserve(session, prepared=prepared, forge=forge, principal=principal,
                           request_doc=request_doc, ip=ip, progress=progress, action=action)
    _run(session, task=reservation.task, change=reservation.change, prepared=prepared,
         forge=forge, progress=progress, start=reservation.start, gates=gates)
    return tasks.public(session, reservation.task)


def upgrade_task(session: Session, *, forge: Forge, principal: Principal, prepared: Prepared,
                 units: list[str], ip: str = "", progress: tasks.Progress | None = None
                 ) -> TaskPublic:
    """Open the pull request of a prepared upgrade (``scaffolder.upgrade_changeset``),
    reserved under its key (the unit's folder, or ``upgrade/<template>/<team>``) like any
    change; 409 while another open change holds the key."""
    reservation = _reserve(session, prepared=prepared, forge=forge, principal=principal,
                           request_doc={"upgrade": prepared.target, "units": units}, ip=ip,
                           progress=progress, action="scaffolder.upgrade")
    return run_task(session, reservation=reservation, forge=forge, progress=progress)


def _reserve(session: Session, *, prepared: Prepared, forge: Forge, principal: Principal,
             request_doc: dict[str, Any], ip: str, progress: tasks.Progress | None,
             action: str) -> Reservation:
    """Reserve the unit (the INSERT of its open change); ``run_task`` runs the rest."""
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
                request=request_doc)
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
    _own_branch(session, change)

    def start() -> None:
        audit.record(session, actor=principal.username, action=action,
                     target=prepared.target, ip=ip,
                     detail={"template": prepared.template.name, "task": task.id})
        tasks.log_step(session, task, "validate", "done",
                       f"{len(prepared.files)} file(s) rendered at {prepared.target}", progress)

    return Reservation(task=task, change=change, prepared=prepared, start=start)


def _own_branch(session: Session, change: Change) -> None:
    """Give ``change`` a branch no other open change uses. Branch names join names with
    ``-`` (``caas/tenant-<team>-<name>``), so two units can share one (payments/x-web and
    payments-x/web); the forge resumes the open PR of a branch (a retry), which would hand the
    later change the earlier one's PR. The later of two such changes (higher id) takes
    ``<branch>-<id>``; a retry keeps what the row holds."""
    clash = session.exec(select(Change.id).where(
        Change.branch == change.branch, col(Change.status).in_(OPEN),
        col(Change.id) < (change.id or 0))).first()
    if clash is not None:
        change.branch = f"{change.branch[:190]}-{change.id}"
        session.add(change)
        session.commit()


def run_task(session: Session, *, reservation: Reservation, forge: Forge,
             progress: tasks.Progress | None = None) -> TaskPublic:
    """Run a reserved task: checks, the pull request, statuses, catalog, plan preview. A step
    that fails marks the task failed and releases the reservation; nothing is raised."""
    _run(session, task=reservation.task, change=reservation.change,
         prepared=reservation.prepared, forge=forge, progress=progress, start=reservation.start)
    return tasks.public(session, reservation.task)


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
    if change is None or change.status not in (*OPEN, RELEASED):
        raise Conflict(f"task {task_id}'s change is no longer open", field="task_id")
    if "promotion" in task.request:
        raise Conflict("a promotion is retried by promoting again (its gates are evaluated "
                       "anew)", field="task_id", rule="promotion")
    if "decommission" in task.request:
        prepared = prepare_decommission(forge, registry, principal,
                                        unit=str(task.request["decommission"]))
    elif "upgrade" in task.request:
        prepared = replan(forge, registry, key=str(task.request["upgrade"]),
                          units=[str(u) for u in task.request.get("units") or []])
    else:
        prepared = prepare(forge, registry, principal, ScaffoldRequest.model_validate(
            task.request))
    if change.status == RELEASED:
        _reserve_again(session, change)
    task.status, task.error, task.attempts = "running", "", task.attempts + 1

    def start() -> None:
        tasks.log_step(session, task, "retry", "info", f"attempt {task.attempts}", progress)
        audit.record(session, actor=principal.username, action="scaffolder.retry",
                     target=change.unit_key, ip=ip, detail={"task": task.id})

    _run(session, task=task, change=change, prepared=prepared, forge=forge, progress=progress,
         start=start)
    return tasks.public(session, task)


def _reserve_again(session: Session, change: Change) -> None:
    """A retry takes the unit's reservation back; 409 when another change holds it now."""
    change.status, change.open_unit_key, change.updated_at = "pending", change.unit_key, utcnow()
    session.add(change)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise Conflict(f"an open change already requests {change.unit_key}", field="answers",
                       rule="unit-open") from None


def _run(session: Session, *, task: Task, change: Change, prepared: Prepared, forge: Forge,
         progress: tasks.Progress | None, start: Callable[[], None],
         gates: Callable[[], list[CheckResult]] | None = None) -> None:
    """Every step after the reservation; whichever fails, the reservation is released."""
    step = "request"
    try:
        start()
        step = "checks"
        tasks.log_step(session, task, step, "started", "", progress)
        # Another change of the unit reserved earlier (one reopened on the forge) counts.
        others = merge_gate.open_units(session, before=change)
        with tracing.span("scaffolder.checks", unit=change.unit_key):
            now = immediate_checks(forge, prepared, open_units=others)
            if prepared.action == "create":
                _refuse_if_taken(now[0])  # an earlier reservation raced past the request's
            # The expensive checks report after the PR opens (``scaffolder.pr_checks``).
            checks = in_order(pr_checks.pending(), now)
            checks += gates() if gates is not None else []
        change.checks = [c.model_dump() for c in checks]
        change.checks_green = False
        session.add(change)
        failed = [c.name for c in checks if c.state not in ("success", pr_checks.PENDING)]
        tasks.log_step(session, task, step, "done",
                       ("failing: " + ", ".join(failed) + "; " if failed else "")
                       + ", ".join(pr_checks.running(checks)) + " run after the PR opens",
                       progress)
        step = "pull-request"
        tasks.log_step(session, task, step, "started", change.branch, progress)
        spec = ChangeSpec(branch=change.branch, title=prepared.title,
                          body=pr_text.body(prepared, checks), files=prepared.changes,
                          author=change.author, labels=pr_text.labels(prepared))
        # The forge writes through its own connection: end ours first (an SQLite reader
        # that began before another writer's commit can never write afterwards).
        session.commit()
        # Resumes a change an earlier attempt opened: steps still missing are completed.
        with tracing.span("scaffolder.pull_request", branch=change.branch):
            info = forge.open_change(spec)
            tracing.set_attributes(change_number=info.number, commit=info.head_sha)
        _refuse_foreign(session, change, info.number)
        change.number, change.url, change.status = info.number, info.url, "open"
        change.head_sha, change.base_sha = info.head_sha, info.base_sha
        change.updated_at = utcnow()
        session.add(change)
        tasks.log_step(session, task, step, "done", f"#{info.number} {info.url}", progress)
        step = "statuses"
        session.commit()
        later = set(pr_checks.running(checks))  # ``pr_checks.queue`` reports them
        forge.set_checks(info.number, [c.as_status() for c in checks if c.name not in later])
        forge.comment(info.number, redact(pr_text.preview(prepared, checks)))
        pr_checks.queue(session, forge=forge, number=info.number, sha=info.head_sha)
        tasks.log_step(session, task, step, "done", f"{len(checks)} check(s) reported, "
                       f"{len(pr_checks.running(checks))} pending", progress)
        step = "catalog"
        if change.entity:
            catalog_service.record_timeline(
                session, entity=change.entity, event="pr.opened", actor=change.author,
                detail={"change": change.id, "number": info.number, "url": info.url})
            catalog_service.set_status(session, entity=change.entity, status="requested")
        session.commit()
        if prepared.touches_envs:
            step = "plan-preview"
            reconciler_service.request_plan_preview(session, change_number=info.number,
                                                    head_sha=info.head_sha)
            tasks.log_step(session, task, step, "done", "plan preview queued", progress)
        step = "done"
        task.status = "succeeded"
        tasks.log_step(session, task, step, "done", f"change #{info.number} opened", progress)
    except CaasError as exc:
        _fail(session, task, change, step, exc.message, progress)
    except Exception as exc:  # the task records why; the requester may retry
        _fail(session, task, change, step, f"{type(exc).__name__}: {exc}", progress)


def _refuse_foreign(session: Session, change: Change, number: int) -> None:
    """The forge resumed PR ``number`` of the branch: refuse it when another open change
    owns it (two reservations of one branch raced past ``_own_branch``)."""
    owner = session.exec(select(Change.id).where(
        Change.number == number, Change.forge == change.forge, col(Change.status).in_(OPEN),
        Change.id != change.id)).first()
    if owner is not None:
        raise Conflict(f"branch {change.branch!r} holds the open PR #{number} of change "
                       f"{owner}; request again", field="branch", rule="branch-owned")


def _fail(session: Session, task: Task, change: Change, step: str, message: str,
          progress: tasks.Progress | None) -> None:
    """The task failed after reserving its unit: record why and RELEASE the reservation.

    The change becomes ``failed`` (its ``open_unit_key`` NULL), so the name is free for a new
    request at once; the author's retry takes the reservation back (``_reserve_again``). A
    placeholder the catalog shows as ``requested`` goes, as when a change is closed.
    """
    session.rollback()
    change.status, change.open_unit_key, change.updated_at = RELEASED, None, utcnow()
    session.add(change)
    if change.entity:
        catalog_service.set_status(session, entity=change.entity, status="closed")
    task.status, task.error = "failed", redact(message)[:4000]
    tasks.log_step(session, task, step, "failed",
                   f"{message} (the reservation of {change.unit_key} is released; retry the "
                   "task to take it again)", progress)


def run_pr_checks(session: Session, *, forge: Forge, number: int, sha: str) -> str:
    """The deferred checks of PR ``number`` at head ``sha`` (the reconciler's ``pr_checks``
    job; ``scaffolder.pr_checks.run``)."""
    return pr_checks.run(session, forge=forge, number=number, sha=sha)


def rerender_task(session: Session, *, registry: Registry, forge: Forge, principal: Principal,
                  unit: str, ip: str = "") -> TaskPublic:
    """The fix for hand edits found by drift: an update PR re-rendering ``unit`` (a folder)
    with its stored answers, through the same request, reservation and checks as a form's
    change. ``NotFound`` without answers; ``Conflict`` when nothing would change or another
    change holds the unit."""
    stored = unit_answers(forge=forge, registry=registry, unit=unit)
    request = ScaffoldRequest(template=stored.template, answers=stored.answers, update=True)
    return create_task(session, registry=registry, forge=forge, principal=principal,
                       request=request, ip=ip)


def get_task(session: Session, *, principal: Principal, task_id: int) -> TaskPublic:
    task = tasks.get(session, task_id)
    _may_see(principal, task.requested_by)
    return tasks.public(session, task)


def _may_see(principal: Principal, owner: str) -> None:
    if principal.username != owner and not principal.is_platform_admin:
        raise NotFound("no such task for you", field="task_id")
