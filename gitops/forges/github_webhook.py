"""GitHub webhooks: signature check and event parsing (no PyGithub needed here).

Public contract:

- ``verify_signature(secret, body, header) -> bool`` checks ``X-Hub-Signature-256``
  (``sha256=<hex HMAC of the raw body>``) with a constant-time compare.
- ``parse_event(event_name, payload, main_branch="main") -> MergeEvent | PullRequestEvent | None``
  turns a ``push`` to main or a merged ``pull_request`` into a ``MergeEvent`` (source
  ``webhook``), any other ``pull_request`` action into a ``PullRequestEvent``, a
  ``pull_request_review`` into a ``PullRequestEvent`` whose action is ``review_<action>``
  (``review_submitted``, ``review_edited``, ``review_dismissed``), and everything
  else (pings, pushes to other branches or tags, deleted branches, other events) into ``None``.
- ``delivery_repository(payload) -> str | None``: the ``repository.full_name`` a delivery is
  about (None for deliveries without one, such as an organisation hook's ping).

What the portal does with each kind of delivery is the table in the README ("GitHub webhooks"),
implemented by ``reconciler.webhooks``.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

from gitops.forges.base import MergeEvent

SIGNATURE_PREFIX = "sha256="
# A push whose "after" is all zeros deletes the branch: nothing landed.
_ZERO_SHA = "0" * 40


@dataclass(frozen=True)
class PullRequestEvent:
    """A pull request changed (opened, synchronize, reopened, closed unmerged, labeled, ...)."""

    action: str
    number: int
    head_sha: str
    head_branch: str
    base_branch: str
    sender: str | None
    merged: bool = False
    head_repo: str | None = None  # full name of the repository the head branch lives in
    base_repo: str | None = None

    @property
    def from_fork(self) -> bool:
        """The head lives in another repository (or in a deleted fork: ``head.repo`` null)."""
        return self.base_repo is not None and (
            self.head_repo is None or self.head_repo.lower() != self.base_repo.lower())


def verify_signature(secret: str, body: bytes, header: str | None) -> bool:
    """True when ``header`` is GitHub's HMAC-SHA256 of ``body`` under ``secret``.

    An empty secret never verifies: an unconfigured secret must not accept every payload.
    """
    if not secret or not header or not header.startswith(SIGNATURE_PREFIX):
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    given = header[len(SIGNATURE_PREFIX):].strip()
    # compare_digest on the ASCII bytes: constant time, and no TypeError on non-ASCII input.
    return hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace"))


def sign(secret: str, body: bytes) -> str:
    """The header value GitHub would send for ``body`` (used by tests and by replay tools)."""
    return SIGNATURE_PREFIX + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def parse_event(event_name: str, payload: dict[str, Any], main_branch: str = "main"
                ) -> MergeEvent | PullRequestEvent | None:
    """What a webhook delivery means for the portal; None when it means nothing."""
    if event_name == "push":
        return _parse_push(payload, main_branch)
    if event_name == "pull_request":
        return _parse_pull_request(payload, main_branch)
    if event_name == "pull_request_review":
        action = payload.get("action")
        if not isinstance(action, str) or not isinstance(payload.get("pull_request"), dict):
            return None
        parsed = _parse_pull_request({**payload, "action": f"review_{action}"[:40]},
                                     main_branch)
        return parsed if isinstance(parsed, PullRequestEvent) else None
    return None


def delivery_repository(payload: dict[str, Any]) -> str | None:
    repository = payload.get("repository")
    if isinstance(repository, dict) and isinstance(repository.get("full_name"), str):
        return str(repository["full_name"])
    return None


def _repo_name(side: Any) -> str | None:
    repo = side.get("repo") if isinstance(side, dict) else None
    name = repo.get("full_name") if isinstance(repo, dict) else None
    return str(name) if name else None


def _dict(value: Any) -> dict[str, Any]:
    """A payload member that should be an object; anything else reads as empty."""
    return value if isinstance(value, dict) else {}


def _login(obj: Any) -> str | None:
    if isinstance(obj, dict):
        login = obj.get("login")
        return str(login) if login else None
    return None


def _parse_push(payload: dict[str, Any], main_branch: str) -> MergeEvent | None:
    if payload.get("ref") != f"refs/heads/{main_branch}":
        return None
    after = payload.get("after")
    if not isinstance(after, str) or not after or after == _ZERO_SHA or payload.get("deleted"):
        return None
    before = payload.get("before")
    pusher = payload.get("pusher")
    extra: dict[str, str] = {}
    if isinstance(pusher, dict) and pusher.get("name"):
        extra["pusher"] = str(pusher["name"])
    return MergeEvent(
        commit=after,
        before=before if isinstance(before, str) and before != _ZERO_SHA else None,
        source="webhook",
        extra=extra,
    )


def _parse_pull_request(payload: dict[str, Any], main_branch: str
                        ) -> MergeEvent | PullRequestEvent | None:
    pr = payload.get("pull_request")
    action = payload.get("action")
    if not isinstance(pr, dict) or not isinstance(action, str):
        return None
    base = _dict(pr.get("base"))
    head = _dict(pr.get("head"))
    raw_number = pr.get("number") or payload.get("number") or 0
    number = raw_number if isinstance(raw_number, int) and 0 < raw_number < 2**31 else 0
    merged = bool(pr.get("merged"))
    if action == "closed" and merged:
        if (base.get("ref") != main_branch or not isinstance(pr.get("merge_commit_sha"), str)
                or not pr.get("merge_commit_sha")):
            return None
        return MergeEvent(
            commit=str(pr["merge_commit_sha"]),
            # The base sha recorded on the PR is where main was when it was last compared;
            # the push event carries the exact "before", this is the best the PR knows.
            before=str(base["sha"]) if base.get("sha") else None,
            change_number=number,
            merged_by=_login(pr.get("merged_by")),
            source="webhook",
        )
    return PullRequestEvent(
        action=action,
        number=number,
        head_sha=str(head.get("sha") or ""),
        head_branch=str(head.get("ref") or ""),
        base_branch=str(base.get("ref") or ""),
        sender=_login(payload.get("sender")),
        merged=merged,
        head_repo=_repo_name(head),
        base_repo=_repo_name(base) or delivery_repository(payload),
    )
