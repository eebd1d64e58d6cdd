"""Starting a GitOps repository on GitHub: the first commit of an empty repository, and the branch
protection the portal's merge rules rely on.

Public contract:

- ``push_skeleton(forge, files, *, branch) -> str``: the skeleton as the first commits of an
  empty repository; returns the head commit. GitHub's Git Data API answers ``409 Git Repository
  is empty`` on a repository without commits, so the first file goes through the contents API
  (``PUT /repos/{owner}/{repo}/contents/{path}``, which creates the branch and its first commit)
  and the rest through one tree and one commit (``GitHubForge.commit_to_branch``). Resumable: a
  ``main`` whose only commit is that first commit (an interrupted run) gets the rest.
- ``first_commit_only(forge, *, branch) -> bool``: ``branch`` holds just the first commit above.
- ``Protection(contexts, strict=True, code_owner_reviews=True, approvals=1)`` — the rules:
  required status checks (``contexts``), "Require branches to be up to date before merging"
  (``strict``), "Require review from Code Owners" and ``approvals`` approving reviews.
  ``describe()`` lists them as lines for the operator.
- ``ensure_protection(forge, protection, *, branch) -> ProtectionResult``: reads the branch's
  protection (``GET .../branches/{branch}/protection``) and, when it lacks a rule, writes the
  whole protection (``PUT``; GitHub's endpoint replaces every setting, so the ones it already had
  beyond these rules are kept from the read). ``outcome``: ``present`` (nothing written),
  ``applied``, or ``refused`` (GitHub answered 403/404 to the write: the token may not
  administer the repository — the operator applies ``protection.describe()`` by hand).

Source: GitHub REST API "Repository contents" (create or update file contents), "Git database"
(409 on empty repositories) and "Protected branches" (update branch protection).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from gitops.forges.base import FileChange
from gitops.forges.github import GitHubForge
from gitops.forges.github_rest import GitHubError
from portal.errors import NotFound

FIRST_PATH = "README.md"
FIRST_MESSAGE = "caas init: first commit of the GitOps repository"
REST_MESSAGE = "caas init: the GitOps skeleton (App of Apps, platform, CODEOWNERS)"


def push_skeleton(forge: GitHubForge, files: dict[str, bytes], *, branch: str) -> str:
    """The skeleton as the first commits of an empty repository (see the module docstring)."""
    first = FIRST_PATH if FIRST_PATH in files else sorted(files)[0]
    if not first_commit_only(forge, branch=branch):
        forge.rest.request("PUT", f"{forge.api_path}/contents/{quote(first, safe='/')}", body={
            "message": FIRST_MESSAGE, "branch": branch,
            "content": base64.b64encode(files[first]).decode()})
    rest = [FileChange(path, data) for path, data in sorted(files.items()) if path != first]
    return forge.commit_to_branch(branch, rest, REST_MESSAGE)


def first_commit_only(forge: GitHubForge, *, branch: str) -> bool:
    """True when ``branch`` exists and its head is the lone first commit ``push_skeleton`` made."""
    try:
        head = forge.head(branch)
    except NotFound:  # a missing branch, or an empty repository
        return False
    commit = forge.rest.request("GET", f"{forge.api_path}/git/commits/{head}")
    return (not commit.get("parents")
            and str(commit.get("message", "")).startswith(FIRST_MESSAGE))


@dataclass(frozen=True)
class Protection:
    contexts: Sequence[str]
    strict: bool = True
    code_owner_reviews: bool = True
    approvals: int = 1

    def describe(self) -> list[str]:
        return [f"require status checks to pass: {', '.join(self.contexts)}",
                "require branches to be up to date before merging" if self.strict else
                "branches need not be up to date",
                f"require {self.approvals} approving review(s)"
                + (" and review from Code Owners" if self.code_owner_reviews else "")]


@dataclass(frozen=True)
class ProtectionResult:
    outcome: str  # present | applied | refused
    missing: list[str] = field(default_factory=list)
    message: str = ""


def _missing(current: dict[str, Any] | None, wanted: Protection) -> list[str]:
    if current is None:
        return wanted.describe()
    missing: list[str] = []
    checks = current.get("required_status_checks") or {}
    have = set(checks.get("contexts") or []) | {
        str(c.get("context")) for c in checks.get("checks") or [] if isinstance(c, dict)}
    if set(wanted.contexts) - have:
        missing.append("require status checks to pass: "
                       + ", ".join(sorted(set(wanted.contexts) - have)))
    if wanted.strict and not checks.get("strict"):
        missing.append("require branches to be up to date before merging")
    reviews = current.get("required_pull_request_reviews") or {}
    if wanted.code_owner_reviews and not reviews.get("require_code_owner_reviews"):
        missing.append("require review from Code Owners")
    if int(reviews.get("required_approving_review_count") or 0) < wanted.approvals:
        missing.append(f"require {wanted.approvals} approving review(s)")
    return missing


def ensure_protection(forge: GitHubForge, protection: Protection, *,
                      branch: str) -> ProtectionResult:
    """Read, compare and (when needed and allowed) write the branch's protection."""
    path = f"{forge.api_path}/branches/{quote(branch, safe='')}/protection"
    try:
        current = forge.rest.get_or_none(path)
    except GitHubError as exc:
        if exc.github_status != 403:
            raise
        return ProtectionResult("refused", protection.describe(),
                                f"GitHub refused reading the protection of {branch}: {exc}")
    missing = _missing(current, protection)
    if not missing:
        return ProtectionResult("present")
    checks = (current or {}).get("required_status_checks") or {}
    contexts = sorted(set(checks.get("contexts") or []) | set(protection.contexts))
    reviews = (current or {}).get("required_pull_request_reviews") or {}
    body = {
        "required_status_checks": {"strict": protection.strict or bool(checks.get("strict")),
                                   "contexts": contexts},
        "enforce_admins": bool(((current or {}).get("enforce_admins") or {}).get("enabled")),
        "required_pull_request_reviews": {
            "dismiss_stale_reviews": bool(reviews.get("dismiss_stale_reviews")),
            "require_code_owner_reviews": protection.code_owner_reviews
            or bool(reviews.get("require_code_owner_reviews")),
            "required_approving_review_count": max(
                protection.approvals, int(reviews.get("required_approving_review_count") or 0)),
        },
        "restrictions": None,
    }
    try:
        forge.rest.request("PUT", path, body=body)
    except GitHubError as exc:
        if exc.github_status not in (403, 404):
            raise
        return ProtectionResult("refused", missing,
                                f"GitHub refused writing the protection of {branch} (the token "
                                f"may not administer the repository): {exc}")
    return ProtectionResult("applied", missing)
