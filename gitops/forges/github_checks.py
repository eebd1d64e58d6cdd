"""The checks of a commit on GitHub: commit statuses and check runs, read to the last page.

Public contract:

- ``commit_checks(rest, repo_path, sha) -> list[Check]``: the latest status of every context
  (``GET /repos/{owner}/{repo}/commits/{ref}/status``, the combined status, which keeps the newest
  per context) followed by every check run (``GET .../commits/{ref}/check-runs``), each list paged
  to its end; neither needs the commit itself.
- ``check_run_state(run) -> CheckState``: a check run's ``status``/``conclusion`` as one state
  (GitHub's "About status checks": only ``success``, ``neutral`` and ``skipped`` pass).
- ``set_status(rest, repo_path, sha, check)``: ``POST .../statuses/{sha}`` unless the newest
  status of that context already says the same (a retried step writes nothing twice);
  the description is cut to GitHub's 140 characters.
"""

from __future__ import annotations

from typing import Any

from gitops.forges.base import Check, CheckState
from gitops.forges.github_rest import GitHubRest

STATUS_DESCRIPTION_MAX = 140  # GitHub refuses longer commit status descriptions (422)
_PASSING = frozenset({"success", "neutral", "skipped"})


def _statuses(rest: GitHubRest, repo_path: str, sha: str) -> list[dict[str, Any]]:
    # The combined status answers one object per page; its ``statuses`` array is the page.
    items = rest.pages(f"{repo_path}/commits/{sha}/status", key="statuses")
    return [s for s in items if isinstance(s, dict)]


def check_run_state(run: dict[str, Any]) -> CheckState:
    if run.get("status") != "completed":
        return CheckState.pending
    return CheckState.success if run.get("conclusion") in _PASSING else CheckState.failure


def commit_checks(rest: GitHubRest, repo_path: str, sha: str) -> list[Check]:
    checks = [Check(name=str(s.get("context") or ""), state=CheckState(s.get("state", "pending")),
                    description=str(s.get("description") or ""),
                    url=str(s.get("target_url") or ""))
              for s in _statuses(rest, repo_path, sha)]
    for run in rest.pages(f"{repo_path}/commits/{sha}/check-runs", key="check_runs"):
        output = run.get("output") or {}
        checks.append(Check(name=str(run.get("name") or ""), state=check_run_state(run),
                            description=str(output.get("title") or run.get("conclusion") or ""),
                            url=str(run.get("html_url") or run.get("details_url") or "")))
    return checks


def _description(text: str) -> str:
    if len(text) <= STATUS_DESCRIPTION_MAX:
        return text
    return text[:STATUS_DESCRIPTION_MAX - 1] + "…"


def set_status(rest: GitHubRest, repo_path: str, sha: str, check: Check) -> None:
    description = _description(check.description)
    for status in _statuses(rest, repo_path, sha):
        if status.get("context") == check.name:
            if (status.get("state") == check.state.value
                    and (status.get("description") or "") == description
                    and (status.get("target_url") or "") == check.url):
                return  # already said: a retry posts nothing
            break
    body: dict[str, str] = {"state": check.state.value, "context": check.name,
                            "description": description}
    if check.url:
        body["target_url"] = check.url
    rest.request("POST", f"{repo_path}/statuses/{sha}", body=body)
