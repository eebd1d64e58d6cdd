"""The README's "GitHub webhooks" table, row by row, through the real endpoint, a real bare
repository behind the local forge, and both databases."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from gitops.forges.base import ChangeSpec, FileChange
from gitops.forges.github_webhook import sign
from gitops.forges.local import LocalForge
from portal.app import create_app
from portal.auth.models import AuditEvent
from portal.settings import Settings
from reconciler.models import Job, MergeRecord
from reconciler.webhook_models import PreviewAllowance
from scaffolder.models import Change
from tests.conftest import UserFactory
from tests.reconciler.conftest import push

SECRET = "webhook-secret"
REPO = "acme/gitops"
_ids = itertools.count(1)


@pytest.fixture
def client(settings: Settings, engine: Engine, forge: LocalForge) -> Iterator[TestClient]:
    configured = settings.model_copy(update={"github_webhook_secret": SecretStr(SECRET),
                                             "github_repo": REPO})
    with TestClient(create_app(configured, engine=engine)) as test_client:
        yield test_client


Deliver = Callable[..., Any]


@pytest.fixture
def deliver(client: TestClient) -> Deliver:
    def send(event: str, payload: dict[str, Any], *, delivery: str | None = None) -> Any:
        body = json.dumps(payload).encode()
        return client.post("/api/webhooks/github", content=body, headers={
            "content-type": "application/json", "x-github-event": event,
            "x-github-delivery": delivery or f"d-{next(_ids)}",
            "x-hub-signature-256": sign(SECRET, body)})
    return send


def _repo(name: str = REPO) -> dict[str, Any]:
    return {"full_name": name, "name": name.split("/")[1]}


def _push(ref: str, before: str, after: str, *, repo: str = REPO, deleted: bool = False
          ) -> dict[str, Any]:
    return {"ref": ref, "before": before, "after": after, "deleted": deleted,
            "repository": _repo(repo), "pusher": {"name": "octocat"}}


def _pr(action: str, number: int, branch: str, sha: str, *, head_repo: str | None = REPO,
        merged: bool = False, merge_sha: str | None = None) -> dict[str, Any]:
    return {"action": action, "number": number, "repository": _repo(),
            "sender": {"login": "dev"}, "pull_request": {
                "number": number, "merged": merged, "merge_commit_sha": merge_sha,
                "merged_by": {"login": "bob"} if merged else None,
                "base": {"ref": "main", "sha": "b" * 40, "repo": _repo()},
                "head": {"ref": branch, "sha": sha,
                         "repo": _repo(head_repo) if head_repo else None}}}


def _state(engine: Engine) -> tuple[int, int, list[str]]:
    with Session(engine) as session:
        merges = session.exec(select(func.count()).select_from(MergeRecord)).one()
        jobs = session.exec(select(func.count()).select_from(Job)).one()
        actions = [a.action for a in session.exec(select(AuditEvent).order_by(
            AuditEvent.id)).all()]  # type: ignore[arg-type]
    return merges, jobs, actions


def _open_pr(forge: LocalForge, branch: str) -> tuple[int, str]:
    info = forge.open_change(ChangeSpec(branch=branch, title="t", body="b", author="alice",
                                        files=[FileChange("envs/qa/infra.yaml", b"tier: dev\n")]))
    return info.number, info.head_sha


def _portal_change(engine: Engine, branch: str, number: int | None) -> None:
    with Session(engine) as session:
        session.add(Change(template="environment", template_version="v1", unit_key=branch,
                           branch=branch, title="t", author="alice", number=number))
        session.commit()


def test_push_to_main_is_recorded(deliver: Deliver, forge: LocalForge, engine: Engine) -> None:
    before, after = push(forge, {"teams/a/team.yaml": "name: a\n"})
    response = deliver("push", _push("refs/heads/main", before, after))
    assert (response.status_code, response.json()) == (202, {"status": "merge recorded"})
    assert _state(engine) == (1, 1, ["reconciler.merge"])


def test_push_whose_after_is_not_on_main_is_refused_and_audited(
        deliver: Deliver, forge: LocalForge, engine: Engine) -> None:
    main = forge.head()
    _before, side = push(forge, {"x.yaml": "x: 1\n"}, branch="side")
    for after in (side, "f" * 40):
        response = deliver("push", _push("refs/heads/main", main, after))
        assert response.status_code == 422
        assert response.json()["error"]["field"] == "after"
    assert _state(engine) == (0, 0, ["reconciler.merge.refused"] * 2)


@pytest.mark.parametrize("payload", [
    _push("refs/heads/feature", "a" * 40, "c" * 40),
    _push("refs/tags/v1.0.0", "0" * 40, "c" * 40),
    _push("refs/heads/main", "a" * 40, "0" * 40, deleted=True),
], ids=["other-branch", "tag", "deleted-branch"])
def test_pushes_elsewhere_are_ignored_and_not_audited(deliver: Deliver, engine: Engine,
                                                      payload: dict[str, Any]) -> None:
    response = deliver("push", payload)
    assert (response.status_code, response.json()) == (202, {"status": "ignored"})
    assert _state(engine) == (0, 0, [])


def test_another_repository_is_ignored_and_audited_once(deliver: Deliver, forge: LocalForge,
                                                        engine: Engine) -> None:
    before, after = push(forge, {"teams/a/team.yaml": "name: a\n"})
    foreign = _push("refs/heads/main", before, after, repo="acme/other")
    for _ in range(2):  # GitHub redelivers the same delivery id
        response = deliver("push", foreign, delivery="same-delivery")
        assert response.status_code == 202
    assert response.json() == {"status": "duplicate delivery"}
    pr = _pr("opened", 5, "caas/x", "c" * 40)
    pr["repository"] = _repo("Acme/Other")
    assert deliver("pull_request", pr).json() == {"status": "ignored: another repository"}
    assert deliver("ping", {"zen": "z", "repository": _repo("x/y")}).status_code == 202
    assert _state(engine) == (0, 0, ["reconciler.webhook.ignored"] * 3)


@pytest.mark.parametrize("action", ["opened", "synchronize", "reopened", "opened-early"])
def test_pull_requests_from_portal_branches_get_a_preview(
        deliver: Deliver, forge: LocalForge, engine: Engine, action: str) -> None:
    number, head = _open_pr(forge, "caas/env-qa")
    # "opened-early": GitHub's delivery arrives before the portal recorded the PR's number.
    _portal_change(engine, "caas/env-qa", None if action == "opened-early" else number)
    action = action.removesuffix("-early")
    response = deliver("pull_request", _pr(action, number, "caas/env-qa", head))
    assert (response.status_code, response.json()) == (202, {"status": "plan preview queued"})
    with Session(engine) as session:
        jobs = {j.kind: j.commit for j in session.exec(select(Job)).all()}
    # A push to the branch also has the new head's checks run (scaffolder.pr_checks).
    assert jobs == {"plan_preview": head} | ({"pr_checks": head} if action == "synchronize"
                                             else {})


@pytest.mark.parametrize(("branch", "head_repo", "reason"), [
    ("caas/env-qa", "mallory/gitops", "comes from a fork (mallory/gitops)"),
    ("caas/env-qa", None, "comes from a fork (a deleted fork)"),
    ("feature/qa", REPO, "the branch 'feature/qa' was not created by the portal"),
    ("caas/env-qa", REPO, "the branch 'caas/env-qa' was not created by the portal"),
], ids=["fork", "deleted-fork", "foreign-branch", "portal-branch-of-another-change"])
def test_forks_and_foreign_branches_get_no_plan_and_a_reason(
        deliver: Deliver, forge: LocalForge, engine: Engine, branch: str,
        head_repo: str | None, reason: str) -> None:
    number, head = _open_pr(forge, branch)
    if head_repo != REPO:
        _portal_change(engine, branch, number)  # even a branch name the portal uses
    elif branch.startswith("caas/"):
        _portal_change(engine, branch, number + 100)  # the portal's branch, another PR
    response = deliver("pull_request", _pr("synchronize", number, branch, head,
                                           head_repo=head_repo))
    assert response.status_code == 202
    assert response.json()["status"].startswith("no plan:")
    assert reason in response.json()["status"]
    assert _state(engine)[1] == 0
    assert reason in forge.comments(number)["plan-preview"]


def test_a_platform_admin_allows_one_head_commit(
        deliver: Deliver, client: TestClient, forge: LocalForge, engine: Engine,
        make_user: UserFactory, auth_headers: Callable[[str], dict[str, str]]) -> None:
    make_user("root", admin=True)
    make_user("dev")
    number, head = _open_pr(forge, "feature/qa")
    url = f"/api/reconciler/previews/{number}/allow"
    assert client.post(url, headers=auth_headers("dev")).status_code == 403
    assert _state(engine)[1] == 0
    response = client.post(url, headers=auth_headers("root"))
    assert (response.status_code, response.json()) == (
        202, {"status": "plan preview queued", "head_sha": head})
    assert client.post(url, headers=auth_headers("root")).status_code == 202  # idempotent
    with Session(engine) as session:
        assert [(a.change_number, a.head_sha, a.allowed_by) for a in
                session.exec(select(PreviewAllowance)).all()] == [(number, head, "root")]
    # The allowed commit is previewed when GitHub reports it; a later push is not.
    assert deliver("pull_request", _pr("synchronize", number, "feature/qa", head)).json() == {
        "status": "plan preview queued"}
    assert deliver("pull_request", _pr("synchronize", number, "feature/qa", "d" * 40)
                   ).json()["status"].startswith("no plan:")
    merges, jobs, actions = _state(engine)
    assert (merges, jobs, actions.count("reconciler.preview.allowed")) == (0, 1, 1)


def test_a_merged_pull_request_is_recorded(deliver: Deliver, forge: LocalForge,
                                           engine: Engine) -> None:
    _before, after = push(forge, {"teams/a/team.yaml": "name: a\n"})
    response = deliver("pull_request", _pr("closed", 7, "caas/a", "c" * 40, merged=True,
                                           merge_sha=after))
    assert (response.status_code, response.json()) == (202, {"status": "merge recorded"})
    closed = _pr("closed", 8, "caas/b", "c" * 40)
    assert deliver("pull_request", closed).json() == {"status": "ignored"}
    assert _state(engine)[:2] == (1, 1)


@pytest.mark.parametrize(("event", "payload"), [
    ("ping", {"zen": "Keep it logically awesome.", "hook_id": 1, "repository": _repo()}),
    ("ping", {"zen": "Organisation hook", "hook_id": 2}),
    ("issues", {"action": "opened", "repository": _repo()}),
    ("pull_request", _pr("labeled", 3, "caas/a", "c" * 40)),
])
def test_ping_and_other_events_are_ignored(deliver: Deliver, engine: Engine, event: str,
                                           payload: dict[str, Any]) -> None:
    response = deliver(event, payload)
    assert (response.status_code, response.json()) == (202, {"status": "ignored"})
    assert _state(engine) == (0, 0, [])


def test_a_redelivery_does_nothing_twice(deliver: Deliver, forge: LocalForge,
                                         engine: Engine) -> None:
    number, head = _open_pr(forge, "caas/env-qa")
    _portal_change(engine, "caas/env-qa", number)
    payload = _pr("opened", number, "caas/env-qa", head)
    assert deliver("pull_request", payload, delivery="x-1").json() == {
        "status": "plan preview queued"}
    assert deliver("pull_request", payload, delivery="x-1").json() == {
        "status": "duplicate delivery"}
    assert _state(engine)[1] == 1


def test_a_delivery_without_its_id_is_400(client: TestClient, engine: Engine) -> None:
    body = json.dumps({"zen": "z"}).encode()
    response = client.post("/api/webhooks/github", content=body, headers={
        "x-github-event": "ping", "x-hub-signature-256": sign(SECRET, body)})
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "X-GitHub-Delivery"


def test_webhook_tables_match_their_migration(engine: Engine) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlmodel import SQLModel

    ours = {"reconciler_webhook_deliveries", "reconciler_preview_allowances"}
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert [d for d in diffs if any(f"'{t}'" in repr(d) for t in ours)] == []
