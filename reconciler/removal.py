"""After a decommission merge: remove what the deleted unit ran, bottom-up, one job per step.

``removal_jobs(paths, gone)`` plans, for each unit whose ``.caas-answers.yaml`` the merge
deleted (``gone(path)`` is True when the file is absent at the merge commit):

- an application ``applications/<team>/<app>``: ``remove:app.<team>.<app>`` deletes its ArgoCD
  Applications (``app.<team>.<app>.<env>`` per deleted ``envs/<env>/`` folder; the older
  single-file layout's ``app.<team>.<app>``) and waits until ArgoCD's finalizer lets them go;
- a namespace ``tenants/<team>/<ns>``: ``remove:tenant.<ns>`` deletes the Applications of its
  environment overlays (``tenant.<ns>.<env>``) and waits for them, then
  ``remove:namespace/<ns>`` (depending on it) deletes the Namespace and waits for its
  termination;
- a team ``teams/<team>`` (decommissioned only once it has no namespace left):
  ``remove:team/<team>`` deletes the team's Keycloak groups (``portal.groups.team_groups``)
  that the portal created (they carry its mark; a group without it is left, the job fails).

Each job is idempotent (a 404 is "already gone"). Waiting for a finalizer or a termination is
not a failure: the job raises ``Waiting``, so the queue looks again every
``worker_wait_poll_s`` without spending one of its attempts, until ``worker_wait_deadline_s``
(then it fails, naming what is still there); an API error is a temporary error, retried with
backoff like any job. Each finished step is audited and put on the entity's catalog timeline
(``removed.application``, ``removed.namespace``, ``removed.keycloak``). The order follows
ArgoCD's deletion rules: an Application with ``resources-finalizer.argocd.argoproj.io`` deletes
its resources first (https://argo-cd.readthedocs.io/en/stable/user-guide/app_deletion/);
deleting the Namespace before would leave ArgoCD syncing into a terminating namespace.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from sqlmodel import Session

from catalog import service as catalog_service
from gitops import object_names
from portal.auth import audit
from portal.groups import GroupRuleError, team_groups
from reconciler.adapters import NotConfigured
from reconciler.context import JobContext, Result
from reconciler.errors import PermanentError, Waiting
from reconciler.models import JobKind
from reconciler.queue import NewJob

ANSWERS = ".caas-answers.yaml"
_APP = re.compile(r"^applications/([^/]+)/([^/]+)/\.caas-answers\.yaml$")
_TENANT = re.compile(r"^tenants/([^/]+)/([^/]+)/\.caas-answers\.yaml$")
_TEAM = re.compile(r"^teams/([^/]+)/\.caas-answers\.yaml$")
_OVERLAY = re.compile(r"^tenants/[^/]+/([^/]+)/envs/([^/]+)/")
_APP_OVERLAY = re.compile(r"^applications/([^/]+)/([^/]+)/envs/([^/]+)/")
ACTOR = "reconciler"


def removal_jobs(paths: Sequence[str], *, gone: Callable[[str], bool]) -> list[NewJob]:
    """The removal jobs of the units a merge deleted (see the module docstring)."""
    jobs: list[NewJob] = []
    overlays: dict[str, set[str]] = {}
    app_envs: dict[tuple[str, str], set[str]] = {}
    for path in paths:
        if m := _OVERLAY.match(path):
            overlays.setdefault(m.group(1), set()).add(m.group(2))
        elif m := _APP_OVERLAY.match(path):
            app_envs.setdefault((m.group(1), m.group(2)), set()).add(m.group(3))
    for path in sorted(paths):
        if (m := _APP.match(path)) and gone(path):
            team, app = m.group(1), m.group(2)
            name = object_names.team_application(team, app)
            # One Application per environment folder; the older single file had one.
            names = sorted(object_names.team_application(team, app, env)
                           for env in app_envs.get((team, app), set())) or [name]
            jobs.append(NewJob(unit=f"remove:{name}", kind=JobKind.remove.value,
                               payload={"step": "applications", "names": names},
                               entities=(f"application:{team}/{app}",)))
        elif (m := _TENANT.match(path)) and gone(path):
            team, namespace = m.group(1), m.group(2)
            entity = (f"namespace:{team}/{namespace}",)
            names = sorted(object_names.tenant_application(namespace, env)
                           for env in overlays.get(namespace, set()))
            first = f"remove:tenant.{namespace}"
            jobs.append(NewJob(unit=first, kind=JobKind.remove.value,
                               payload={"step": "applications", "names": names},
                               entities=entity))
            jobs.append(NewJob(unit=f"remove:namespace/{namespace}", kind=JobKind.remove.value,
                               depends_on=first, entities=entity,
                               payload={"step": "namespace", "names": [namespace]}))
        elif (m := _TEAM.match(path)) and gone(path):
            team = m.group(1)
            try:
                names = list(team_groups(team).all)
            except GroupRuleError:
                continue  # a name the group rule refuses never had groups
            jobs.append(NewJob(unit=f"remove:team/{team}", kind=JobKind.remove.value,
                               payload={"step": "keycloak", "names": names},
                               entities=(f"team:{team}",)))
    return jobs


def remove(ctx: JobContext) -> Result:
    """One removal step: delete, then wait (a temporary error) until every object is gone."""
    step = str(ctx.job.payload.get("step") or "")
    names = [str(n) for n in ctx.job.payload.get("names") or []]
    if step == "keycloak":
        return _remove_groups(ctx, names)
    if step not in ("applications", "namespace"):
        raise PermanentError(f"unknown removal step {step!r}")
    from reconciler.argocd import ClusterRemover  # the kubernetes client loads with a worker

    try:
        remover = ClusterRemover.from_settings(ctx.settings, ctx.clients)
    except NotConfigured as exc:
        return Result.skipped(f"skipped: the cluster is {exc.reason}",
                              setting=exc.field or "CAAS_KUBECONFIG")
    delete = remover.delete_application if step == "applications" else remover.delete_namespace
    remaining = [name for name in names if delete(name)]
    what = "Application" if step == "applications" else "Namespace"
    if remaining:
        ctx.log(f"waiting for {what} {', '.join(remaining)} to be gone")
        raise Waiting(f"{what} {', '.join(remaining)} still exists (finalizer or "
                      "termination in progress)")
    _audit(ctx, step, names)
    ctx.log(f"{what} gone: {', '.join(names) or 'none'}")
    return Result(message=f"removed {len(names)} {what}(s)", detail={"removed": names})


def _remove_groups(ctx: JobContext, names: list[str]) -> Result:
    from reconciler.keycloak import KeycloakSync  # python-keycloak loads with a worker

    try:
        sync = KeycloakSync.from_settings(ctx.settings, ctx.clients)
    except NotConfigured as exc:
        return Result.skipped(f"skipped: Keycloak {exc.reason}",
                              setting=exc.field or "CAAS_KEYCLOAK_URL")
    deleted = [name for name in names if sync.delete_group(name)]
    _audit(ctx, "keycloak", names)
    ctx.log(f"Keycloak groups gone: {', '.join(names)} (deleted now: {len(deleted)})")
    return Result(message=f"removed {len(deleted)} Keycloak group(s)",
                  detail={"removed": names, "deleted": deleted})


TIMELINE = {"applications": "removed.application", "namespace": "removed.namespace",
            "keycloak": "removed.keycloak"}


def _audit(ctx: JobContext, step: str, names: list[str]) -> None:
    """The step in the audit log (one event per object) and on the timeline of the
    decommissioned entity (one event per step)."""
    with Session(ctx.engine) as session:
        for name in names:
            audit.record(session, actor=ACTOR, action=f"reconciler.remove.{step}",
                         target=name, detail={"commit": ctx.job.commit, "job": ctx.job.id},
                         commit=False)
        for entity in ctx.job.entities:
            catalog_service.record_timeline(
                session, entity=entity, event=TIMELINE[step], actor=ACTOR,
                detail={"unit": ctx.job.unit, "commit": ctx.job.commit[:12],
                        "message": ", ".join(names) or "nothing left to remove"})
        session.commit()
