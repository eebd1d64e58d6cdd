"""Build real GitOps repositories (bare git, real commits) for the catalog tests."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path

from gitops.git import commit_directory, init_bare, out


def team(name: str, *, owners: tuple[str, ...] = ("alice",),
         members: tuple[str, ...] = ("bob",)) -> dict[str, str]:
    return {
        f"teams/{name}/team.yaml": (
            f"apiVersion: caas.io/v1\nkind: Team\nmetadata:\n  name: {name}\nspec:\n"
            f"  displayName: Team {name.title()}\n  costCenter: CC-{name}\n"
            f"  keycloakGroup: team-{name}\n  owners: {list(owners)}\n"
            f"  members: {list(members)}\n"),
        f"teams/{name}/catalog-info.yaml": (
            "apiVersion: backstage.io/v1alpha1\nkind: Group\n"
            f"metadata:\n  name: {name}\n  description: The {name} team\n"
            "spec:\n  type: team\n  children: []\n"),
    }


def quota(cpu: str, memory: str, storage: str, name: str = "quota") -> str:
    return ("apiVersion: v1\nkind: ResourceQuota\n"
            f"metadata:\n  name: {name}\n"
            f"spec:\n  hard:\n    requests.cpu: \"{cpu}\"\n    requests.memory: {memory}\n"
            f"    requests.storage: {storage}\n")


def tenant(team_name: str, ns: str, envs: Mapping[str, tuple[str, str, str] | None], *,
           base: tuple[str, str, str] = ("1", "2Gi", "10Gi"),
           owner: str | None = None) -> dict[str, str]:
    """A tenant with a base quota and one overlay per environment (None: base quota)."""
    root = f"tenants/{team_name}/{ns}"
    owner_line = f"  owner: group:default/{owner or team_name}\n" if owner != "" else ""
    files = {
        f"{root}/base/namespace.yaml": (
            f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n"),
        f"{root}/base/resourcequota.yaml": quota(*base),
        f"{root}/base/kustomization.yaml": (
            "resources:\n  - namespace.yaml\n  - resourcequota.yaml\n"),
        f"{root}/base/catalog-info.yaml": (
            "apiVersion: backstage.io/v1alpha1\nkind: Resource\n"
            f"metadata:\n  name: {ns}\n  description: Namespace {ns}\n"
            f"spec:\n  type: kubernetes-namespace\n{owner_line}"),
    }
    for env, q in envs.items():
        files[f"{root}/envs/{env}/kustomization.yaml"] = (
            "resources:\n  - ../../base\n" + ("patches:\n  - path: quota.yaml\n" if q else ""))
        if q:
            files[f"{root}/envs/{env}/quota.yaml"] = quota(*q)
    return files


def environment(name: str, tier: str, *, cpu: str = "64", memory: str = "256Gi",
                storage: str = "2Ti") -> dict[str, str]:
    return {f"envs/{name}/infra.yaml": (
        f"name: {name}\ntier: {tier}\nprovider: local\nregion: eu-1\ninstalled: true\n"
        f"capacity:\n  cpu: \"{cpu}\"\n  memory: {memory}\n  storage: {storage}\n")}


def application(team_name: str, app: str, ns: str, env: str, *,
                component: bool = True) -> dict[str, str]:
    """An ArgoCD Application deployed to ``env`` into namespace ``ns`` (+ a Component)."""
    root = f"applications/{team_name}/{app}"
    files = {
        f"{root}/application.yaml": (
            "apiVersion: argoproj.io/v1alpha1\nkind: Application\n"
            f"metadata:\n  name: {team_name}-{app}\n  namespace: argocd\n"
            "spec:\n  project: default\n"
            f"  source:\n    repoURL: https://git.example.com/{team_name}/{app}.git\n"
            "    path: deploy\n"
            f"  destination:\n    name: {env}\n    namespace: {ns}\n"),
        f"{root}/catalog-info.yaml": (
            "apiVersion: backstage.io/v1alpha1\nkind: Component\n"
            f"metadata:\n  name: {app}\n  description: The {app} service\n  tags: [python]\n"
            f"spec:\n  type: service\n  lifecycle: production\n  owner: group:{team_name}\n"),
    }
    if not component:
        del files[f"{root}/catalog-info.yaml"]
    return files


class Repo:
    """A bare repository whose ``main`` is rewritten from a dict of files per commit."""

    def __init__(self, path: Path) -> None:
        self.git_dir = path
        init_bare(path)
        self.files: dict[str, str] = {}
        self.head = ""

    def commit(self, files: Mapping[str, str | None], message: str = "change") -> str:
        """Apply ``files`` (None deletes) on top of the current tree; returns the commit id."""
        for path, content in files.items():
            if content is None:
                self.files.pop(path, None)
            else:
                self.files[path] = content
        with tempfile.TemporaryDirectory() as tmp:
            for path, content in self.files.items():
                target = Path(tmp) / path
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(content)
            self.head = commit_directory(self.git_dir, Path(tmp), branch="main",
                                         message=message,
                                         parents=[self.head] if self.head else [])
        return self.head

    def changed(self, before: str, after: str) -> list[str]:
        listing = out(self.git_dir, "diff", "--name-only", "--no-renames", before, after)
        return [line for line in listing.splitlines() if line]
