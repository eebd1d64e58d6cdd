"""Names of the objects the GitOps repository generates, unambiguous by construction.

Objects that share a scope — ArgoCD Applications and AppProjects (one ``argocd`` namespace),
Grafana dashboard uids (one Grafana), Namespaces (one cluster) — get names built from the unit's
repository path. Every part is a DNS-1123 label (``[a-z0-9-]``, no dot), so joining parts with
``.`` and starting with a fixed kind word can be split back into exactly one (kind, parts):

- tenant Application  ``tenant.<namespace>.<env>``   (appsets/tenants.yaml)
- team Application    ``app.<team>.<application>.<env>``  (appsets/applications.yaml:
  one per folder ``applications/<team>/<application>/envs/<env>/``); a unit still in the
  layout before per-environment folders keeps ``app.<team>.<application>``
  (appsets/applications-legacy.yaml) until a template upgrade moves it
- team AppProject     ``<team>``; the platform's own project is ``caas.platform`` (a dot: no
  team can be called that) and ArgoCD's built-in ``default`` is reserved.

Application names are DNS-1123 subdomains (up to 253 characters); past 63 characters ArgoCD
needs annotation resource tracking, which ``platform/argocd/values.yaml`` sets
(https://argo-cd.readthedocs.io/en/stable/user-guide/resource_tracking/). The ApplicationSets
write the same names with Go templates; tests/templates/test_isolation.py expands them over a
repository and compares with these functions.

Namespaces are ``<team>-<name>``, which is *not* injective (``pay`` + ``web-api`` and
``pay-web`` + ``api`` meet); and a Grafana uid holds at most 40 characters. Both are therefore
also checked: ``generated_names(unit)`` lists every shared-scope name a unit owns, and the
scaffolder's collision check refuses a unit whose names meet another unit's, on main or in an
open change.
"""

from __future__ import annotations

PLATFORM_PROJECT = "caas.platform"
RESERVED_PROJECTS = frozenset({"default", PLATFORM_PROJECT})
# Grafana refuses dashboard uids longer than 40 characters.
DASHBOARD_UID_MAX = 40


def tenant_application(namespace: str, env: str) -> str:
    """The Application for ``tenants/<team>/<namespace>/envs/<env>``."""
    return f"tenant.{namespace}.{env}"


def team_application(team: str, application: str, env: str | None = None) -> str:
    """The Application for ``applications/<team>/<application>/envs/<env>/application.yaml``;
    without ``env``, the one of the older single-file layout
    (``applications/<team>/<application>/application.yaml``). Four parts against three: the
    two forms never meet."""
    return f"app.{team}.{application}" + (f".{env}" if env else "")


def app_project(team: str) -> str:
    """The team's AppProject (``teams/<team>/appproject.yaml``)."""
    return team


def dashboard_uid(namespace: str) -> str:
    """The tenant dashboard's Grafana uid: the namespace, cut to Grafana's 40 characters."""
    return namespace[:DASHBOARD_UID_MAX]


def generated_names(unit: str) -> list[tuple[str, str]]:
    """(scope, name) of every shared-scope object the unit at ``unit`` (a repository folder
    such as ``tenants/pay/pay-web``) generates whose uniqueness does not follow from its path.

    Tenant Applications are left out: ``tenant.<namespace>.<env>`` is unique once the namespace
    is, and the namespace is listed.
    """
    parts = unit.strip("/").split("/")
    if parts[0] == "tenants" and len(parts) >= 3:
        return [("Namespace", parts[2]), ("Grafana dashboard uid", dashboard_uid(parts[2]))]
    if parts[0] == "applications" and len(parts) >= 3:
        return [("ArgoCD Application", team_application(parts[1], parts[2]))]
    if parts[0] == "teams" and len(parts) >= 2:
        return [("ArgoCD AppProject", app_project(parts[1]))]
    if parts[0] == "envs" and len(parts) >= 2:
        return [("ArgoCD cluster", parts[1])]
    return []


def units_in(paths: list[str] | tuple[str, ...]) -> set[str]:
    """The unit folders that the repository paths ``paths`` (files) belong to."""
    units: set[str] = set()
    for path in paths:
        parts = path.split("/")
        if parts[0] in ("tenants", "applications") and len(parts) >= 4:
            units.add("/".join(parts[:3]))
        elif parts[0] in ("teams", "envs") and len(parts) >= 3:
            units.add("/".join(parts[:2]))
    return units
