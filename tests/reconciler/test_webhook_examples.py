"""The webhook endpoint fed every ``push``, ``pull_request`` and ``ping`` example GitHub's
``@octokit/webhooks-examples`` ships, plus variants (merged, fork, portal branch, tag push,
deleted branch, another repository, a push whose ``after`` is not on the default branch),
with the GitHub forge talking to the fake server: the README table's outcome for each, never a
5xx."""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from devtools.server import serve
from gitops.forges.base import ChangeSpec, FileChange
from gitops.forges.github import GitHubForge
from gitops.forges.github_webhook import sign
from portal.app import create_app
from portal.auth.models import AuditEvent
from portal.settings import ForgeKind, Settings
from reconciler.models import Job, MergeRecord
from scaffolder.models import Change
from tests.fakes.github import PREFIX, FakeGitHub
from tests.fakes.github_npm import webhook_examples

pytestmark = [pytest.mark.github_spec,
              pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)]

SECRET = "examples-secret"
REPO = "Codertocat/Hello-World"  # the repository of GitHub's examples
PUSHED = "6113728f27ae82c7b1a177c8d03f9e96e0adf246"  # "after" of the examples' pushes
_ids = itertools.count(1)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeGitHub]:
    github = FakeGitHub()
    with serve(github.app) as url:
        github.base_url = url
        repo = github.add_repo(REPO)
        root = repo.commit_files("master", {"README.md": b"hello\n"}, "seed")
        # The examples' pushed commit, on master.
        repo.commits[PUSHED] = {"tree": repo.commits[root]["tree"], "parents": [root],
                                "message": "pushed"}
        repo.refs["heads/master"] = PUSHED
        forge = GitHubForge(REPO, token="t", base_url=url + PREFIX, seconds_between_writes=None)
        for branch in ("other", "changes"):  # the examples' pull request is #2 from "changes"
            forge.open_change(ChangeSpec(branch=branch, title=branch, body="", author="x",
                                         base="master",
                                         files=[FileChange(f"{branch}.txt", b"x\n")]))
        yield github


@pytest.fixture
def client(settings: Settings, engine: Engine, fake: FakeGitHub) -> Iterator[TestClient]:
    configured = settings.model_copy(update={
        "github_webhook_secret": SecretStr(SECRET), "github_repo": REPO,
        "forge": ForgeKind.github, "github_url": fake.base_url + PREFIX,
        "github_token": SecretStr("ghs_examples"), "main_branch": "master",
        "github_write_interval_s": 0.0})
    with TestClient(create_app(configured, engine=engine)) as test_client:
        yield test_client


def _deliver(client: TestClient, event: str, payload: dict[str, Any]) -> Any:
    body = json.dumps(payload).encode()
    return client.post("/api/webhooks/github", content=body, headers={
        "content-type": "application/json", "x-github-event": event,
        "x-github-delivery": f"ex-{next(_ids)}", "x-hub-signature-256": sign(SECRET, body)})


def _expected(event: str, payload: dict[str, Any], portal_branches: set[str]) -> str:
    """The README table, restated over the payload's documented fields."""
    repository = (payload.get("repository") or {}).get("full_name")
    if repository is not None and repository != REPO:
        return "ignored: another repository"
    if event == "push":
        on_main = payload["ref"] == "refs/heads/master" and not payload["deleted"]
        return "merge recorded" if on_main else "ignored"
    if event != "pull_request":
        return "ignored"
    pr = payload["pull_request"]
    if payload["action"] == "closed" and pr.get("merged") and pr["base"]["ref"] == "master":
        return "merge recorded"
    if payload["action"] not in ("opened", "synchronize", "reopened", "ready_for_review"):
        return "ignored"
    head_repo = (pr["head"].get("repo") or {}).get("full_name")
    if head_repo != REPO:
        return "no plan: fork"
    if pr["head"]["ref"] in portal_branches:
        return "plan preview queued"
    return "no plan: foreign branch"


def _variants() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for event in ("push", "pull_request", "ping"):
        for i, example in enumerate(webhook_examples(event)):
            yield event, f"{event}-{i}", example
            foreign = copy.deepcopy(example)
            if isinstance(foreign.get("repository"), dict):
                foreign["repository"]["full_name"] = "someone/else"
                yield event, f"{event}-{i}-another-repository", foreign
    for i, example in enumerate(webhook_examples("pull_request")):
        if example["action"] == "closed":
            merged = copy.deepcopy(example)
            merged["pull_request"].update(merged=True, merge_commit_sha=PUSHED,
                                          merged_by={"login": "octocat"})
            yield "pull_request", f"pull_request-{i}-merged", merged
        if example["action"] in ("opened", "synchronize", "reopened"):
            fork = copy.deepcopy(example)
            fork["pull_request"]["head"]["repo"]["full_name"] = "mallory/Hello-World"
            yield "pull_request", f"pull_request-{i}-fork", fork
            deleted_fork = copy.deepcopy(example)
            deleted_fork["pull_request"]["head"]["repo"] = None
            yield "pull_request", f"pull_request-{i}-deleted-fork", deleted_fork
    push = next(p for p in webhook_examples("push") if p["ref"] == "refs/heads/master")
    for ref, deleted, name in (("refs/tags/v2", False, "tag"), ("refs/heads/dev", False,
                                                                 "other-branch"),
                               ("refs/heads/master", True, "deleted-branch")):
        variant = copy.deepcopy(push)
        variant.update(ref=ref, deleted=deleted)
        if deleted:
            variant["after"] = "0" * 40
        yield "push", f"push-{name}", variant


def test_every_example_and_variant_gets_its_rows_outcome(client: TestClient,
                                                         engine: Engine) -> None:
    outcomes: dict[str, tuple[int, str, str]] = {}
    for event, name, payload in _variants():
        response = _deliver(client, event, payload)
        status = response.json().get("status", "") if response.status_code == 202 else ""
        expected = _expected(event, payload, set())
        # "no plan: <reason>" names the reason; the oracle names its kind.
        kind = ("no plan: fork" if "fork" in status else
                "no plan: foreign branch" if "not created by the portal" in status else status)
        outcomes[name] = (response.status_code, kind, expected)
    wrong = {n: o for n, o in outcomes.items() if o[:2] != (202, o[2])}
    assert wrong == {}
    assert len(outcomes) >= 40 + 36  # every example, and a variant of each
    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(MergeRecord)).one() == 1
        ignored = session.exec(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "reconciler.webhook.ignored")).one()
        assert ignored == sum(1 for o in outcomes.values()
                              if o[2] == "ignored: another repository")
    # One reason on the pull request, edited in place as deliveries come (the last one's).
    [reason] = [c for c in fake_comments(client) if "caas:plan-preview" in c]
    assert "No Terraform plan preview" in reason


def fake_comments(client: TestClient) -> list[str]:
    url = client.app.state.settings.github_url  # type: ignore[attr-defined]
    forge = GitHubForge(REPO, token="t", base_url=url, seconds_between_writes=None)
    return [c["body"] for c in forge.rest.pages(f"/repos/{REPO}/issues/2/comments")]


def test_portal_branches_are_previewed_and_stray_pushes_refused(
        client: TestClient, engine: Engine) -> None:
    with Session(engine) as session:
        session.add(Change(template="environment", template_version="v1", unit_key="changes",
                           branch="changes", title="t", author="alice", number=2))
        session.commit()
    for example in webhook_examples("pull_request"):
        expected = _expected("pull_request", example, {"changes"})
        response = _deliver(client, "pull_request", example)
        assert (response.status_code, response.json()["status"]) == (202, expected)
    stray = copy.deepcopy(next(p for p in webhook_examples("push")
                               if p["ref"] == "refs/heads/master"))
    stray["after"] = "e" * 40
    response = _deliver(client, "push", stray)
    assert response.status_code == 422 and response.json()["error"]["field"] == "after"
    with Session(engine) as session:
        jobs = session.exec(select(Job)).all()
        # A "synchronize" (a push to the PR's branch) also has the new head checked again.
        pushed = any(e["action"] == "synchronize" for e in webhook_examples("pull_request"))
        assert {j.kind for j in jobs} == {"plan_preview"} | ({"pr_checks"} if pushed else set())


_ODD = [None, [], {}, "x", 0, -1, True, 2**70, "--upload-pack=touch /tmp/x", "0" * 40]


def test_odd_values_in_every_field_never_give_a_5xx(client: TestClient) -> None:
    """Each example with one of its fields (top level, and the pull request's head and base)
    replaced by a value of the wrong kind: a 202 or a 4xx naming what is wrong, never a 5xx."""
    statuses: dict[int, int] = {}
    for event in ("push", "pull_request"):
        example = webhook_examples(event)[0 if event == "pull_request" else 4]
        places: list[list[str]] = [[k] for k in example]
        if event == "pull_request":
            places += [["pull_request", k] for k in ("number", "head", "base", "merged",
                                                      "merge_commit_sha")]
            places += [["pull_request", side, k] for side in ("head", "base")
                       for k in ("ref", "sha", "repo")]
        for place in places:
            for odd in _ODD:
                payload = copy.deepcopy(example)
                target = payload
                for key in place[:-1]:
                    target = target[key]
                target[place[-1]] = odd
                response = _deliver(client, event, payload)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                assert response.status_code < 500, (place, odd, response.text)
                if response.status_code >= 400:
                    assert response.json()["error"].get("field"), response.text
    assert set(statuses) <= {202, 400, 422} and statuses[202] > 0
