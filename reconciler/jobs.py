"""Job handlers, one per job kind, and the registry the worker dispatches on.

``plan`` turns a recorded merge into the other jobs (after checking the commit is on main),
``catalog`` re-indexes what the merge changed; Terraform, ArgoCD and Keycloak handlers live in
their own modules.
"""

from __future__ import annotations

from sqlmodel import Session

from catalog import service as catalog_service
from reconciler import queue, service, tfplan, wakeup
from reconciler.context import Handler, JobContext, Result
from reconciler.entities import entities_for_paths
from reconciler.errors import PermanentError
from reconciler.models import JobKind
from reconciler.planner import plan_merge


def plan(ctx: JobContext) -> Result:
    """Verify the merge commit is on main, read what changed, queue the units."""
    job, forge = ctx.job, ctx.forge
    if not forge.is_ancestor(job.commit, ctx.settings.main_branch):
        reason = f"commit {job.commit[:12]} is not reachable from {ctx.settings.main_branch}"
        with Session(ctx.engine, expire_on_commit=False) as session:
            service.refuse_merge(session, commit=job.commit, reason=reason)
            session.commit()
        raise PermanentError(f"refused: {reason}; nothing will be applied")
    before = job.payload.get("before")
    full = not before
    paths = forge.list_files(ref=job.commit) if full else forge.changed_paths(str(before),
                                                                              job.commit)
    ctx.log(f"{len(paths)} changed paths" + (" (first commit seen: everything)" if full else ""))
    jobs = plan_merge(paths, full=full,
                      terraform=lambda env: tfplan.plan_environment(ctx, env, before),
                      gone=lambda path: forge.read_file(path, job.commit) is None)
    with Session(ctx.engine, expire_on_commit=False) as session:
        queue.enqueue(session, commit=job.commit, jobs=jobs, change_number=job.change_number)
        service.mark_planned(session, commit=job.commit, paths=paths[:5000],
                             entities=entities_for_paths(paths))
        session.commit()
    wakeup.notify()
    units = [j.unit for j in jobs]
    ctx.log("planned: " + ", ".join(units))
    return Result(message=f"planned {len(units)} jobs", detail={"units": units,
                                                                "paths": len(paths)})


def catalog(ctx: JobContext) -> Result:
    """Index the entities of the merge's changed paths into the catalog, as they are at the
    head of main now: a merge learned late (the poller, a redelivered webhook) must not bring
    back what a later merge changed or removed, and a re-run is idempotent."""
    raw = ctx.job.payload.get("paths")
    changed = [str(p) for p in raw] if isinstance(raw, list) else None
    head = ctx.desired_commit()
    with Session(ctx.engine, expire_on_commit=False) as session:
        result = catalog_service.index_commit(session, forge=ctx.forge, commit=head,
                                              changed=changed)
    ctx.log(f"catalog indexed {ctx.job.commit[:12]}'s paths at main {head[:12]}: "
            f"{len(result.added)} added, "
            f"{len(result.changed)} changed, {len(result.removed)} removed, "
            f"{len(result.flagged)} flagged")
    return Result(message="catalog updated", detail={
        "added": result.added[:100], "changed": result.changed[:100],
        "removed": result.removed[:100], "flagged": result.flagged[:100]})


def pr_checks(ctx: JobContext) -> Result:
    """The checks of an open PR's head that report after it opened (``scaffolder.pr_checks``:
    statuses on the forge, stored on the change); a retry computes and reports the same."""
    from scaffolder import service as scaffolder_service

    number = int(ctx.job.payload["change"])
    with Session(ctx.engine, expire_on_commit=False) as session:
        message = scaffolder_service.run_pr_checks(session, forge=ctx.forge, number=number,
                                                   sha=ctx.job.commit)
    ctx.log(message)
    return Result(message=message)


def handlers() -> dict[str, Handler]:
    # The adapters (terraform CLI, kubernetes client, python-keycloak) load with the first
    # worker, not with every module that plans or lists jobs.
    from reconciler.integrations import argocd, keycloak
    from reconciler.removal import remove
    from reconciler.tfjobs import plan_preview, run_unit

    return {
        JobKind.plan.value: plan,
        JobKind.catalog.value: catalog,
        JobKind.terraform.value: run_unit,
        JobKind.plan_preview.value: plan_preview,
        JobKind.argocd.value: argocd,
        JobKind.keycloak.value: keycloak,
        JobKind.remove.value: remove,
        JobKind.pr_checks.value: pr_checks,
    }
