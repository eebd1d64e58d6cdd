"""Changed paths → units → jobs. Pure: reading old and new manifests is the caller's callback.

- every merge: one ``catalog`` job (index the changed paths of main);
- ``envs/<env>/infra.yaml``: the Terraform units whose inputs changed and their dependants, in
  order, each waiting for the previous one (the callback asks the Terraform layer);
- ``bootstrap/``, ``appsets/``, ``platform/``, ``teams/``, ``tenants/``: one ``argocd`` job
  (AppProjects, ApplicationSets, the root Application, refresh of affected Applications);
- ``teams/``: one ``keycloak`` job (a group per team, its members).

The planner only looks at the list of changed paths, so its cost does not grow with the size
of the repository.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from gitops import layout
from reconciler.entities import entities_for_paths
from reconciler.models import JobKind
from reconciler.queue import NewJob
from reconciler.removal import removal_jobs

TerraformPlanner = Callable[[str], list[NewJob]]


def plan_merge(paths: Sequence[str], *, terraform: TerraformPlanner,
               full: bool = False, gone: Callable[[str], bool] | None = None) -> list[NewJob]:
    """The jobs a merge that changed ``paths`` needs, in the order they should run.

    ``full`` marks a merge without a known predecessor (the first commit the reconciler sees):
    the catalog reindexes everything rather than a list of paths. ``gone(path)`` says a changed
    path is absent at the merge commit: units whose answers file went get their removal jobs
    (``reconciler.removal``).
    """
    jobs = [NewJob(unit="catalog", kind=JobKind.catalog.value,
                   payload={"paths": None if full else list(paths)},
                   entities=tuple(entities_for_paths(paths)))]
    for env in layout.changed_environments(paths):
        jobs.extend(terraform(env))
    argocd_paths = [p for p in paths if p.startswith(layout.ARGOCD_FOLDERS)]
    if argocd_paths:
        jobs.append(NewJob(unit="argocd", kind=JobKind.argocd.value,
                           payload={"paths": argocd_paths},
                           entities=tuple(entities_for_paths(argocd_paths))))
    if gone is not None and not full:
        jobs.extend(removal_jobs(paths, gone=gone))
    teams = layout.changed_teams(paths)
    if teams:
        jobs.append(NewJob(unit="keycloak", kind=JobKind.keycloak.value,
                           payload={"teams": teams},
                           entities=tuple(f"team:{t}" for t in teams)))
    return jobs


def terraform_unit_name(env: str, unit: str) -> str:
    """The job's unit key: ``terraform:<env>/<unit>``."""
    return f"terraform:{env}/{unit}"
