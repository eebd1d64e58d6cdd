"""What follows a pull request's creation on GitHub: labels and review requests, each a step
that can be run again (a retry completes what is missing and repeats nothing).

Public contract:

- ``ensure_labels(rest, repo_path, pr, labels)``: adds the labels the PR lacks, in the documented
  object form ``{"labels": [...]}`` (``POST /repos/{owner}/{repo}/issues/{number}/labels``).
- ``ensure_reviewers(rest, repo_path, owner, pr, users, teams) -> list[str]``: requests reviews
  from those not yet asked and who have not reviewed (``pulls/{n}/reviews`` paged to the end);
  returns the names GitHub cannot ask (``@user`` / ``@org/team``) — GitHub answers 422 to the
  whole request when one of them is not a collaborator, so after a 422 each name is probed and
  the request is sent again for those who can review.
- ``cannot_review(rest, repo_path, owner, users, teams) -> list[str]``: the names among these
  that are not collaborators of the repository (``GET /repos/{o}/{r}/collaborators/{user}``:
  204 or 404) or teams without access to it (``GET /orgs/{org}/teams/{slug}/repos/{o}/{r}``),
  teams of another organisation included (GitHub asks only teams of the repository's owner).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from gitops.forges.github_rest import GitHubError, GitHubRest


def ensure_labels(rest: GitHubRest, repo_path: str, pr: dict[str, Any],
                  labels: Sequence[str]) -> None:
    present = {str(label.get("name")) for label in pr.get("labels") or []}
    missing = [label for label in dict.fromkeys(labels) if label not in present]
    if missing:
        rest.request("POST", f"{repo_path}/issues/{pr['number']}/labels",
                     body={"labels": missing})


def cannot_review(rest: GitHubRest, repo_path: str, owner: str, users: Sequence[str],
                  teams: Sequence[str]) -> list[str]:
    owner_repo = repo_path.removeprefix("/repos/")
    refused = [f"@{user}" for user in users
               if rest.status_of("GET", f"{repo_path}/collaborators/{quote(user)}") != 204]
    for team in teams:
        org, _, slug = team.partition("/")
        if org.lower() != owner.lower() or rest.status_of(
                "GET", f"/orgs/{quote(org)}/teams/{quote(slug)}/repos/{owner_repo}") not in (
                    200, 204):
            refused.append(f"@{team}")
    return refused


def ensure_reviewers(rest: GitHubRest, repo_path: str, owner: str, pr: dict[str, Any],
                     users: Sequence[str], teams: Sequence[str]) -> list[str]:
    number = pr["number"]
    asked = {str(u.get("login", "")).lower() for u in pr.get("requested_reviewers") or []}
    asked_teams = {str(t.get("slug", "")).lower() for t in pr.get("requested_teams") or []}
    reviewed = {str((r.get("user") or {}).get("login", "")).lower()
                for r in rest.pages(f"{repo_path}/pulls/{number}/reviews")}
    todo_users = [u for u in users if u.lower() not in asked | reviewed]
    todo_teams = [t for t in teams if t.split("/", 1)[1].lower() not in asked_teams]
    if not todo_users and not todo_teams:
        return []
    refused = [f"@{t}" for t in todo_teams if t.split("/", 1)[0].lower() != owner.lower()]
    todo_teams = [t for t in todo_teams if f"@{t}" not in refused]
    try:
        _request(rest, repo_path, number, todo_users, todo_teams)
    except GitHubError as exc:
        if exc.github_status != 422:
            raise
        refused += cannot_review(rest, repo_path, owner, todo_users, todo_teams)
        todo_users = [u for u in todo_users if f"@{u}" not in refused]
        todo_teams = [t for t in todo_teams if f"@{t}" not in refused]
        _request(rest, repo_path, number, todo_users, todo_teams)
    return refused


def _request(rest: GitHubRest, repo_path: str, number: int, users: Sequence[str],
             teams: Sequence[str]) -> None:
    if not users and not teams:
        return
    body: dict[str, list[str]] = {"reviewers": list(users)}
    if teams:
        body["team_reviewers"] = [t.split("/", 1)[1] for t in teams]
    rest.request("POST", f"{repo_path}/pulls/{number}/requested_reviewers", body=body)
