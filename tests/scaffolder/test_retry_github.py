"""A scaffolder task on GitHub (the fake server) whose commit statuses hit a rate limit an hour
away after the PR exists: the task fails at that step with a temporary error, holds no thread,
and its retry completes exactly what was missing — one PR, each status once, one preview
comment, the labels — and reports the CODEOWNERS owner GitHub cannot ask for a review."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from gitops import gittree
from gitops.forges.github import GitHubForge
from portal.auth import service as auth_service
from portal.auth.models import Role
from portal.settings import Settings
from scaffolder import service
from scaffolder.models import ScaffoldRequest
from scaffolder.registry import Registry
from tests.conftest import UserFactory
from tests.fakes.github import PREFIX, FakeGitHub, FakeRepo, Fault, served

NOW = 1_800_000_000.0


@pytest.fixture
def github(gitops: Path) -> Iterator[tuple[FakeGitHub, FakeRepo]]:
    with served("acme/gitops", {p: gittree.read_blob(gitops, "main", p) or b""
                                for p in gittree.list_paths(gitops, "main")}) as (fake, repo):
        repo.collaborators = set()  # nobody CODEOWNERS names may review: a stale file
        yield fake, repo


@pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
def test_a_rate_limited_step_is_retried_for_that_step_only(
        settings: Settings, engine: Engine, make_user: UserFactory,
        github: tuple[FakeGitHub, FakeRepo]) -> None:
    fake, repo = github
    make_user("alice", teams={"payments": Role.developer})
    with Session(engine) as s:
        principal = auth_service.principal_for(
            s, auth_service.get_user(s, username="alice"), via="token")
    waits: list[float] = []
    forge = GitHubForge("acme/gitops", token="ghs_test", base_url=fake.base_url + PREFIX,
                        sleep=waits.append, clock=lambda: NOW, seconds_between_writes=None)
    reset = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(NOW) + 3600)}
    fake.faults.append(Fault("POST", "/statuses/", 403, reset, skip=2))
    request = ScaffoldRequest(template="tenant", answers={
        "team": "payments", "name": "web", "cost_center": "cc", "environments": ["dev"]})
    registry = Registry(settings)
    with Session(engine, expire_on_commit=False) as s:
        failed = service.create_task(s, registry=registry, forge=forge, principal=principal,
                                     request=request)
    assert failed.status == "failed" and "rate limit" in failed.error
    assert (failed.events[-1].step, failed.events[-1].status) == ("statuses", "failed")
    assert waits == []  # an hour away: no thread blocked
    [pr] = repo.pulls.values()
    head = repo.refs[f"heads/{pr['head']}"]
    assert len(repo.statuses[head]) == 2

    fake.reset_log()
    with Session(engine, expire_on_commit=False) as s:
        retried = service.retry_task(s, registry=registry, forge=forge, principal=principal,
                                     task_id=failed.id)
    assert retried.status == "succeeded", retried.error
    assert list(repo.pulls) == [pr["number"]] and pr["labels"]
    contexts = [st["context"] for st in repo.statuses[head]]
    assert len(contexts) == len(set(contexts)) == 5  # each status once
    keys = [c["body"].splitlines()[0] for c in repo.comments.values()]
    assert sorted(keys) == ["<!-- caas:preview -->", "<!-- caas:reviewers -->"]
    assert "@platform-admins" in next(c["body"] for c in repo.comments.values()
                                      if "caas:reviewers" in c["body"])
    assert not [c for c in fake.calls if c.method == "POST" and c.path.endswith("/pulls")]
