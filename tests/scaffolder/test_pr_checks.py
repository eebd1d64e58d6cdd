"""The check lifecycle of a pull request (``scaffolder.pr_checks``): the request answers once
the PR exists with manifests, kustomize, policies and capacity pending; a durable job in the
reconciler's queue reports them; merging waits for green; a retried job reports once; a new
head is checked again; a refused request writes nothing."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from catalog.models import TimelineEvent
from gitops import gittree
from gitops.forges.base import FileChange
from gitops.forges.github import GitHubForge
from gitops.forges.local import LocalForge
from gitops.forges.models import LocalCheck
from portal.auth import service as auth_service
from portal.auth.models import Role
from portal.auth.principal import Principal
from portal.settings import Settings
from reconciler import jobs, queue
from reconciler import service as reconciler_service
from reconciler.context import JobContext
from reconciler.models import Job, JobKind
from reconciler.worker import Worker
from scaffolder import pr_checks, review, service
from scaffolder.checks_runner import DEFERRED
from scaffolder.models import Change, ScaffoldRequest, Task
from scaffolder.registry import Registry
from tests.conftest import UserFactory
from tests.fakes.github import PREFIX, FakeGitHub, FakeRepo, served
from tests.reconciler.conftest import drain

pytestmark = pytest.mark.checks_after_pr

TENANT = {"team": "payments", "name": "web", "cost_center": "cc-1", "environments": ["dev"]}
UNIT = "tenants/payments/payments-web"
Headers = Callable[[str], dict[str, str]]


def _people(make_user: UserFactory) -> None:
    make_user("alice", teams={"payments": Role.developer})
    make_user("bob", teams={"payments": Role.developer})


def _checks(change: dict[str, Any]) -> dict[str, str]:
    return {c["name"]: c["state"] for c in change["checks"]}


def _forge_checks(engine: Engine, number: int) -> dict[str, str]:
    with Session(engine) as s:
        return {c.name: c.state for c in s.exec(select(LocalCheck).where(
            LocalCheck.number == number)).all()}


def _open(client: TestClient, alice: dict[str, str]) -> dict[str, Any]:
    got = client.post("/api/scaffolder/tasks", headers=alice,
                      json={"template": "tenant", "answers": TENANT})
    assert got.status_code == 201, got.text
    task = got.json()
    assert task["status"] == "succeeded", task
    change = client.get(f"/api/changes/{task['change_id']}", headers=alice).json()
    assert change["number"] is not None and change["status"] == "open"
    return dict(change)


def test_the_pr_opens_pending_then_turns_green_and_merges(
        app_client: TestClient, settings: Settings, engine: Engine, gitops: Path,
        make_user: UserFactory, auth_headers: Headers) -> None:
    _people(make_user)
    alice, bob = auth_headers("alice"), auth_headers("bob")
    change = _open(app_client, alice)
    cid, number = change["id"], change["number"]
    # The PR exists with the slow checks pending; collisions answered with the request.
    assert _checks(change) == {"manifests": "pending", "kustomize": "pending",
                               "policies": "pending", "collisions": "success",
                               "capacity": "pending"}
    assert not change["checks_green"]
    assert _forge_checks(engine, number) == {f"caas/{n}": "pending" for n in DEFERRED} | {
        "caas/collisions": "success"}
    with Session(engine) as s:
        [job] = s.exec(select(Job).where(Job.kind == JobKind.pr_checks.value)).all()
        assert (job.commit, job.state, job.change_number) == (change["head_sha"], "queued",
                                                               number)
    # Merging waits: the button says why, the POST is refused with the same reason.
    assert app_client.post(f"/api/changes/{cid}/approve", headers=bob).status_code == 200
    with Session(engine) as s:
        row = s.get(Change, cid)
        assert row is not None
        bob_principal = auth_service.principal_for(
            s, auth_service.get_user(s, username="bob"), via="token")
        decision = review.action_decisions(bob_principal, row)["merge"]
    assert not decision and decision.reason.startswith("checks still running: manifests")
    refused = app_client.post(f"/api/changes/{cid}/merge", headers=bob)
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"]["rule"] == "checks-pending"
    assert "checks still running" in refused.json()["error"]["message"]
    assert gittree.resolve(gitops, "main") == change["base_sha"]  # nothing merged

    drain(Worker(settings, engine, LocalForge(settings, engine)))
    done = app_client.get(f"/api/changes/{cid}", headers=alice).json()
    assert set(_checks(done).values()) == {"success"} and done["checks_green"], done["checks"]
    assert set(_forge_checks(engine, number).values()) == {"success"}
    merged = app_client.post(f"/api/changes/{cid}/merge", headers=bob)
    assert merged.status_code == 200, merged.text


@pytest.mark.parametrize(("files", "red"), [
    # An overlay naming a file that does not exist does not build.
    ({f"{UNIT}/envs/dev/kustomization.yaml":
      b"apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
      b"resources:\n  - ../../base\n  - missing.yaml\n"}, "kustomize"),
    # A pod on :latest without limits: denied by the Gatekeeper constraints on main.
    ({f"{UNIT}/base/debug.yaml":
      b"apiVersion: v1\nkind: Pod\nmetadata:\n  name: debug\n  namespace: payments-web\n"
      b"  labels:\n    app.kubernetes.io/name: debug\n"
      b"spec:\n  containers:\n    - name: shell\n      image: busybox:latest\n"}, "policies"),
], ids=["kustomize", "policies"])
def test_a_push_to_the_head_is_checked_again_and_a_red_check_blocks_the_merge(
        files: dict[str, bytes], red: str, app_client: TestClient, settings: Settings,
        engine: Engine, gitops: Path, make_user: UserFactory, auth_headers: Headers) -> None:
    _people(make_user)
    alice, bob = auth_headers("alice"), auth_headers("bob")
    change = _open(app_client, alice)
    cid, number, first = change["id"], change["number"], change["head_sha"]
    forge = LocalForge(settings, engine)
    drain(Worker(settings, engine, forge))
    assert app_client.get(f"/api/changes/{cid}", headers=alice).json()["checks_green"]
    # A push to the PR's branch (what GitHub's "synchronize" delivery reports).
    pushed = forge.update_change(number, [FileChange(p, c) for p, c in files.items()],
                                 message="hand edit")
    assert pushed.head_sha != first
    with Session(engine) as s:
        reconciler_service.request_pr_checks(s, change_number=number, head_sha=pushed.head_sha)
        # Asked twice (a redelivered webhook): still one job for the head.
        reconciler_service.request_pr_checks(s, change_number=number, head_sha=pushed.head_sha)
        assert len(s.exec(select(Job).where(Job.commit == pushed.head_sha)).all()) == 1
    drain(Worker(settings, engine, forge))
    done = app_client.get(f"/api/changes/{cid}", headers=alice).json()
    assert done["head_sha"] == pushed.head_sha
    assert _checks(done)[red] == "failure" and not done["checks_green"], done["checks"]
    assert _forge_checks(engine, number)[f"caas/{red}"] == "failure"
    assert app_client.post(f"/api/changes/{cid}/approve", headers=bob).status_code == 200
    refused = app_client.post(f"/api/changes/{cid}/merge", headers=bob)
    assert refused.status_code == 409 and red in refused.text, refused.text
    assert gittree.resolve(gitops, "main") == change["base_sha"]


def test_a_stale_head_stores_nothing(app_client: TestClient, settings: Settings,
                                     engine: Engine, gitops: Path, make_user: UserFactory,
                                     auth_headers: Headers) -> None:
    _people(make_user)
    change = _open(app_client, auth_headers("alice"))
    forge = LocalForge(settings, engine)
    forge.update_change(change["number"], [FileChange(f"{UNIT}/base/extra.txt", b"x\n")],
                        message="moved on")
    with Session(engine, expire_on_commit=False) as s:
        message = service.run_pr_checks(s, forge=forge, number=change["number"],
                                        sha=change["head_sha"])
        row = s.get(Change, change["id"])
        assert row is not None
        assert "stale" in message and not row.checks_green
        assert {c["name"]: c["state"] for c in row.checks}["manifests"] == "pending"


def _timeline(engine: Engine, event: str) -> int:
    with Session(engine) as s:
        return len(s.exec(select(TimelineEvent).where(TimelineEvent.event == event)).all())


def test_a_job_killed_after_reporting_is_retried_and_reports_once(
        app_client: TestClient, settings: Settings, engine: Engine, gitops: Path,
        make_user: UserFactory, auth_headers: Headers) -> None:
    _people(make_user)
    change = _open(app_client, auth_headers("alice"))
    forge = LocalForge(settings, engine)
    # A worker takes the job, reports every check, and dies before recording the outcome.
    with Session(engine, expire_on_commit=False) as s:
        job = queue.claim(s, worker_id="doomed", lease_s=0.2, max_attempts=5)
    assert job is not None and job.kind == JobKind.pr_checks.value
    jobs.pr_checks(JobContext(settings=settings, engine=engine, forge=forge, job=job,
                              worker_id="doomed", log=lambda _m: None))
    first = _forge_checks(engine, change["number"])
    assert set(first.values()) == {"success"}
    time.sleep(0.3)  # its lease runs out
    drain(Worker(settings, engine, forge))
    with Session(engine) as s:
        again = s.get(Job, job.id)
        assert again is not None and (again.state, again.attempts) == ("succeeded", 2)
        rows = s.exec(select(LocalCheck).where(LocalCheck.number == change["number"])).all()
    assert Counter(r.name for r in rows) == Counter(first.keys())  # one status per check
    assert _forge_checks(engine, change["number"]) == first
    assert _timeline(engine, "checks.finished") == 1


@pytest.fixture
def github(gitops: Path) -> Iterator[tuple[FakeGitHub, FakeRepo]]:
    with served("acme/gitops", {p: gittree.read_blob(gitops, "main", p) or b""
                                for p in gittree.list_paths(gitops, "main")}) as (fake, repo):
        yield fake, repo


@pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
def test_on_github_each_status_is_posted_pending_then_final_even_when_the_job_runs_twice(
        settings: Settings, engine: Engine, make_user: UserFactory,
        github: tuple[FakeGitHub, FakeRepo]) -> None:
    fake, repo = github
    make_user("alice", teams={"payments": Role.developer})
    with Session(engine) as s:
        principal = auth_service.principal_for(
            s, auth_service.get_user(s, username="alice"), via="token")
    forge = GitHubForge("acme/gitops", token="ghs_test", base_url=fake.base_url + PREFIX,
                        seconds_between_writes=None)
    with Session(engine, expire_on_commit=False) as s:
        task = service.create_task(s, registry=Registry(settings), forge=forge,
                                   principal=principal, request=ScaffoldRequest(
                                       template="tenant", answers=TENANT))
    assert task.status == "succeeded", task.error
    with Session(engine) as s:
        row = s.get(Change, task.change_id)
        assert row is not None and row.head_sha and row.number
        sha, number = row.head_sha, row.number
    contexts = {f"caas/{n}" for n in DEFERRED}
    assert {s["context"]: s["state"] for s in repo.statuses[sha]
            if s["context"] in contexts} == dict.fromkeys(contexts, "pending")
    for _ in range(2):  # the job, and its retry after a crash before its outcome was written
        with Session(engine, expire_on_commit=False) as s:
            service.run_pr_checks(s, forge=forge, number=number, sha=sha)
    posted = Counter(s["context"] for s in repo.statuses[sha])
    assert {c: posted[c] for c in contexts} == dict.fromkeys(contexts, 2)  # pending, then final
    newest = {}
    for status in reversed(repo.statuses[sha]):  # oldest first: the last one wins
        newest[status["context"]] = status["state"]
    assert {c: newest[c] for c in contexts} == dict.fromkeys(contexts, "success")


def test_a_refused_request_writes_nothing(app_client: TestClient, engine: Engine,
                                          gitops: Path, make_user: UserFactory,
                                          auth_headers: Headers) -> None:
    _people(make_user)
    branches_before = sorted(p.name for p in (gitops / "refs" / "heads").iterdir())
    bad = app_client.post("/api/scaffolder/tasks", headers=auth_headers("alice"),
                          json={"template": "tenant", "answers": {**TENANT, "name": "Bad_Name"}})
    assert bad.status_code == 422 and bad.json()["error"]["field"].endswith("name"), bad.text
    with Session(engine) as s:
        assert s.exec(select(Change.id)).all() == []
        assert s.exec(select(Task.id)).all() == []
        assert s.exec(select(Job.id).where(col(Job.kind) == JobKind.pr_checks.value)).all() == []
    assert sorted(p.name for p in (gitops / "refs" / "heads").iterdir()) == branches_before


def test_a_running_check_is_named_before_a_failing_one() -> None:
    change = Change(template="tenant", template_version="v", action="create", unit_key=UNIT,
                    branch="b", forge="local", title="t", author="alice", team="payments",
                    status="open", number=1, checks=[
                        {"name": "manifests", "state": "pending", "summary": ""},
                        {"name": "collisions", "state": "failure", "summary": ""},
                        # A promotion's approval gate is pending too, but waits for a person.
                        {"name": "approval", "state": "pending", "summary": ""}])
    bob = Principal(user_id=2, username="bob", team_roles={"payments": Role.developer})
    assert review.merge_decision(bob, change).reason == "checks still running: manifests"
    change.checks = change.checks[1:]
    assert review.merge_decision(bob, change).reason == "checks failing: collisions, approval"


def test_checks_asked_again_for_the_same_head_run_again(
        app_client: TestClient, settings: Settings, engine: Engine, gitops: Path,
        make_user: UserFactory, auth_headers: Headers) -> None:
    # A retried request stores the deferred checks pending again for the head it already had.
    _people(make_user)
    change = _open(app_client, auth_headers("alice"))
    forge = LocalForge(settings, engine)
    drain(Worker(settings, engine, forge))
    with Session(engine, expire_on_commit=False) as s:
        row = s.get(Change, change["id"])
        assert row is not None and row.checks_green
        row.checks = [{**c, "state": "pending"} if c["name"] in DEFERRED else c
                      for c in row.checks]
        row.checks_green = False
        s.add(row)
        s.commit()
        pr_checks.queue(s, forge=forge, number=change["number"], sha=change["head_sha"])
        [job] = s.exec(select(Job).where(Job.kind == JobKind.pr_checks.value)).all()
        assert (job.state, job.attempts) == ("queued", 0)
    drain(Worker(settings, engine, forge))
    with Session(engine) as s:
        row = s.get(Change, change["id"])
        assert row is not None and row.checks_green, row.checks if row else None
