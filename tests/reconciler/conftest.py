"""Reconciler fixtures: a real bare GitOps repository behind a LocalForge, and direct pushes."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from gitops import gittree
from gitops.forges.base import FileChange
from gitops.forges.local import LocalForge
from gitops.git import seed_repository
from portal.settings import Settings
from reconciler.models import Job
from reconciler.worker import Worker
from tests.conftest import REPO_ROOT

SKELETON: dict[str, str] = {
    "bootstrap/root.yaml": "apiVersion: argoproj.io/v1alpha1\nkind: Application\n"
                           "metadata: {name: root, namespace: argocd}\n",
    "appsets/tenants.yaml": "apiVersion: argoproj.io/v1alpha1\nkind: ApplicationSet\n"
                            "metadata: {name: tenants, namespace: argocd}\n",
    "teams/platform/team.yaml": "name: platform\nmembers: [admin]\n",
    "README.md": "gitops\n",
}


def write_tree(root: Path, files: Mapping[str, str]) -> Path:
    for path, content in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
    return root


def make_repo(settings: Settings, engine: Engine, tmp_path: Path,
              files: Mapping[str, str] | None = None) -> LocalForge:
    skeleton = write_tree(tmp_path / "skeleton", files or SKELETON)
    seed_repository(settings.resolved_gitops_repo, skeleton, branch=settings.main_branch)
    return LocalForge(settings, engine)


@pytest.fixture
def forge(settings: Settings, engine: Engine, tmp_path: Path) -> LocalForge:
    return make_repo(settings, engine, tmp_path)


Pusher = Callable[..., tuple[str, str]]


def push(forge: LocalForge, files: Mapping[str, str | None], *, branch: str = "main",
         message: str = "change") -> tuple[str, str]:
    """Commit ``files`` on top of ``branch`` (None deletes) and move the branch: (before, new)."""
    before = forge.head(branch) if branch == "main" else (
        gittree.resolve(forge.git_dir, branch) or forge.head("main"))
    commit = gittree.commit_files(
        forge.git_dir, parent=before, message=message, author="tester",
        files=[FileChange(path=p, content=None if c is None else c.encode())
               for p, c in files.items()])
    assert gittree.update_ref(forge.git_dir, branch, commit,
                              None if branch != "main" and before == forge.head("main")
                              and gittree.resolve(forge.git_dir, branch) is None else before)
    return before, commit


def jobs_of(engine: Engine, commit: str) -> dict[str, Job]:
    with Session(engine, expire_on_commit=False) as session:
        return {j.unit: j for j in session.exec(select(Job).where(Job.commit == commit)).all()}


def drain(worker: Worker, rounds: int = 200) -> None:
    """Run jobs until nothing is runnable and nothing waits on a backoff."""
    for _ in range(rounds):
        if not worker.run_one():
            with Session(worker.engine) as session:
                waiting = session.exec(select(Job.id).where(
                    col(Job.state).in_(["queued", "running"]))).first()
            if waiting is None:
                return
            time.sleep(0.02)
    raise AssertionError("queue did not drain")


def tenant_files(team: str, name: str) -> dict[str, str]:
    """A tenant as the template renders it: the skeleton's own tenant, renamed."""
    source = REPO_ROOT / "gitops-skeleton" / "tenants" / "platform" / "platform-tools"
    return {f"tenants/{team}/{name}/{p.relative_to(source)}":
            p.read_text().replace("platform-tools", name)
            for p in sorted(source.rglob("*")) if p.is_file()}
