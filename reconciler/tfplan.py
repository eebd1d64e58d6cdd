"""Planning an environment: which Terraform units a change to ``envs/<env>/infra.yaml`` needs.

The old manifest (at the merge's predecessor) and the new one (at the merge commit) go to the
Terraform layer's ``changed_units``: the units whose inputs changed plus their dependants, in
order — or every unit in reverse order when the environment is uninstalled. Each unit becomes a
job that waits for the one before it.
"""

from __future__ import annotations

from gitops.environment import InfraManifest, load_infra_text
from portal.errors import CaasError
from reconciler.context import JobContext
from reconciler.models import JobKind
from reconciler.planner import terraform_unit_name
from reconciler.queue import NewJob
from reconciler.units import changed_units, plan_mode


def infra_path(env: str) -> str:
    return f"envs/{env}/infra.yaml"


def read_manifest(ctx: JobContext, env: str, ref: str | None) -> InfraManifest | None:
    """The manifest at ``ref``; None when absent there. Invalid YAML raises ``CaasError``."""
    if not ref:
        return None
    raw = ctx.forge.read_file(infra_path(env), ref)
    if raw is None:
        return None
    return load_infra_text(raw.decode("utf-8", errors="replace"), env=env)


def plan_environment(ctx: JobContext, env: str, before: object) -> list[NewJob]:
    entity = (f"environment:{env}",)
    try:
        new = read_manifest(ctx, env, ctx.job.commit)
    except CaasError as exc:
        # One visible failed job for the environment; the merge's other jobs still run.
        ctx.log(f"envs/{env}/infra.yaml is invalid: {exc.message}")
        return [NewJob(unit=terraform_unit_name(env, "manifest"), kind=JobKind.terraform.value,
                       environment=env, entities=entity,
                       payload={"env": env, "error": f"{infra_path(env)}: {exc.message}"})]
    try:
        old = read_manifest(ctx, env, str(before) if before else None)
    except CaasError as exc:  # the previous manifest was broken: compare against nothing
        ctx.log(f"previous envs/{env}/infra.yaml was invalid ({exc.message}); planning all units")
        old = None
    mode = plan_mode(old, new)
    units = changed_units(old, new)
    ctx.log(f"environment {env}: {mode}" + (f" {', '.join(units)}" if units else
                                            " (no unit inputs changed)"))
    manifest = new or old
    provider = manifest.provider if manifest is not None else ""
    jobs: list[NewJob] = []
    previous: str | None = None
    for unit in units:
        name = terraform_unit_name(env, unit)
        jobs.append(NewJob(unit=name, kind=JobKind.terraform.value, environment=env,
                           depends_on=previous, entities=entity,
                           payload={"env": env, "unit": unit, "action": mode,
                                    "provider": provider, "before": before or None}))
        previous = name
    return jobs
