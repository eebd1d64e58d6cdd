"""Terraform job handlers: apply (or destroy) one unit of one environment; plan previews.

A unit's apply is recorded per (environment, unit, commit) in ``reconciler_unit_applies`` in
its own transaction right after Terraform returns. A job that is run again (its worker died
after the apply) finds that record and does not apply twice; a job whose worker died *during*
the apply first waits for that worker's interrupted terraform to exit (``tfproc.settle``), then
re-plans against the state it left and applies only what is still missing.

The record is taken from the unit's state after the attempt (``reconciler.tfstate``), not only
from the attempt's plan: an attempt that applied but could not record it (database down) is
recorded by its retry as applied by the earlier attempt, with the resources it added/removed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from gitops.environment import InfraManifest
from gitops.forges.base import Check, CheckState
from gitops.layout import changed_environments
from portal.errors import CaasError
from reconciler.context import JobContext, Result
from reconciler.errors import PermanentError
from reconciler.models import Job, JobKind, UnitApply
from reconciler.previews import ERROR, NO_CHANGE, PLANNED, WAITING, status_text
from reconciler.terraform import PlanSummary, TerraformError, TerraformRunner, UnitRef
from reconciler.tfplan import read_manifest
from reconciler.tfstate import StateSnapshot
from reconciler.units import (
    UNIT_ORDER,
    MissingUpstreamOutput,
    changed_units,
    plan_mode,
    unit_inputs,
    upstream_units,
)


def _variables(ctx: JobContext, runner: TerraformRunner, env: str, infra: InfraManifest,
               unit: str) -> dict[str, object]:
    upstream = {u: runner.outputs(UnitRef(env=env, unit=u, provider=infra.provider)).values
                for u in upstream_units(unit)}
    return unit_inputs(env, infra, unit, upstream, gitops_repo_url=_repo_url(ctx),
                       gitops_revision=ctx.settings.main_branch)


def _repo_url(ctx: JobContext) -> str:
    if ctx.settings.github_repo:
        return f"https://github.com/{ctx.settings.github_repo}.git"
    return str(ctx.settings.resolved_gitops_repo)


# How many of a unit's most recent other jobs are compared with a job's commit.
SUPERSEDING_CANDIDATES = 20


def superseded_by(ctx: JobContext, env: str, unit: str) -> str | None:
    """The commit of a later merge that already has this unit's job (queued, running or done),
    when the job's own commit is an ancestor of it; ``None`` otherwise. A merge learned late (a
    redelivered webhook after the poller recorded a later head) must not apply an older
    manifest over a newer one: the later job applies main's newer state of the unit."""
    commit = ctx.job.commit
    with Session(ctx.engine) as session:
        others = session.exec(
            select(Job.commit).where(Job.kind == JobKind.terraform.value,
                                     Job.environment == env, Job.unit == ctx.job.unit,
                                     Job.commit != commit)
            .order_by(col(Job.id).desc()).limit(SUPERSEDING_CANDIDATES)).all()
    for other in dict.fromkeys(others):
        if ctx.forge.is_ancestor(commit, other):
            return other
    return None


def run_unit(ctx: JobContext) -> Result:
    payload: Mapping[str, Any] = ctx.job.payload
    if payload.get("error"):
        raise PermanentError(str(payload["error"]))
    env, unit, action = str(payload["env"]), str(payload["unit"]), str(payload["action"])
    commit = ctx.job.commit
    with Session(ctx.engine) as session:
        done = session.exec(select(UnitApply).where(
            UnitApply.environment == env, UnitApply.unit == unit,
            UnitApply.commit == commit)).first()
        if done is not None:
            ctx.log(f"{env}/{unit} already {action} for {commit[:12]} by job {done.job_id}; "
                    "not running Terraform again")
            return Result(message=f"{action} already recorded", detail={
                "plan": done.summary, "outputs": done.outputs})
    if (later := superseded_by(ctx, env, unit)) is not None:
        ctx.log(f"{env}/{unit}: {commit[:12]} was learned after the later merge {later[:12]}, "
                "whose job brings this unit to main's newer state; not running Terraform")
        return Result(message=f"{action} {env}/{unit}: superseded by {later[:12]}",
                      detail={"superseded_by": later})
    try:
        infra = read_manifest(ctx, env, commit)
        if action == "destroy" and (infra is None or infra.installed):
            # The file was deleted: destroy with the last manifest that declared it.
            infra = read_manifest(ctx, env, str(payload.get("before") or "")) or infra
    except CaasError as exc:
        raise PermanentError(f"envs/{env}/infra.yaml: {exc.message}") from exc
    if infra is None:
        raise PermanentError(f"envs/{env}/infra.yaml does not exist at {commit[:12]}")
    runner = TerraformRunner(ctx.settings)
    ref = UnitRef(env=env, unit=unit, provider=infra.provider)
    runner.settle(ref, log=ctx.log)
    try:
        variables = _variables(ctx, runner, env, infra, unit)
    except MissingUpstreamOutput as exc:
        raise PermanentError(str(exc.args[0] if exc.args else exc)) from exc
    if action == "destroy":
        summary = runner.destroy(ref, variables, log=ctx.log)
        public: dict[str, object] = {}
    else:
        summary, outputs = runner.run(ref, variables, log=ctx.log)
        public = outputs.public()
    record = _apply_record(ctx, env, unit, summary, runner.state(ref))
    _record_apply(ctx, env, unit, action, record, public)
    if "earlier_attempt" in record:
        earlier = record["earlier_attempt"]
        message = (f"{action} {env}/{unit}: applied by an earlier attempt (state serial "
                   f"{earlier['serial_before']} → {earlier['serial_after']}: "
                   f"{len(earlier['added'])} resource(s) added, {len(earlier['removed'])} "
                   "removed); nothing left to change")
    else:
        message = f"{action} {env}/{unit}: {_counts(summary)}"
    return Result(message=message, detail={"plan": record, "outputs": public})


def _apply_record(ctx: JobContext, env: str, unit: str, summary: PlanSummary,
                  state: StateSnapshot) -> dict[str, Any]:
    """This attempt's plan counts plus what the state holds; when the plan changed nothing but
    the state moved on since the unit's last record, what the earlier attempt applied."""
    record: dict[str, Any] = {**summary.to_dict(), "state": state.to_dict()}
    if summary.has_changes:
        return record
    with Session(ctx.engine) as session:
        last = session.exec(select(UnitApply).where(
            UnitApply.environment == env, UnitApply.unit == unit)
            .order_by(col(UnitApply.id).desc())).first()
    recorded = StateSnapshot.from_dict(last.summary.get("state")) if last is not None else None
    if last is not None and recorded is not None and recorded.empty:
        return record  # recorded before states were: nothing to compare with
    if state.moved_on_from(recorded):
        record["earlier_attempt"] = state.since(recorded)
        ctx.log(f"{env}/{unit}: the state moved on since the last record (serial "
                f"{recorded.serial if recorded else 0} → {state.serial}) although this plan "
                "changes nothing: an earlier attempt applied it")
    return record


def _record_apply(ctx: JobContext, env: str, unit: str, action: str, record: dict[str, Any],
                  public: dict[str, object]) -> None:
    with Session(ctx.engine) as session:
        session.add(UnitApply(environment=env, unit=unit, commit=ctx.job.commit, action=action,
                              job_id=ctx.job.id, summary=record, outputs=public))
        try:
            session.commit()
        except IntegrityError:  # recorded by an earlier attempt of this same job
            session.rollback()


def _counts(summary: PlanSummary) -> str:
    return f"{summary.add} to add, {summary.change} to change, {summary.destroy} to destroy"


# ---- plan previews on open pull requests --------------------------------------------------------


def _preview_unit(ctx: JobContext, runner: TerraformRunner, env: str,
                  infra: InfraManifest | None, unit: str, mode: str, *,
                  planned: bool) -> dict[str, Any]:
    """One unit of a preview: ``{"status": "planned", add, change, destroy, resources, …}``,
    ``{"status": "no-change"}`` (not among the units to plan: its inputs did not change),
    ``{"status": "waiting", "after": [units]}`` (needs outputs of units not applied yet) or
    ``{"status": "error", "message"}``."""
    if not planned or infra is None:
        return {"status": NO_CHANGE}
    ref = UnitRef(env=env, unit=unit, provider=infra.provider)
    try:
        summary = runner.plan_preview(ref, _variables(ctx, runner, env, infra, unit),
                                      destroy=mode == "destroy", log=ctx.log)
    except MissingUpstreamOutput as exc:
        return {"status": WAITING, "after": exc.upstreams}
    except TerraformError as exc:
        return {"status": ERROR, "message": exc.message}
    return {"status": PLANNED, **summary.to_dict()}


def plan_preview(ctx: JobContext) -> Result:
    """Plan (never apply) the units an open PR's ``infra.yaml`` changes would touch; post the
    summary as the PR's ``plan`` comment and a ``terraform-plan`` check."""
    number = int(ctx.job.payload["change"])
    change = ctx.forge.get_change(number)
    if change.head_sha != ctx.job.commit:
        return Result(message=f"PR #{number} moved on to {change.head_sha[:12]}; "
                      "this preview is stale and was not run")
    main = ctx.forge.head(ctx.settings.main_branch)
    envs = changed_environments(ctx.forge.changed_paths(change.base_sha, change.head_sha))
    if not envs:
        return Result(message="no envs/<env>/infra.yaml in this change: nothing to plan")
    runner = TerraformRunner(ctx.settings)
    sections: list[str] = []
    detail: dict[str, Any] = {}
    rows: list[dict[str, Any]] = []
    failed = False
    for env in envs:
        try:
            new = read_manifest(ctx, env, change.head_sha)
            old = read_manifest(ctx, env, main)
        except CaasError as exc:
            sections.append(f"### {env}\n\ninfra.yaml is invalid: {exc.message}")
            failed = True
            continue
        mode, units = plan_mode(old, new), changed_units(old, new)
        infra = new or old
        lines = [f"### {env} ({mode})", "", "| unit | add | change | destroy |",
                 "|---|---|---|---|"]
        # Every unit of the environment, in the order they would run: planned, no change
        # (its inputs did not change), waiting for upstream outputs, or an error.
        for unit in list(reversed(UNIT_ORDER)) if mode == "destroy" else UNIT_ORDER:
            outcome = _preview_unit(ctx, runner, env, infra, unit, mode,
                                    planned=unit in units and infra is not None)
            rows.append({"unit": f"{env}/{unit}", **outcome})
            if outcome["status"] == PLANNED:
                detail[f"{env}/{unit}"] = {k: v for k, v in outcome.items() if k != "status"}
                lines.append(f"| {unit} | {outcome['add']} | {outcome['change']} | "
                             f"{outcome['destroy']} |")
            else:
                failed = failed or outcome["status"] == ERROR
                lines.append(f"| {unit} | {status_text(outcome)} | | |")
        sections.append("\n".join(lines))
    body = "## Terraform plan preview\n\nNothing is applied before the merge.\n\n" + \
        "\n\n".join(sections)
    ctx.forge.comment(number, body, key="plan")
    ctx.forge.set_check(number, Check(
        name="terraform-plan", state=CheckState.failure if failed else CheckState.success,
        description="plan failed for a unit" if failed else
        f"planned {len(detail)} unit(s) in {', '.join(envs)}"))
    result = Result(message=f"plan preview for PR #{number}: {len(detail)} unit(s)",
                    detail={"plans": detail, "units": rows, "environments": envs})
    if failed:
        raise PermanentError("plan preview failed for at least one unit (see the PR comment)")
    return result
