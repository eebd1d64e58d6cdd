"""Thin, typed wrappers over the git CLI (plumbing only: no work tree, no shell).

Every call passes an explicit ``--git-dir`` and an identity, so nothing depends on the user's
global git configuration.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from portal.errors import CaasError


class GitError(CaasError):
    status = 500
    code = "git_error"


IDENTITY = {
    "GIT_AUTHOR_NAME": "caas-portal",
    "GIT_AUTHOR_EMAIL": "caas-portal@localhost",
    "GIT_COMMITTER_NAME": "caas-portal",
    "GIT_COMMITTER_EMAIL": "caas-portal@localhost",
}


def git(git_dir: Path, *args: str, input_bytes: bytes | None = None,
        env: Mapping[str, str] | None = None, check: bool = True) -> str:
    """Run ``git --git-dir=<git_dir> args...`` and return stdout (text)."""
    full_env = {**os.environ, **IDENTITY, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C",
                **(env or {})}
    full_env.pop("GIT_DIR", None)
    proc = subprocess.run(
        ["git", f"--git-dir={git_dir}", "-c", "core.quotepath=off", *args],
        input=input_bytes, capture_output=True, env=full_env, check=False,
    )
    if check and proc.returncode != 0:
        raise GitError(f"git {args[0]} failed: {proc.stderr.decode(errors='replace').strip()}")
    return proc.stdout.decode(errors="replace")


def init_bare(path: Path, *, branch: str = "main") -> None:
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "--bare", "--quiet", f"--initial-branch={branch}", str(path)],
                   check=True, capture_output=True)


def commit_directory(git_dir: Path, source: Path, *, branch: str, message: str,
                     parents: Sequence[str] = ()) -> str:
    """Commit the whole content of ``source`` as the tree of a new commit on ``branch``."""
    with tempfile.TemporaryDirectory(prefix="caas-index-") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        git(git_dir, f"--work-tree={source}", "add", "--all", ".", env=env)
        tree = git(git_dir, "write-tree", env=env).strip()
    args = ["commit-tree", tree, "-m", message]
    for parent in parents:
        args += ["-p", parent]
    commit = git(git_dir, *args).strip()
    git(git_dir, "update-ref", f"refs/heads/{branch}", commit)
    return commit


def seed_repository(path: Path, skeleton: Path, *, branch: str = "main") -> bool:
    """Create the bare GitOps repository from ``skeleton`` unless it already exists.

    Returns True when it was created.
    """
    if (path / "HEAD").exists():
        return False
    if not skeleton.is_dir():
        raise GitError(f"GitOps skeleton {skeleton} does not exist")
    init_bare(path, branch=branch)
    commit_directory(path, skeleton, branch=branch,
                     message="Bootstrap the GitOps repository from gitops-skeleton")
    return True
