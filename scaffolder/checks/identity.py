"""The identity boundary of team-owned files: what a change under ``teams/<team>/`` or
``tenants/<team>/`` may grant, checked when a change is requested and again when it merges.

A change to a team's folders is approved inside the team (CODEOWNERS), so nothing in them may
reach a platform group or another team's group. ``check_identity(files, platform_groups=...)``
raises ``portal.groups.GroupRuleError`` (422, the field is ``<path>: <where>``) when:

- ``teams/<team>/team.yaml``: ``metadata.name`` is not ``<team>``, or ``spec.keycloakGroup`` /
  ``spec.groups.{edit,admin,view}`` differ from the derived groups (rule ``team-group``: the
  message says whether the value is a platform group or another team's group);
- ``teams/<team>/catalog-info.yaml``: the ``caas.io/keycloak-group`` annotation is not the
  team's developers group;
- an ``AppProject`` in ``teams/<team>/``: its name is not ``<team>``, a role lists a group that
  is not one of the team's groups (ArgoCD maps those groups to the role: argo-cd docs,
  "Projects" → "Project Roles"), or a role's policy names another subject than the role or an
  object outside the project (rule ``project-policy``);
- a ``RoleBinding`` in ``tenants/<team>/``: a ``Group`` subject that is not one of the team's
  groups (Kubernetes RBAC: the group is matched against the token's groups claim);
- a ``ClusterRoleBinding`` or ``ClusterRole`` in either folder (cluster-wide grants are the
  platform's).

Files that do not parse are left to the manifest checks. ``CODEOWNERS`` is generated from the
team names (``scaffolder.codeowners``), never from what a team file says.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from gitops import yaml
from portal.groups import (
    GroupRuleError,
    TeamRole,
    check_team_file,
    check_team_group,
    check_team_name,
    team_groups,
)

_CLUSTER_KINDS = {"ClusterRoleBinding", "ClusterRole"}


def _docs(content: bytes) -> Iterator[Mapping[str, Any]]:
    try:
        docs = yaml.load_all(content)
    except yaml.YamlError:
        return
    for doc in docs:
        if isinstance(doc, Mapping):
            yield doc


def _owner(path: str) -> str | None:
    parts = path.split("/")
    if len(parts) >= 3 and parts[0] in ("teams", "tenants"):
        return parts[1]
    return None


def check_identity(files: Mapping[str, bytes | None], *, platform_groups: Iterable[str]) -> None:
    """Refuse the first file in ``files`` (path → content; ``None`` = deleted) that reaches
    beyond its team's identity (see the module docstring)."""
    platform = tuple(platform_groups)
    for path in sorted(files):
        content = files[path]
        team = _owner(path)
        if content is None or team is None or not path.endswith((".yaml", ".yml")):
            continue
        check_team_name(team, field=f"{path}: folder")
        for doc in _docs(content):
            _check_doc(path, team, doc, platform)


def _check_doc(path: str, team: str, doc: Mapping[str, Any], platform: tuple[str, ...]) -> None:
    kind = doc.get("kind")
    metadata = doc.get("metadata") if isinstance(doc.get("metadata"), Mapping) else {}
    assert isinstance(metadata, Mapping)
    spec = doc.get("spec") if isinstance(doc.get("spec"), Mapping) else {}
    assert isinstance(spec, Mapping)
    groups = team_groups(team, field=f"{path}: folder")
    if kind in _CLUSTER_KINDS:
        raise GroupRuleError(f"{path}: a {kind} grants cluster-wide; team folders may only "
                             "hold namespaced RBAC", field=f"{path}: kind", rule="cluster-rbac")
    if kind == "Team" and path.startswith("teams/"):
        check_team_file(team, doc, where=path, platform_groups=platform)
    elif kind == "Group" and path.startswith("teams/"):
        annotations = metadata.get("annotations")
        if isinstance(annotations, Mapping) and "caas.io/keycloak-group" in annotations:
            check_team_group(annotations["caas.io/keycloak-group"], team=team,
                             role=TeamRole.developers, platform_groups=platform,
                             field=f"{path}: metadata.annotations.caas.io/keycloak-group")
    elif kind == "AppProject":
        if path.startswith("teams/") and metadata.get("name") != team:
            raise GroupRuleError(f"the AppProject of team {team!r} must be named {team!r}",
                                 field=f"{path}: metadata.name", rule="team-name")
        for index, role in enumerate(spec.get("roles") or []):
            if not isinstance(role, Mapping):
                continue
            for number, group in enumerate(role.get("groups") or []):
                _own_group(group, groups.all, team, platform,
                           f"{path}: spec.roles[{index}].groups[{number}]")
            for number, line in enumerate(role.get("policies") or []):
                _own_policy(line, team, str(role.get("name")),
                            f"{path}: spec.roles[{index}].policies[{number}]")
    elif kind == "RoleBinding":
        for index, subject in enumerate(doc.get("subjects") or []):
            if isinstance(subject, Mapping) and subject.get("kind") == "Group":
                _own_group(subject.get("name"), groups.all, team, platform,
                           f"{path}: subjects[{index}].name")


def _own_policy(line: object, team: str, role: str, field: str) -> None:
    """``p, proj:<team>:<role>, <resource>, <action>, <team>/<object>, allow|deny`` (argo-cd
    docs, "RBAC Configuration" → project roles): a role's policy may only name its own role
    as subject and objects of its own project."""
    parts = [p.strip() for p in line.split(",")] if isinstance(line, str) else []
    if (len(parts) == 6 and parts[0] == "p" and parts[1] == f"proj:{team}:{role}"
            and parts[4].startswith(f"{team}/") and parts[5] in ("allow", "deny")):
        return
    raise GroupRuleError(f"{str(line)[:200]!r}: a role of project {team!r} may only grant "
                         f"'p, proj:{team}:{role}, <resource>, <action>, {team}/<name>, "
                         "allow|deny'", field=field, rule="project-policy")


def _own_group(value: object, own: tuple[str, ...], team: str, platform: tuple[str, ...],
               field: str) -> None:
    if value in own:
        return
    # Report it against the closest role so the message names what the value is.
    check_team_group(value, team=team, role=TeamRole.developers, field=field,
                     platform_groups=platform)
