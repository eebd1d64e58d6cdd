"""``GitHubForge``: the Forge Protocol on GitHub or GitHub Enterprise, through PyGithub.

Public contract:

- ``GitHubForge(repo_full_name, *, token, base_url="https://api.github.com", retry=...)`` and
  ``GitHubForge.from_settings(settings)`` (``github_url``, ``github_repo``, ``github_token``;
  raises ``ConfigError`` when the repository or the token is missing).
- Implements ``gitops.forges.base.Forge`` (``kind = "github"``). Merges happen on GitHub
  and reach the portal as webhooks (``gitops.forges.github_webhook``), so there is no merge.
- Reviewers: those given in the spec plus the owners of the changed paths per the repository's
  CODEOWNERS on the base branch (``gitops.forges.github_codeowners``).

Branches and commits go through the Git Data API (blobs, a tree on ``base_tree``, a commit, a
ref) so a change set of many files is one commit and never touches a working copy. The author
the portal knows (the signed-in user, not the bot) is kept in a hidden marker in the PR body.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import requests
from github import Auth, Github, GithubException, InputGitTreeElement
from github.GithubRetry import GithubRetry

from gitops.forges.base import (
    ChangeInfo,
    ChangeSpec,
    ChangeState,
    Check,
    CheckState,
    FileChange,
    ForgeError,
)
from gitops.forges.github_codeowners import (
    CODEOWNERS_PATHS,
    codeowners_for,
    split_reviewers,
)
from portal.errors import ConfigError, NotFound, Unavailable

if TYPE_CHECKING:
    from github.PullRequest import PullRequest
    from github.Repository import Repository

    from portal.settings import Settings

_AUTHOR_MARKER = re.compile(r"\n*<!-- caas:author=([^ >]+) -->\s*$")
_STATUS_DESCRIPTION_MAX = 140  # GitHub refuses longer commit status descriptions (422)
_COMPARE_FILES_MAX = 300  # the compare API lists at most this many files


def comment_marker(key: str) -> str:
    """The hidden line that identifies the portal's comment ``key`` on a PR."""
    return f"<!-- caas:{key} -->"


# --- the forge ----------------------------------------------------------------------------

class GitHubForge:
    """A GitOps repository on GitHub (or GitHub Enterprise through ``base_url``)."""

    kind = "github"

    def __init__(self, repo_full_name: str, *, token: str,
                 base_url: str = "https://api.github.com",
                 retry: int | GithubRetry | None = None, timeout: int = 30,
                 seconds_between_requests: float | None = 0.25,
                 seconds_between_writes: float | None = 1.0) -> None:
        # The pauses are GitHub's advice against secondary rate limits (PyGithub's defaults);
        # tests against the loopback fake turn them off.
        self._gh = Github(auth=Auth.Token(token), base_url=base_url, timeout=timeout,
                          per_page=100, retry=retry if retry is not None else GithubRetry(),
                          seconds_between_requests=seconds_between_requests,
                          seconds_between_writes=seconds_between_writes)
        self._full_name = repo_full_name
        self._owner = repo_full_name.split("/", 1)[0]
        self._repo_cache: Repository | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> GitHubForge:
        if not settings.github_repo:
            raise ConfigError("CAAS_GITHUB_REPO must be set (owner/name) for the github forge",
                              field="github_repo")
        if settings.github_token is None:
            raise ConfigError("CAAS_GITHUB_TOKEN must be set for the github forge",
                              field="github_token")
        return cls(settings.github_repo, token=settings.github_token.get_secret_value(),
                   base_url=settings.github_url.rstrip("/"))

    # --- plumbing -----------------------------------------------------------------------
    @property
    def _repo(self) -> Repository:
        if self._repo_cache is None:
            self._repo_cache = self._call(lambda: self._gh.get_repo(self._full_name))
        return self._repo_cache

    @staticmethod
    def _call(fn: Any) -> Any:
        """Run one PyGithub call, turning its errors into the portal's error tree."""
        try:
            return fn()
        except GithubException as exc:
            message = exc.data.get("message") if isinstance(exc.data, dict) else None
            raise ForgeError(f"GitHub answered {exc.status}: {message or exc}") from exc
        except requests.RequestException as exc:
            raise Unavailable(f"GitHub cannot be reached: {exc}") from exc

    @staticmethod
    def _missing(fn: Any) -> Any:
        """Like ``_call`` but a 404 becomes None (reads of things that may not exist)."""
        try:
            return fn()
        except GithubException as exc:
            if exc.status == 404:
                return None
            raise ForgeError(f"GitHub answered {exc.status}") from exc
        except requests.RequestException as exc:
            raise Unavailable(f"GitHub cannot be reached: {exc}") from exc

    def _pull(self, number: int) -> PullRequest:
        pr = self._missing(lambda: self._repo.get_pull(number))
        if pr is None:
            raise NotFound(f"pull request #{number} does not exist", field="number")
        return pr  # type: ignore[no-any-return]

    # --- reading ------------------------------------------------------------------------
    def head(self, ref: str = "main") -> str:
        git_ref = self._missing(lambda: self._repo.get_git_ref(f"heads/{ref}"))
        if git_ref is None:
            raise NotFound(f"branch {ref!r} does not exist", field="ref")
        return str(git_ref.object.sha)

    def read_file(self, path: str, ref: str = "main") -> bytes | None:
        content = self._missing(lambda: self._repo.get_contents(path, ref=ref))
        if content is None or isinstance(content, list) or content.type != "file":
            return None
        if content.encoding == "base64":
            return bytes(content.decoded_content)
        # Files over 1 MB come without content: fetch the blob instead.
        blob = self._call(lambda: self._repo.get_git_blob(content.sha))
        return base64.b64decode(blob.content)

    def list_files(self, prefix: str = "", ref: str = "main") -> list[str]:
        tree = self._call(lambda: self._repo.get_git_tree(ref, recursive=True))
        if tree.raw_data.get("truncated"):
            raise ForgeError(f"the tree of {ref!r} is too large for one listing")
        base = prefix.strip("/")
        return sorted(item.path for item in tree.tree if item.type == "blob"
                      and (not base or item.path == base or item.path.startswith(base + "/")))

    def changed_paths(self, base: str, head: str) -> list[str]:
        comparison = self._call(lambda: self._repo.compare(base, head))
        files = list(comparison.files)
        if len(files) >= _COMPARE_FILES_MAX:
            return self._tree_diff(base, head)
        paths: set[str] = set()
        for item in files:
            paths.add(item.filename)
            if item.previous_filename:
                paths.add(item.previous_filename)
        return sorted(paths)

    def _tree_diff(self, base: str, head: str) -> list[str]:
        """Both trees in full, for diffs larger than the compare API lists."""
        def blobs(ref: str) -> dict[str, str]:
            tree = self._call(lambda: self._repo.get_git_tree(ref, recursive=True))
            return {i.path: i.sha for i in tree.tree if i.type == "blob"}
        old, new = blobs(base), blobs(head)
        return sorted(p for p in set(old) | set(new) if old.get(p) != new.get(p))

    def is_ancestor(self, commit: str, ref: str = "main") -> bool:
        # compare(ref...commit) is "behind" when commit is reachable from ref.
        comparison = self._missing(lambda: self._repo.compare(ref, commit))
        return comparison is not None and comparison.status in ("behind", "identical")

    # --- pull requests ------------------------------------------------------------------
    def get_change(self, number: int) -> ChangeInfo:
        return self._info(self._pull(number))

    def find_change(self, branch: str) -> ChangeInfo | None:
        pulls = self._call(lambda: list(self._repo.get_pulls(
            state="open", head=f"{self._owner}:{branch}")))
        return self._info(pulls[0]) if pulls else None

    def open_change(self, spec: ChangeSpec) -> ChangeInfo:
        existing = self.find_change(spec.branch)
        if existing is not None:  # a retry after the PR was opened: same change, no second PR
            return existing
        base_sha = self.head(spec.base)
        commit_sha = self._commit(base_sha, spec.files, spec.title, spec.author)
        self._set_branch(spec.branch, commit_sha)
        body = f"{spec.body}\n\n<!-- caas:author={spec.author} -->"
        try:
            pr = self._repo.create_pull(base=spec.base, head=spec.branch, title=spec.title,
                                        body=body)
        except GithubException as exc:
            raced = self.find_change(spec.branch) if exc.status == 422 else None
            if raced is not None:
                return raced
            raise ForgeError(f"GitHub refused the pull request: {exc.status}") from exc
        if spec.labels:
            self._call(lambda: pr.add_to_labels(*spec.labels))
        self._request_reviews(pr, spec)
        return self.get_change(pr.number)

    def update_change(self, number: int, files: Sequence[FileChange], message: str
                      ) -> ChangeInfo:
        pr = self._pull(number)
        if pr.state != "open":
            raise ForgeError(f"pull request #{number} is {pr.state}; only open ones take commits")
        commit_sha = self._commit(pr.head.sha, files, message, None)
        git_ref = self._call(lambda: self._repo.get_git_ref(f"heads/{pr.head.ref}"))
        # No force: a commit pushed to the branch meanwhile makes this fail instead of vanish.
        self._call(lambda: git_ref.edit(commit_sha, force=False))
        return self.get_change(number)

    def set_check(self, number: int, check: Check) -> None:
        pr = self._pull(number)
        commit = self._call(lambda: self._repo.get_commit(pr.head.sha))
        description = check.description
        if len(description) > _STATUS_DESCRIPTION_MAX:
            description = description[:_STATUS_DESCRIPTION_MAX - 1] + "…"
        kwargs: dict[str, str] = {"state": check.state.value, "context": check.name,
                                  "description": description}
        if check.url:
            kwargs["target_url"] = check.url
        self._call(lambda: commit.create_status(**kwargs))

    def comment(self, number: int, body: str, *, key: str = "preview") -> None:
        pr = self._pull(number)
        marker = comment_marker(key)
        text = f"{marker}\n{body}"
        for existing in self._call(lambda: list(pr.get_issue_comments())):
            if marker in (existing.body or ""):
                if existing.body != text:
                    self._call(lambda c=existing: c.edit(text))
                return
        self._call(lambda: pr.create_issue_comment(text))

    def close_change(self, number: int, *, by: str) -> ChangeInfo:
        pr = self._pull(number)
        if pr.state == "open":
            self._call(lambda: pr.create_issue_comment(f"Closed from the portal by @{by}."))
            self._call(lambda: pr.edit(state="closed"))
        return self.get_change(number)

    # --- internals ----------------------------------------------------------------------
    def _commit(self, parent_sha: str, files: Sequence[FileChange], message: str,
                author: str | None) -> str:
        """Blobs → a tree on the parent's tree → a commit; returns the commit id.

        UTF-8 text goes inline in the tree request (GitHub stores it as a blob) and only other
        content gets a blob request of its own: every write counts against GitHub's secondary
        rate limit and PyGithub spaces writes a second apart.
        """
        repo = self._repo
        parent = self._call(lambda: repo.get_git_commit(parent_sha))
        elements = []
        for change in files:
            if change.content is None:
                elements.append(InputGitTreeElement(change.path, "100644", "blob", sha=None))
                continue
            text = _utf8(change.content)
            if text is not None:
                elements.append(InputGitTreeElement(change.path, "100644", "blob",
                                                    content=text))
                continue
            encoded = base64.b64encode(change.content).decode()
            blob = self._call(lambda e=encoded: repo.create_git_blob(e, "base64"))
            elements.append(InputGitTreeElement(change.path, "100644", "blob", sha=blob.sha))
        tree = self._call(lambda: repo.create_git_tree(elements, base_tree=parent.tree))
        if author:
            message = f"{message}\n\nRequested-by: {author}"
        commit = self._call(lambda: repo.create_git_commit(message, tree, [parent]))
        return str(commit.sha)

    def _set_branch(self, branch: str, sha: str) -> None:
        existing = self._missing(lambda: self._repo.get_git_ref(f"heads/{branch}"))
        if existing is None:
            self._call(lambda: self._repo.create_git_ref(f"refs/heads/{branch}", sha))
        else:
            # A branch without an open PR is a leftover of an interrupted attempt at this very
            # change (branch names are the portal's own): point it at the fresh commit.
            self._call(lambda: existing.edit(sha, force=True))

    def _request_reviews(self, pr: PullRequest, spec: ChangeSpec) -> None:
        users, teams = split_reviewers(spec.reviewers)
        codeowners = next((text for text in (self.read_file(p, spec.base)
                                             for p in CODEOWNERS_PATHS) if text), None)
        if codeowners is not None:
            paths = [f.path for f in spec.files]
            owner_users, owner_teams = codeowners_for(codeowners.decode(errors="replace"), paths)
            users += [u for u in owner_users if u not in users]
            teams += [t for t in owner_teams if t not in teams]
        # GitHub refuses a review request to the PR's author (the bot) with a 422.
        users = [u for u in users if u not in (pr.user.login, spec.author)]
        # Team reviewers are slugs inside the repository's organisation.
        slugs = [t.split("/", 1)[1] for t in teams if t.split("/", 1)[0] == self._owner]
        if users or slugs:
            self._call(lambda: pr.create_review_request(reviewers=users, team_reviewers=slugs))

    def _info(self, pr: PullRequest) -> ChangeInfo:
        body = pr.body or ""
        found = _AUTHOR_MARKER.search(body)
        author = found.group(1) if found else pr.user.login
        if found:
            body = body[:found.start()]
        state = (ChangeState.merged if pr.merged else
                 ChangeState.open if pr.state == "open" else ChangeState.closed)
        combined = self._call(lambda: self._repo.get_commit(pr.head.sha).get_combined_status())
        checks = [Check(name=s.context, state=CheckState(s.state),
                        description=s.description or "", url=s.target_url or "")
                  for s in combined.statuses]
        reviewers = [u.login for u in pr.requested_reviewers]
        reviewers += [f"{self._owner}/{t.slug}" for t in pr.requested_teams]
        return ChangeInfo(
            number=pr.number, url=pr.html_url, branch=pr.head.ref, base=pr.base.ref,
            title=pr.title, body=body, author=author, state=state,
            head_sha=pr.head.sha, base_sha=pr.base.sha,
            merge_sha=pr.merge_commit_sha if pr.merged else None,
            labels=[label.name for label in pr.labels], reviewers=reviewers, checks=checks,
            created_at=_aware(pr.created_at), merged_at=_aware(pr.merged_at),
            merged_by=pr.merged_by.login if pr.merged and pr.merged_by else None,
        )


def _utf8(content: bytes) -> str | None:
    """The text of ``content`` when it is UTF-8 and round-trips unchanged, else None."""
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return text if "\x00" not in text else None


def _aware(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)
