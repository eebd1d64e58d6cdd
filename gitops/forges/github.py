"""``GitHubForge``: the Forge Protocol on GitHub or GitHub Enterprise, through PyGithub.

Public contract:

- ``GitHubForge(repo_full_name, *, token, base_url="https://api.github.com", max_wait_s=60,
  sleep=time.sleep, clock=time.time, seconds_between_writes=1.0)`` and
  ``GitHubForge.from_settings(settings)``
  (``github_url``, ``github_repo``, ``github_token``, ``github_max_wait_s``,
  ``github_write_interval_s``; raises
  ``ConfigError`` when the repository or the token is missing).
- Implements ``gitops.forges.base.Forge`` (``kind = "github"``). Merges happen on GitHub
  and reach the portal as webhooks (``gitops.forges.github_webhook``), so there is no merge.
- ``approvals(number) -> list[str]``: logins whose latest review approves (reviews paged).
- ``codeowners_problems(ref="main") -> list[str]``: CODEOWNERS entries GitHub cannot ask for a
  review (not collaborators / teams without access) — the repository check.

Every request goes through ``gitops.forges.github_rest`` (rate limits, paging, ETags, the
pinned API version); PyGithub supplies authentication, the base URL and the connection pool.
Branches and commits go through the Git Data API (a tree on ``base_tree``, a commit, a ref) so a
change set of many files is one commit. Opening a change is resumable: the branch, the pull
request, its labels and its review requests are separate steps, and ``open_change`` on a branch
whose PR exists completes the steps still missing. Reviewers GitHub cannot ask (a stale CODEOWNERS
entry) are named in a comment on the PR instead of leaving it silently without reviewers.
The author the portal knows (the signed-in user, not the bot) is kept in a hidden marker in the
PR body.
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from github import Auth, Github

from gitops.forges import github_checks, github_review
from gitops.forges.base import (
    ChangeInfo,
    ChangeSpec,
    ChangeState,
    Check,
    FileChange,
    ForgeError,
    children_of,
    read_each,
)
from gitops.forges.github_codeowners import (
    CODEOWNERS_PATHS,
    codeowners_for,
    split_reviewers,
)
from gitops.forges.github_rest import API_VERSION, GitHubError, GitHubRest
from portal.errors import ConfigError, NotFound

if TYPE_CHECKING:
    from portal.settings import Settings

_AUTHOR_MARKER = re.compile(r"\n*<!-- caas:author=([^ >]+) -->\s*$")
COMPARE_FILES_MAX = 300  # "the response ... is limited to a maximum of 300 files" (compare API)


def comment_marker(key: str) -> str:
    """The hidden line that identifies the portal's comment ``key`` on a PR."""
    return f"<!-- caas:{key} -->"


class GitHubForge:
    """A GitOps repository on GitHub (or GitHub Enterprise through ``base_url``)."""

    kind = "github"

    def __init__(self, repo_full_name: str, *, token: str,
                 base_url: str = "https://api.github.com", timeout: int = 30,
                 max_wait_s: float = 60.0, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.time,
                 seconds_between_writes: float | None = 1.0) -> None:
        # No PyGithub retries: GitHubRest waits exactly as long as GitHub asks, for every
        # method, and hands longer waits back as a temporary error. Writes stay a second apart,
        # GitHub's advice against secondary rate limits ("Best practices for using the REST
        # API"); tests against the loopback fake turn the pause off.
        gh = Github(auth=Auth.Token(token), base_url=base_url, timeout=timeout, retry=0,
                    per_page=100, api_version=API_VERSION, seconds_between_requests=None,
                    seconds_between_writes=seconds_between_writes)
        self.rest = GitHubRest(gh.requester, max_wait_s=max_wait_s, sleep=sleep, clock=clock)
        self._full_name = repo_full_name
        self._owner = repo_full_name.split("/", 1)[0]
        self._path = f"/repos/{repo_full_name}"
        self.location = f"{base_url.rstrip('/')}/repos/{repo_full_name}"

    @classmethod
    def from_settings(cls, settings: Settings) -> GitHubForge:
        if not settings.github_repo:
            raise ConfigError("CAAS_GITHUB_REPO must be set (owner/name) for the github forge",
                              field="github_repo")
        if settings.github_token is None:
            raise ConfigError("CAAS_GITHUB_TOKEN must be set for the github forge",
                              field="github_token")
        return cls(settings.github_repo, token=settings.github_token.get_secret_value(),
                   base_url=settings.github_url.rstrip("/"),
                   max_wait_s=settings.github_max_wait_s,
                   seconds_between_writes=settings.github_write_interval_s or None)

    # --- reading ------------------------------------------------------------------------
    def head(self, ref: str = "main") -> str:
        try:
            data = self.rest.get_or_none(f"{self._path}/git/ref/heads/{quote(ref, safe='/')}")
        except GitHubError as exc:
            if exc.github_status != 409:  # 409 "Git Repository is empty": no branch at all
                raise
            data = None
        if data is None:
            raise NotFound(f"branch {ref!r} does not exist", field="ref")
        return str(data["object"]["sha"])

    def read_file(self, path: str, ref: str = "main") -> bytes | None:
        content = self.rest.get_or_none(f"{self._path}/contents/{quote(path, safe='/')}",
                                        params={"ref": ref})
        if not isinstance(content, dict) or content.get("type") != "file":
            return None
        if content.get("encoding") == "base64" and content.get("content") is not None:
            return base64.b64decode(content["content"])
        # Files over 1 MB come without content: fetch the blob instead.
        blob = self.rest.request("GET", f"{self._path}/git/blobs/{content['sha']}")
        return base64.b64decode(blob["content"])

    def _blobs(self, ref: str) -> dict[str, str]:
        tree = self.rest.request("GET", f"{self._path}/git/trees/{quote(ref, safe='/')}",
                                 params={"recursive": "1"})
        if tree.get("truncated"):
            raise ForgeError(f"the tree of {ref!r} is too large for one listing")
        return {str(i["path"]): str(i["sha"]) for i in tree["tree"] if i["type"] == "blob"}

    def list_files(self, prefix: str = "", ref: str = "main") -> list[str]:
        base = prefix.strip("/")
        return sorted(p for p in self._blobs(ref)
                      if not base or p == base or p.startswith(base + "/"))

    def list_dir(self, directory: str, ref: str = "main") -> list[str]:
        return children_of(list(self._blobs(ref)), directory)

    def read_tree(self, prefixes: Sequence[str], ref: str) -> dict[str, bytes]:
        return read_each(self, prefixes, ref)

    def first_parents(self, base: str, head: str, *, limit: int) -> list[str]:
        return []  # the poller then records one event spanning base..head

    def review(self) -> None:
        return None  # reviews and merges happen on GitHub and arrive as webhooks

    def changed_paths(self, base: str, head: str) -> list[str]:
        comparison = self.rest.request("GET", f"{self._path}/compare/{base}...{head}")
        files = comparison.get("files") or []
        if len(files) >= COMPARE_FILES_MAX:  # the list may be cut: compare both trees
            old, new = self._blobs(base), self._blobs(head)
            return sorted(p for p in set(old) | set(new) if old.get(p) != new.get(p))
        paths: set[str] = set()
        for item in files:
            paths.add(item["filename"])
            if item.get("previous_filename"):
                paths.add(item["previous_filename"])
        return sorted(paths)

    def is_ancestor(self, commit: str, ref: str = "main") -> bool:
        # compare(ref...commit) is "behind" when commit is reachable from ref.
        comparison = self.rest.get_or_none(f"{self._path}/compare/{ref}...{commit}")
        return comparison is not None and comparison.get("status") in ("behind", "identical")

    # --- pull requests ------------------------------------------------------------------
    def _pull(self, number: int) -> dict[str, Any]:
        pr = self.rest.get_or_none(f"{self._path}/pulls/{number}")
        if pr is None:
            raise NotFound(f"pull request #{number} does not exist", field="number")
        return dict(pr)

    def get_change(self, number: int) -> ChangeInfo:
        return self._info(self._pull(number))

    def _find_pull(self, branch: str) -> dict[str, Any] | None:
        pulls = self.rest.pages(f"{self._path}/pulls",
                                params={"state": "open", "head": f"{self._owner}:{branch}"})
        return dict(pulls[0]) if pulls else None

    def find_change(self, branch: str) -> ChangeInfo | None:
        pr = self._find_pull(branch)
        return self._info(pr) if pr is not None else None

    def open_change(self, spec: ChangeSpec) -> ChangeInfo:
        """Open the change, or complete one opened by an interrupted attempt (same branch)."""
        pr = self._find_pull(spec.branch)
        if pr is None:
            commit_sha = self._commit(self.head(spec.base), spec.files, spec.title, spec.author)
            self._set_branch(spec.branch, commit_sha)
            body = f"{spec.body}\n\n<!-- caas:author={spec.author} -->"
            try:
                pr = self.rest.request("POST", f"{self._path}/pulls", body={
                    "title": spec.title, "head": spec.branch, "base": spec.base, "body": body})
            except GitHubError as exc:
                pr = self._find_pull(spec.branch) if exc.github_status == 422 else None
                if pr is None:
                    raise
        github_review.ensure_labels(self.rest, self._path, pr, spec.labels)
        users, teams = self._reviewers(pr, spec)
        refused = github_review.ensure_reviewers(self.rest, self._path, self._owner, pr,
                                                 users, teams)
        if refused:
            self.comment(pr["number"], _refused_text(refused), key="reviewers")
        return self.get_change(int(pr["number"]))

    def update_change(self, number: int, files: Sequence[FileChange], message: str
                      ) -> ChangeInfo:
        pr = self._pull(number)
        if pr["state"] != "open":
            raise ForgeError(f"pull request #{number} is {pr['state']}; only open ones take "
                             "commits")
        commit_sha = self._commit(pr["head"]["sha"], files, message, None)
        # No force: a commit pushed to the branch meanwhile makes this fail instead of vanish.
        self.rest.request("PATCH", f"{self._path}/git/refs/heads/"
                          f"{quote(pr['head']['ref'], safe='/')}",
                          body={"sha": commit_sha, "force": False})
        return self.get_change(number)

    def set_check(self, number: int, check: Check) -> None:
        self.set_checks(number, [check])

    def set_checks(self, number: int, checks: Sequence[Check]) -> None:
        if not checks:
            return
        sha = self._pull(number)["head"]["sha"]
        for check in checks:
            github_checks.set_status(self.rest, self._path, sha, check)

    def comment(self, number: int, body: str, *, key: str = "preview") -> None:
        marker = comment_marker(key)
        text = f"{marker}\n{body}"
        for existing in self.rest.pages(f"{self._path}/issues/{number}/comments"):
            if marker in (existing.get("body") or ""):
                if existing["body"] != text:
                    self.rest.request("PATCH", f"{self._path}/issues/comments/{existing['id']}",
                                      body={"body": text})
                return
        self.rest.request("POST", f"{self._path}/issues/{number}/comments", body={"body": text})

    def close_change(self, number: int, *, by: str) -> ChangeInfo:
        pr = self._pull(number)
        if pr["state"] == "open":
            self.comment(number, f"Closed from the portal by @{by}.", key="closed")
            self.rest.request("PATCH", f"{self._path}/pulls/{number}", body={"state": "closed"})
        return self.get_change(number)

    def approvals(self, number: int) -> list[str]:
        latest: dict[str, str] = {}
        for review in self.rest.pages(f"{self._path}/pulls/{number}/reviews"):
            login = (review.get("user") or {}).get("login")
            if login and review.get("state") != "COMMENTED":
                latest[str(login)] = str(review.get("state"))
        return sorted(login for login, state in latest.items() if state == "APPROVED")

    def codeowners_problems(self, ref: str = "main") -> list[str]:
        text = self._codeowners(ref)
        if text is None:
            return []
        owners: list[str] = []
        for raw in text.splitlines():
            line = raw.split(" #", 1)[0].strip()
            if line and not line.startswith("#"):
                owners += line.split()[1:]
        users, teams = split_reviewers(owners)
        return github_review.cannot_review(self.rest, self._path, self._owner, users, teams)

    @property
    def api_path(self) -> str:
        """``/repos/<owner>/<name>``: the repository's REST path (for ``rest`` requests)."""
        return self._path

    def commit_to_branch(self, branch: str, files: Sequence[FileChange], message: str) -> str:
        """Commit ``files`` on top of ``branch`` and move it there (a fast-forward, never
        forced); returns the new commit id. ``NotFound`` when the branch does not exist."""
        sha = self._commit(self.head(branch), files, message, None)
        self.rest.request("PATCH", f"{self._path}/git/refs/heads/{quote(branch, safe='/')}",
                          body={"sha": sha, "force": False})
        return sha

    # --- internals ----------------------------------------------------------------------
    def _codeowners(self, ref: str) -> str | None:
        found = next((text for text in (self.read_file(p, ref) for p in CODEOWNERS_PATHS)
                      if text), None)
        return found.decode(errors="replace") if found is not None else None

    def _commit(self, parent_sha: str, files: Sequence[FileChange], message: str,
                author: str | None) -> str:
        """A tree on the parent's tree → a commit; returns the commit id.

        UTF-8 text goes inline in the tree request (GitHub stores it as a blob) and only other
        content gets a blob request of its own: every write counts against GitHub's secondary
        rate limit. Blobs, trees and commits are content-addressed, so sending one again after
        an interruption creates nothing new.
        """
        parent = self.rest.request("GET", f"{self._path}/git/commits/{parent_sha}")
        elements: list[dict[str, Any]] = []
        for change in files:
            element: dict[str, Any] = {"path": change.path, "mode": "100644", "type": "blob"}
            text = _utf8(change.content) if change.content is not None else None
            if change.content is None:
                element["sha"] = None
            elif text is not None:
                element["content"] = text
            else:
                blob = self.rest.request("POST", f"{self._path}/git/blobs", body={
                    "content": base64.b64encode(change.content).decode(),
                    "encoding": "base64"})
                element["sha"] = blob["sha"]
            elements.append(element)
        tree = self.rest.request("POST", f"{self._path}/git/trees", body={
            "base_tree": parent["tree"]["sha"], "tree": elements})
        if author:
            message = f"{message}\n\nRequested-by: {author}"
        commit = self.rest.request("POST", f"{self._path}/git/commits", body={
            "message": message, "tree": tree["sha"], "parents": [parent_sha]})
        return str(commit["sha"])

    def _set_branch(self, branch: str, sha: str) -> None:
        ref = quote(branch, safe="/")
        if self.rest.get_or_none(f"{self._path}/git/ref/heads/{ref}") is None:
            self.rest.request("POST", f"{self._path}/git/refs",
                              body={"ref": f"refs/heads/{branch}", "sha": sha})
        else:
            # A branch without an open PR is a leftover of an interrupted attempt at this very
            # change (branch names are the portal's own): point it at the fresh commit.
            self.rest.request("PATCH", f"{self._path}/git/refs/heads/{ref}",
                              body={"sha": sha, "force": True})

    def _reviewers(self, pr: dict[str, Any], spec: ChangeSpec) -> tuple[list[str], list[str]]:
        """Spec reviewers plus the CODEOWNERS owners of the changed paths on the base."""
        users, teams = split_reviewers(spec.reviewers)
        codeowners = self._codeowners(spec.base)
        if codeowners is not None:
            owner_users, owner_teams = codeowners_for(codeowners, [f.path for f in spec.files])
            users += [u for u in owner_users if u not in users]
            teams += [t for t in owner_teams if t not in teams]
        # GitHub refuses a review request to the PR's author (the bot) with a 422.
        bot = str((pr.get("user") or {}).get("login", ""))
        return [u for u in users if u not in (bot, spec.author)], teams

    def _info(self, pr: dict[str, Any]) -> ChangeInfo:
        body = pr.get("body") or ""
        found = _AUTHOR_MARKER.search(body)
        author = found.group(1) if found else str((pr.get("user") or {}).get("login", ""))
        if found:
            body = body[:found.start()]
        merged = bool(pr.get("merged") or pr.get("merged_at"))
        state = (ChangeState.merged if merged else
                 ChangeState.open if pr["state"] == "open" else ChangeState.closed)
        head_sha = str(pr["head"]["sha"])
        reviewers = [str(u["login"]) for u in pr.get("requested_reviewers") or []]
        reviewers += [f"{self._owner}/{t['slug']}" for t in pr.get("requested_teams") or []]
        return ChangeInfo(
            number=int(pr["number"]), url=str(pr["html_url"]), branch=str(pr["head"]["ref"]),
            base=str(pr["base"]["ref"]), title=str(pr["title"]), body=body, author=author,
            state=state, head_sha=head_sha, base_sha=str(pr["base"]["sha"]),
            merge_sha=pr.get("merge_commit_sha") if merged else None,
            labels=[str(label["name"]) for label in pr.get("labels") or []],
            reviewers=reviewers,
            checks=github_checks.commit_checks(self.rest, self._path, head_sha),
            created_at=_time(pr.get("created_at")), merged_at=_time(pr.get("merged_at")),
            merged_by=(pr.get("merged_by") or {}).get("login") if merged else None,
        )


def _refused_text(refused: Sequence[str]) -> str:
    names = ", ".join(refused)
    return (f"**Reviewers missing.** GitHub cannot ask {names} for a review: not a collaborator "
            "of this repository (or a team without access). The CODEOWNERS entry is stale; "
            "fix CODEOWNERS or the repository's access, then ask a reviewer by hand.")


def _utf8(content: bytes) -> str | None:
    """The text of ``content`` when it is UTF-8 and round-trips unchanged, else None."""
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return text if "\x00" not in text else None


def _time(value: Any) -> datetime | None:
    """GitHub's ISO 8601 timestamps (``2026-01-01T00:00:00Z``) as aware datetimes."""
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
