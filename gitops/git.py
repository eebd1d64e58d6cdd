"""The one git runner: every git process the portal starts goes through here, and every
in-process (libgit2, ``repository``) handle on a repository comes from here.

``run`` hands back the completed process (exit status unchecked), ``out`` returns stdout as text
and raises ``GitError`` — carrying the command, the exit status and git's stderr — when git
fails. Every call passes an explicit ``--git-dir`` and an identity, so nothing depends on the
user's global git configuration or on ``GIT_DIR`` in the environment.

``repository(git_dir)`` is a pygit2 handle (one per thread and repository: libgit2 objects are
not shared between threads) for reads and object writes that need no process; refs are still
moved by ``git update-ref`` (compare-and-swap) and merges by ``git merge-tree``.

Also here: creating a bare repository and seeding it from a directory (the GitOps skeleton).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

import pygit2

from portal.errors import CaasError

# libgit2's object cache is process-wide: bounded so a server process stays small.
pygit2.settings.cache_max_size(32 * 1024 * 1024)
_handles = threading.local()

IDENTITY = {
    "GIT_AUTHOR_NAME": "caas-portal",
    "GIT_AUTHOR_EMAIL": "caas-portal@localhost",
    "GIT_COMMITTER_NAME": "caas-portal",
    "GIT_COMMITTER_EMAIL": "caas-portal@localhost",
}


class GitError(CaasError):
    """git failed. ``command`` is the argument list after ``git --git-dir=…`` (empty when no
    process ran), ``returncode`` its exit status (None when none), ``stderr`` what git said."""

    status = 500
    code = "git_error"

    def __init__(self, message: str, *, command: Sequence[str] = (),
                 returncode: int | None = None, stderr: str = "") -> None:
        super().__init__(message)
        self.command = tuple(command)
        self.returncode = returncode
        self.stderr = stderr


class NoRepository(GitError):
    """There is no git repository at the path (never created, or deleted): ``caas init``
    creates it."""


def environment(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The process environment for git: ours plus the portal's identity, never prompting."""
    full = {**os.environ, **IDENTITY, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C", **(env or {})}
    full.pop("GIT_DIR", None)
    return full


def argv(git_dir: Path, *args: str) -> list[str]:
    """The full command line for ``git args...`` on the repository ``git_dir``."""
    return ["git", f"--git-dir={git_dir}", "-c", "core.quotepath=off", *args]


def run(git_dir: Path, *args: str, input_bytes: bytes | None = None,
        env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run git and hand back the completed process (bytes; the exit status is not checked)."""
    return subprocess.run(argv(git_dir, *args), input=input_bytes, capture_output=True,
                          env=environment(env), check=False)


def failed(args: Sequence[str], proc: subprocess.CompletedProcess[bytes]) -> GitError:
    """The ``GitError`` for a finished git process that failed."""
    stderr = proc.stderr.decode(errors="replace").strip()
    return GitError(f"git {args[0] if args else ''} failed (exit {proc.returncode}): {stderr}",
                    command=args, returncode=proc.returncode, stderr=stderr)


def out(git_dir: Path, *args: str, input_bytes: bytes | None = None,
        env: Mapping[str, str] | None = None) -> str:
    """Run git and return its stdout (text); ``GitError`` when it exits non-zero."""
    proc = run(git_dir, *args, input_bytes=input_bytes, env=env)
    if proc.returncode != 0:
        raise failed(args, proc)
    return proc.stdout.decode(errors="replace")


def repository(git_dir: Path) -> pygit2.Repository:
    """This thread's libgit2 handle on the repository at ``git_dir`` (a repository deleted and
    created again at the same path gets a new handle). ``GitError`` when there is none."""
    path = str(git_dir)
    try:
        identity = os.stat(os.path.join(path, "objects")).st_ino
    except OSError as exc:
        raise NoRepository(f"no git repository at {path}") from exc
    cache: dict[str, tuple[int, pygit2.Repository]] = _handles.__dict__.setdefault("repos", {})
    held = cache.get(path)
    if held is None or held[0] != identity:
        try:
            repo = pygit2.Repository(path)
        except pygit2.GitError as exc:
            raise NoRepository(f"no git repository at {path}: {exc}") from exc
        held = cache[path] = (identity, repo)
    return held[1]


def init_bare(path: Path, *, branch: str = "main") -> None:
    """Create an empty bare repository at ``path`` whose default branch is ``branch``."""
    path.mkdir(parents=True, exist_ok=True)
    args = ["init", "--bare", "--quiet", f"--initial-branch={branch}", str(path)]
    proc = subprocess.run(["git", *args], capture_output=True, env=environment(), check=False)
    if proc.returncode != 0:
        raise failed(args, proc)


def commit_directory(git_dir: Path, source: Path, *, branch: str, message: str,
                     parents: Sequence[str] = ()) -> str:
    """Commit the whole content of ``source`` as the tree of a new commit on ``branch``."""
    with tempfile.TemporaryDirectory(prefix="caas-index-") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        out(git_dir, f"--work-tree={source}", "add", "--all", ".", env=env)
        tree = out(git_dir, "write-tree", env=env).strip()
    args = ["commit-tree", tree, "-m", message]
    for parent in parents:
        args += ["-p", parent]
    commit = out(git_dir, *args).strip()
    out(git_dir, "update-ref", f"refs/heads/{branch}", commit)
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
