"""The forge contract: what the scaffolder, the catalog and the reconciler need from a git host.

Two implementations: ``LocalForge`` (a bare repository plus PR rows in the database; merges
itself) and ``GitHubForge`` (GitHub's REST API; merges happen on GitHub and arrive as webhooks).

``Forge`` is everything every forge does — nobody probes a forge with ``getattr``/``hasattr``.
``Review`` (approve, approvals, merge) is what only a forge that reviews and merges inside the
portal does; ``Forge.review()`` hands it out, or None when reviews happen on the forge's site.
``location`` names the repository, so ``(location, commit)`` names immutable content a caller may
cache. ``read_each`` and ``children_of`` are the generic ways to answer ``read_tree`` and
``list_dir`` from ``list_files``/``read_file`` for a forge without a faster way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol, runtime_checkable

from portal.errors import CaasError, Conflict, Unavailable


class ForgeError(CaasError):
    """The forge refused or failed an operation."""

    status = 502
    code = "forge_error"


class RateLimited(Unavailable):
    """The forge's rate limit asks for a longer wait than a call may block (a temporary error).

    ``retry_after_s``: seconds until the forge accepts requests again; the reconciler retries the
    job no earlier, the scaffolder's task records it for its retry.
    """

    code = "rate_limited"

    def __init__(self, message: str, *, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class MergeConflict(Conflict):
    """The change no longer merges cleanly into ``main``; nothing was written."""

    code = "merge_conflict"


class ChangeState(StrEnum):
    open = "open"
    merged = "merged"
    closed = "closed"


class CheckState(StrEnum):
    pending = "pending"
    success = "success"
    failure = "failure"
    error = "error"


@dataclass(frozen=True)
class FileChange:
    """One file of a change set; ``content=None`` deletes the path."""

    path: str
    content: bytes | None


@dataclass(frozen=True)
class ChangeSpec:
    """Everything needed to open a pull request."""

    branch: str
    title: str
    body: str
    files: Sequence[FileChange]
    author: str
    labels: Sequence[str] = ()
    reviewers: Sequence[str] = ()
    base: str = "main"


@dataclass(frozen=True)
class Check:
    name: str
    state: CheckState
    description: str = ""
    url: str = ""


@dataclass(frozen=True)
class ChangeInfo:
    """A pull request as the forge knows it."""

    number: int
    url: str
    branch: str
    base: str
    title: str
    body: str
    author: str
    state: ChangeState
    head_sha: str
    base_sha: str
    merge_sha: str | None = None
    labels: Sequence[str] = ()
    reviewers: Sequence[str] = ()
    checks: Sequence[Check] = ()
    created_at: datetime | None = None
    merged_at: datetime | None = None
    merged_by: str | None = None


@dataclass(frozen=True)
class MergeEvent:
    """A commit that landed on ``main`` (from a local merge, a webhook, or the poller)."""

    commit: str
    before: str | None
    change_number: int | None = None
    merged_by: str | None = None
    source: str = "local"  # local | webhook | poller
    extra: dict[str, str] = field(default_factory=dict)


class Review(Protocol):
    """Review inside the portal: approvals of the current head and the merge itself."""

    def approve(self, number: int, *, by: str, head_sha: str | None = None) -> ChangeInfo:
        """Record ``by``'s approval of the PR's current head (a later push makes it stale);
        ``head_sha``, the head the reviewer saw: ``Conflict`` (``head-moved``) when the PR has
        moved on since, nothing recorded."""
        ...

    def approvals(self, number: int) -> list[str]:
        """Who approved the PR's current head."""
        ...

    def merge(self, number: int, *, by: str) -> MergeEvent:
        """Merge into the base branch, or raise: checks not green, no approval, conflict."""
        ...


@runtime_checkable
class Forge(Protocol):
    """What every forge does. Paths are POSIX, relative to the repository root."""

    kind: str
    location: str

    def review(self) -> Review | None:
        """The forge's own review (approve/approvals/merge), or None when reviews and merges
        happen on the forge's site (GitHub) and reach the portal as webhooks."""
        ...

    def list_dir(self, directory: str, ref: str = "main") -> list[str]:
        """Names of the direct children (files and folders) of ``directory`` at ``ref``."""
        ...

    def read_tree(self, prefixes: Sequence[str], ref: str) -> dict[str, bytes]:
        """Path → content of every file under ``prefixes`` (all files when empty) at ``ref``."""
        ...

    def first_parents(self, base: str, head: str, *, limit: int) -> list[str]:
        """Commits of ``head``'s first-parent chain after ``base``, oldest first (at most
        ``limit``); empty when ``base`` is not an ancestor or the forge cannot list them."""
        ...

    def head(self, ref: str = "main") -> str:
        """The commit id ``ref`` points at."""
        ...

    def read_file(self, path: str, ref: str = "main") -> bytes | None:
        """The file's content at ``ref``; None when it does not exist."""
        ...

    def list_files(self, prefix: str = "", ref: str = "main") -> list[str]:
        """Every file path under ``prefix`` at ``ref`` (recursive)."""
        ...

    def open_change(self, spec: ChangeSpec) -> ChangeInfo:
        """Create the branch, commit ``spec.files`` on top of the base, open the PR.

        Idempotent per ``spec.branch``: when an open change already uses the branch (an
        earlier attempt), it is returned, with any step that attempt did not finish (labels,
        review requests) completed — never a second PR.
        """
        ...

    def update_change(self, number: int, files: Sequence[FileChange], message: str
                      ) -> ChangeInfo:
        """Commit ``files`` on the PR's branch (a new commit on top of its head)."""
        ...

    def get_change(self, number: int) -> ChangeInfo: ...

    def find_change(self, branch: str) -> ChangeInfo | None:
        """The open PR whose head is ``branch`` (makes retries idempotent)."""
        ...

    def set_check(self, number: int, check: Check) -> None:
        """Record a check result on the PR's head commit (commit status on GitHub)."""
        ...

    def set_checks(self, number: int, checks: Sequence[Check]) -> None:
        """``set_check`` for each of ``checks``, on one head: one transaction on the local
        forge, one read of the PR on GitHub."""
        ...

    def comment(self, number: int, body: str, *, key: str = "preview") -> None:
        """Create or update the one comment identified by ``key`` on the PR."""
        ...

    def changed_paths(self, base: str, head: str) -> list[str]:
        """Paths that differ between two commits (added, modified, deleted, both rename sides)."""
        ...

    def is_ancestor(self, commit: str, ref: str = "main") -> bool:
        """True when ``commit`` is reachable from ``ref``."""
        ...

    def close_change(self, number: int, *, by: str) -> ChangeInfo: ...


def read_each(forge: Forge, prefixes: Sequence[str], ref: str) -> dict[str, bytes]:
    """``read_tree`` through ``list_files``/``read_file``: one call per file."""
    files: dict[str, bytes] = {}
    for prefix in prefixes or [""]:
        for path in forge.list_files(prefix, ref):
            content = forge.read_file(path, ref)
            if content is not None:
                files[path] = content
    return files


def children_of(paths: Sequence[str], directory: str) -> list[str]:
    """``list_dir`` from a recursive file listing: the direct children of ``directory``."""
    prefix = directory.strip("/") + "/"
    return sorted({p[len(prefix):].split("/", 1)[0] for p in paths if p.startswith(prefix)})


@runtime_checkable
class ApprovalReader(Protocol):
    """A forge whose reviews happen on its own site but can be read (GitHub: ``pulls/{n}/
    reviews``, the latest review of each login)."""

    def approvals(self, number: int) -> list[str]:
        """Logins whose latest review of PR ``number`` approves it."""
        ...


@runtime_checkable
class CodeownersAudit(Protocol):
    """A forge whose review requests can be refused (GitHub: only collaborators review)."""

    def codeowners_problems(self, ref: str = "main") -> list[str]:
        """CODEOWNERS owners at ``ref`` the forge cannot ask for a review (``@user`` /
        ``@org/team``): not collaborators, or teams without access to the repository."""
        ...
