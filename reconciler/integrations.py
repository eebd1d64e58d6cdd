"""Job handlers for the cluster and identity adapters: ArgoCD objects and Keycloak groups.

Either adapter, when not configured, makes its job ``skipped`` with the reason (visible in the
job list and the catalog timeline), never a silent success. Adapter errors are already
``TemporaryError``/``PermanentError`` (``reconciler.errors``) and reach the worker unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from sqlmodel import Session

from catalog import service as catalog_service
from gitops import object_names, yaml
from reconciler.adapters import NotConfigured
from reconciler.argocd import KINDS, ArgoCDApplier
from reconciler.context import JobContext, Result
from reconciler.errors import PermanentError
from reconciler.keycloak import GroupSpec, KeycloakSync, groups_from_team

# Files whose objects the applier owns (everything else reaches the cluster through ArgoCD).
_MANAGED = (re.compile(r"^bootstrap/[^/]+\.ya?ml$"), re.compile(r"^appsets/[^/]+\.ya?ml$"),
            re.compile(r"^teams/[^/]+/appproject\.ya?ml$"),
            re.compile(r"^platform/[^/]+/application\.ya?ml$"))
_TENANT_ENV = re.compile(r"^tenants/([^/]+)/([^/]+)/envs/([^/]+)/")
_APPLICATION = re.compile(r"^applications/([^/]+)/([^/]+)/")
_APPLICATION_ENV = re.compile(r"^applications/([^/]+)/([^/]+)/envs/([^/]+)/")
# Root Applications of the App of Apps, by the folder they watch.
_ROOTS = {"platform": "platform", "appsets": "appsets", "teams": "teams", "envs": "clusters"}
_SYNC = {"Synced": "synced", "OutOfSync": "out-of-sync"}
_HEALTH = {"Healthy": "healthy", "Degraded": "degraded", "Progressing": "progressing",
           "Missing": "missing", "Unknown": "unknown"}


def _documents(text: bytes, path: str) -> Iterator[dict[str, Any]]:
    try:
        docs = yaml.load_all(text)
    except yaml.YamlError as exc:
        raise PermanentError(f"{path} is not valid YAML: {exc}") from None
    for doc in docs:
        if isinstance(doc, dict) and str(doc.get("apiVersion", "")).startswith("argoproj.io/") \
                and doc.get("kind") in KINDS:
            yield doc


def affected_applications(paths: list[str]) -> dict[str, str]:
    """Application name → the catalog entity it belongs to ("" for platform ones)."""
    apps: dict[str, str] = {}
    for path in paths:
        if m := _TENANT_ENV.match(path):
            name = object_names.tenant_application(m.group(2), m.group(3))
            apps[name] = f"namespace:{m.group(1)}/{m.group(2)}"
        elif m := _APPLICATION_ENV.match(path):
            name = object_names.team_application(m.group(1), m.group(2), m.group(3))
            apps[name] = f"application:{m.group(1)}/{m.group(2)}"
        elif (m := _APPLICATION.match(path)) and not path.endswith("/.caas-answers.yaml"):
            name = object_names.team_application(m.group(1), m.group(2))
            apps[name] = f"application:{m.group(1)}/{m.group(2)}"
        elif (root := _ROOTS.get(path.split("/", 1)[0])) is not None:
            apps.setdefault(root, "")
    return apps


def argocd(ctx: JobContext) -> Result:
    """Apply the merge's changed AppProjects/ApplicationSets/root Applications as they are at
    the head of main (``JobContext.desired_commit``); refresh and read back the Applications the
    change affects."""
    try:
        applier = ArgoCDApplier.from_settings(ctx.settings, ctx.clients)
    except NotConfigured as exc:
        return Result.skipped(f"skipped: ArgoCD {exc.reason}",
                              setting=exc.field or "CAAS_KUBECONFIG")
    paths = [str(p) for p in ctx.job.payload.get("paths") or []]
    head = ctx.desired_commit()
    if head != ctx.job.commit:
        ctx.log(f"applying {ctx.job.commit[:12]}'s paths as they are at main {head[:12]}")
    manifests: list[dict[str, Any]] = []
    for path in paths:
        if not any(p.match(path) for p in _MANAGED):
            continue
        content = ctx.forge.read_file(path, head)
        if content is None:
            ctx.log(f"{path} removed: its objects are pruned by ArgoCD, not deleted here")
            continue
        manifests.extend(_documents(content, path))
    applied = applier.apply_all(manifests)
    for item in applied:
        ctx.log(f"applied {item.kind} {item.namespace}/{item.name}")
    apps = affected_applications(paths)
    statuses: dict[str, dict[str, str | None]] = {}
    for name, entity in sorted(apps.items()):
        if not applier.refresh(name):
            ctx.log(f"Application {name} does not exist (yet): ArgoCD creates it")
            continue
        status = applier.status(name)
        statuses[name] = {"sync": status.sync, "health": status.health}
        ctx.log(f"Application {name}: sync {status.sync}, health {status.health}")
        if entity:
            _record_status(ctx, entity, status.sync, status.health)
    return Result(message=f"applied {len(applied)} ArgoCD objects, refreshed {len(statuses)}",
                  detail={"applied": [f"{a.kind}/{a.name}" for a in applied],
                          "applications": statuses})


def _record_status(ctx: JobContext, entity: str, sync: str | None, health: str | None) -> None:
    with Session(ctx.engine) as session:
        if sync in _SYNC:
            catalog_service.set_status(session, entity=entity, status=_SYNC[sync])
        if health in _HEALTH:
            catalog_service.set_status(session, entity=entity, status=_HEALTH[health])
        session.commit()


def keycloak(ctx: JobContext) -> Result:
    """The derived groups of every changed team (``team-<team>``: owners and members,
    ``team-<team>-admins``: owners) with their exact members, and the platform-admin user in
    the platform admins' group. A team file naming any other group fails the job permanently
    before anything is written. Team files are read at the head of main
    (``JobContext.desired_commit``), so a late merge event cannot restore old members."""
    teams = [str(t) for t in ctx.job.payload.get("teams") or []]
    try:
        sync = KeycloakSync.from_settings(ctx.settings, ctx.clients)
    except NotConfigured as exc:
        return Result.skipped(f"skipped: Keycloak {exc.reason}",
                              setting=exc.field or "CAAS_KEYCLOAK_URL")
    head = ctx.desired_commit()
    groups: list[GroupSpec] = []
    for team in teams:
        path = f"teams/{team}/team.yaml"
        content = ctx.forge.read_file(path, head)
        if content is None:
            ctx.log(f"{path} removed: its Keycloak groups are kept (members may own data)")
            continue
        try:
            doc = yaml.load(content)
        except yaml.YamlError as exc:
            raise PermanentError(f"{path} is not valid YAML: {exc}") from None
        if not isinstance(doc, dict):
            raise PermanentError(f"{path} must hold a mapping")
        found = groups_from_team(team, doc, platform_groups=(ctx.settings.oidc_admin_group,))
        ctx.log(f"team {team}: groups {', '.join(g.name for g in found)}")
        groups.extend(found)
    report = sync.sync(groups)
    ctx.log(report.summary())
    if report.missing_users:
        ctx.log("users not in Keycloak yet (the worker's periodic Keycloak resync adds them "
                "once they exist): "
                + ", ".join(sorted(report.missing_users)))
    return Result(message=f"Keycloak: {report.summary()}", detail={
        "created_groups": report.created_groups,
        "added": [list(pair) for pair in report.added],
        "removed": [list(pair) for pair in report.removed],
        "renamed": [list(pair) for pair in report.renamed], "marked": report.marked,
        "missing_users": report.missing_users})
