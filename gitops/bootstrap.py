"""Starting a GitOps repository from ``gitops-skeleton/``: the one place that knows the skeleton's
placeholders, and the decision what starting a given repository takes.

Public contract:

- ``Placeholders(repo_url, org, admin_group)``: what a platform fills in. ``repo_url`` is the
  URL ArgoCD clones (every ``repoURL`` of the App of Apps in ``bootstrap/root.yaml`` and of the
  platform's Applications); ``org`` the forge organisation whose repositories the platform team's
  AppProject may deploy (``https://github.com/<org>/*``); ``admin_group`` the flat name of the
  platform-admin group that ArgoCD's RBAC maps to ``role:admin`` (``platform/argocd/values.yaml``).
- ``skeleton_files(skeleton, values, *, codeowners=None) -> dict[str, bytes]``: every file of the
  skeleton (POSIX paths, sorted) with the placeholders filled in; ``codeowners`` replaces the
  skeleton's ``CODEOWNERS`` (the portal renders it for the forge: ``scaffolder.codeowners``).
  Raises ``BootstrapError`` when the skeleton folder is missing.
- ``state_of(forge, *, main) -> RepositoryState``: ``empty`` (no ``main``), ``started`` (``main``
  holds ``MARKER``) or ``foreign`` (``main`` exists without the skeleton: it gets a bootstrap
  change on ``BRANCH``, never a direct push).
- ``missing_files(forge, files, *, main) -> list[FileChange]``: the skeleton's files ``main`` does
  not have (existing files are left as they are; reviewers merge the rest).
- ``repo_url_in(root) -> str | None``: the repository URL the App of Apps clones, read from the
  content of ``MARKER`` (the first Application's ``spec.source.repoURL``); None when the file is
  missing, is not YAML, or names none.
- ``repo_url_on(forge, ref) -> str | None``: the same, read at ``ref``.
- ``fill_repo_url(files, repo_url) -> dict[str, bytes]``: ``files`` with the skeleton's
  placeholder repository URL replaced by ``repo_url`` in every file (unchanged when
  ``repo_url`` is None). Templates use the same placeholder wherever a unit names the GitOps
  repository (a team's AppProject ``sourceRepos``), so what a started platform renders names
  its own repository, as its skeleton does.
- ``start_local(git_dir, files, *, branch) -> bool``: create the bare repository when missing and
  commit ``files`` as the first commit of ``branch`` when it has none; False when ``branch``
  already existed (nothing written).

The App of Apps layout follows ArgoCD's "Cluster Bootstrapping" guide (one Application that
manages the other Applications); the placeholders are the ones ``gitops-skeleton/README.md``
names.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from gitops import git, gittree, yaml
from gitops.forges.base import FileChange, Forge
from portal.errors import CaasError, NotFound

PLACEHOLDER_REPO_URL = "https://github.com/example-org/gitops.git"
PLACEHOLDER_ORG_REPOS = "https://github.com/example-org/*"
PLACEHOLDER_ADMIN_RBAC = "g, platform-admins, role:admin"
MARKER = "bootstrap/root.yaml"  # main holds the skeleton when this file exists
BRANCH = "caas/bootstrap"  # the branch of the bootstrap change on a repository with commits
FIRST_MESSAGE = "caas init: start the GitOps repository from gitops-skeleton"


class BootstrapError(CaasError):
    """The repository cannot be started as asked (missing skeleton, unexpected state)."""

    status = 409
    code = "bootstrap_error"


class RepositoryState(StrEnum):
    empty = "empty"
    started = "started"
    foreign = "foreign"


@dataclass(frozen=True)
class Placeholders:
    repo_url: str
    org: str = "example-org"
    admin_group: str = "platform-admins"


def skeleton_files(skeleton: Path, values: Placeholders, *,
                   codeowners: bytes | None = None) -> dict[str, bytes]:
    """The skeleton's files with ``values`` filled in (see the module docstring)."""
    if not skeleton.is_dir():
        raise BootstrapError(f"GitOps skeleton {skeleton} does not exist (CAAS_SKELETON_DIR)",
                             field="skeleton_dir")
    replacements = (
        (PLACEHOLDER_REPO_URL, values.repo_url),
        (PLACEHOLDER_ORG_REPOS, f"https://github.com/{values.org}/*"),
        (PLACEHOLDER_ADMIN_RBAC, f"g, {values.admin_group}, role:admin"),
    )
    files: dict[str, bytes] = {}
    for path in sorted(p for p in skeleton.rglob("*") if p.is_file()):
        rel = path.relative_to(skeleton).as_posix()
        data = path.read_bytes()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            files[rel] = data
            continue
        for old, new in replacements:
            text = text.replace(old, new)
        files[rel] = text.encode("utf-8")
    if codeowners is not None:
        files["CODEOWNERS"] = codeowners
    return files


def repo_url_in(root: bytes | None) -> str | None:
    """The App of Apps' repository URL in ``root`` (see the module docstring)."""
    if root is None:
        return None
    try:
        docs = yaml.load_mappings(root)
    except (ValueError, UnicodeDecodeError):
        return None
    for doc in docs:
        spec = doc.get("spec") if doc.get("kind") == "Application" else None
        source = spec.get("source") if isinstance(spec, dict) else None
        if isinstance(source, dict) and isinstance(source.get("repoURL"), str):
            return str(source["repoURL"])
    return None


def repo_url_on(forge: Forge, ref: str) -> str | None:
    """``repo_url_in`` of ``MARKER`` at ``ref`` (a branch or commit of ``forge``)."""
    return repo_url_in(forge.read_file(MARKER, ref))


def fill_repo_url(files: Mapping[str, bytes], repo_url: str | None) -> dict[str, bytes]:
    """``files`` with the placeholder repository URL filled in (see the module docstring)."""
    if repo_url is None or repo_url == PLACEHOLDER_REPO_URL:
        return dict(files)
    placeholder, value = PLACEHOLDER_REPO_URL.encode(), repo_url.encode()
    return {path: data.replace(placeholder, value) for path, data in files.items()}


def state_of(forge: Forge, *, main: str) -> RepositoryState:
    """Whether ``main`` is missing, holds the skeleton, or holds something else."""
    try:
        forge.head(main)
    except NotFound:
        return RepositoryState.empty
    if forge.read_file(MARKER, main) is not None:
        return RepositoryState.started
    return RepositoryState.foreign


def missing_files(forge: Forge, files: dict[str, bytes], *, main: str) -> list[FileChange]:
    """The files of ``files`` that ``main`` lacks, as a change set."""
    present = set(forge.list_files("", main))
    return [FileChange(path, data) for path, data in sorted(files.items())
            if path not in present]


def start_local(git_dir: Path, files: dict[str, bytes], *, branch: str) -> bool:
    """Create the bare repository (if missing) and its first commit on ``branch`` (if none)."""
    if not (git_dir / "HEAD").exists():
        git.init_bare(git_dir, branch=branch)
    if gittree.resolve(git_dir, branch) is not None:
        return False
    with tempfile.TemporaryDirectory(prefix="caas-skeleton-") as tmp:
        root = Path(tmp)
        for rel, data in files.items():
            target = root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        git.commit_directory(git_dir, root, branch=branch, message=FIRST_MESSAGE)
    return True
