"""End to end on LocalForge through the API: request a tenant → PR → checks → approval → merge."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from gitops import git, gittree
from gitops.forges.base import ChangeSpec, Check, CheckState, FileChange
from gitops.forges.factory import make_forge
from gitops.forges.local import LocalForge
from portal.auth.models import Role
from portal.errors import Conflict
from portal.settings import Settings
from scaffolder import service
from scaffolder.models import Change, ScaffoldRequest, Task
from scaffolder.registry import Registry
from tests.conftest import UserFactory

TENANT = {"team": "payments", "name": "web", "cost_center": "cc-1", "environments": ["dev"]}
EXPECTED = {f"tenants/payments/payments-web/{p}" for p in (
    ".caas-answers.yaml", "base/catalog-info.yaml", "base/dashboard.yaml",
    "base/kustomization.yaml", "base/limitrange.yaml", "base/namespace.yaml",
    "base/networkpolicy.yaml", "base/prometheusrule.yaml", "base/resourcequota.yaml",
    "base/rolebindings.yaml", "envs/dev/kustomization.yaml", "envs/dev/quota.yaml")}

# The database matters for the flow and the race; the rest runs on SQLite only.
SQLITE_ONLY = pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
Headers = Callable[[str], dict[str, str]]


def _people(make_user: UserFactory) -> None:
    make_user("alice", teams={"payments": Role.developer})
    make_user("bob", teams={"payments": Role.developer})
    make_user("eve", teams={"search": Role.developer})


def test_request_review_merge_end_to_end(app_client: TestClient, gitops: Path,
                                         make_user: UserFactory, auth_headers: Headers) -> None:
    _people(make_user)
    alice, bob, eve = auth_headers("alice"), auth_headers("bob"), auth_headers("eve")
    main_before = gittree.resolve(gitops, "main")

    got = app_client.post("/api/scaffolder/tasks", headers=alice,
                          json={"template": "tenant", "answers": TENANT})
    assert got.status_code == 201, got.text
    task = got.json()
    assert task["status"] == "succeeded", task
    assert [e["step"] for e in task["events"]][-1] == "done"
    change = app_client.get(f"/api/changes/{task['change_id']}", headers=alice).json()
    assert {f["path"] for f in change["files"]} == EXPECTED
    assert all(f["status"] == "added" for f in change["files"])
    assert change["status"] == "open" and change["checks_green"], change["checks"]
    assert [c["name"] for c in change["checks"]] == ["manifests", "kustomize", "policies",
                                                     "collisions", "capacity"]
    assert "member of team `payments`" in change["routing"]
    # The PR exists on the branch, main is untouched.
    assert gittree.resolve(gitops, "main") == main_before
    pr_files = gittree.changed_paths(gitops, main_before, change["head_sha"])
    assert set(pr_files) == EXPECTED

    cid = change["id"]
    assert app_client.post(f"/api/changes/{cid}/approve", headers=alice).status_code == 403
    assert app_client.post(f"/api/changes/{cid}/approve", headers=eve).status_code == 403
    assert app_client.post(f"/api/changes/{cid}/merge", headers=alice).status_code == 409
    approved = app_client.post(f"/api/changes/{cid}/approve", headers=bob)
    assert approved.status_code == 200 and approved.json()["approved_by"] == ["bob"]
    merged = app_client.post(f"/api/changes/{cid}/merge", headers=bob)
    assert merged.status_code == 200, merged.text
    assert merged.json()["status"] == "merged"
    assert set(gittree.list_paths(gitops, "main", "tenants/payments")) == EXPECTED
    answers = gittree.read_blob(gitops, "main",
                                "tenants/payments/payments-web/.caas-answers.yaml") or b""
    assert b"template: tenant" in answers and b"name: web" in answers

    # The same unit again: it exists on main now.
    again = app_client.post("/api/scaffolder/tasks", headers=alice,
                            json={"template": "tenant", "answers": TENANT})
    assert again.status_code == 409 and again.json()["error"]["field"] == "answers"


@SQLITE_ONLY
def test_update_pr_shows_only_what_changed(app_client: TestClient, gitops: Path,
                                           make_user: UserFactory, auth_headers: Headers) -> None:
    _people(make_user)
    alice, bob = auth_headers("alice"), auth_headers("bob")
    cid = app_client.post("/api/scaffolder/tasks", headers=alice,
                          json={"template": "tenant", "answers": TENANT}).json()["change_id"]
    app_client.post(f"/api/changes/{cid}/approve", headers=bob)
    assert app_client.post(f"/api/changes/{cid}/merge", headers=bob).status_code == 200

    body = {"template": "tenant", "update": True,
            "answers": {"team": "payments", "name": "web", "max_pods": 80}}
    dry = app_client.post("/api/scaffolder/dry-run", headers=alice, json=body)
    assert dry.status_code == 200, dry.text
    changed = {f["path"]: f["status"] for f in dry.json()["files"]}
    assert changed == {"tenants/payments/payments-web/.caas-answers.yaml": "modified",
                       "tenants/payments/payments-web/base/resourcequota.yaml": "modified",
                       "tenants/payments/payments-web/envs/dev/quota.yaml": "modified"}
    assert "-  max_pods: 50\n+  max_pods: 80\n" in dry.json()["diff"]
    task = app_client.post("/api/scaffolder/tasks", headers=alice, json=body).json()
    assert task["status"] == "succeeded", task
    change = app_client.get(f"/api/changes/{task['change_id']}", headers=alice).json()
    assert change["action"] == "update" and len(change["files"]) == 3
    unchanged = app_client.post("/api/scaffolder/dry-run", headers=alice, json={
        "template": "tenant", "update": True, "answers": {"team": "payments", "name": "web"}})
    assert unchanged.status_code == 409


@SQLITE_ONLY
def test_two_prs_touching_one_file_the_second_merge_conflicts(
        settings: Settings, engine: Engine, app_client: TestClient, gitops: Path,
        make_user: UserFactory, auth_headers: Headers) -> None:
    _people(make_user)
    alice, bob = auth_headers("alice"), auth_headers("bob")
    cid = app_client.post("/api/scaffolder/tasks", headers=alice,
                          json={"template": "tenant", "answers": TENANT}).json()["change_id"]
    app_client.post(f"/api/changes/{cid}/approve", headers=bob)
    assert app_client.post(f"/api/changes/{cid}/merge", headers=bob).status_code == 200
    update = {"template": "tenant", "update": True,
              "answers": {"team": "payments", "name": "web", "max_pods": 70}}
    second = app_client.post("/api/scaffolder/tasks", headers=alice, json=update).json()
    assert app_client.post("/api/scaffolder/tasks", headers=alice,
                           json=update).status_code == 409  # one open change per unit
    # Another PR edits the same file and merges first.
    forge = LocalForge(settings, engine)
    path = "tenants/payments/payments-web/base/resourcequota.yaml"
    edited = (forge.read_file(path) or b"").replace(b"50", b"55")
    other = forge.open_change(ChangeSpec(branch="hand/quota", title="hand edit", body="",
                                         author="carol", files=[FileChange(path, edited)]))
    forge.set_check(other.number, Check("review", CheckState.success))
    forge.approve(other.number, by="bob")
    forge.merge(other.number, by="bob")
    main = gittree.resolve(gitops, "main")
    app_client.post(f"/api/changes/{second['change_id']}/approve", headers=bob)
    got = app_client.post(f"/api/changes/{second['change_id']}/merge", headers=bob)
    assert got.status_code == 409 and got.json()["error"]["code"] == "merge_conflict"
    assert "resourcequota.yaml" in got.json()["error"]["message"]
    assert gittree.resolve(gitops, "main") == main
    assert forge.read_file(path) == edited
    closed = app_client.post(f"/api/changes/{second['change_id']}/close", headers=alice)
    assert closed.status_code == 200 and closed.json()["status"] == "closed"


def test_identical_requests_racing_open_exactly_one_pr(
        settings: Settings, engine: Engine, gitops: Path, make_user: UserFactory) -> None:
    from portal.auth import service as auth_service

    _people(make_user)
    with Session(engine) as s:
        user = auth_service.get_user(s, username="alice")
        principal = auth_service.principal_for(s, user, via="token")
    registry, forge = Registry(settings), make_forge(settings, engine)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def request() -> None:
        with Session(engine, expire_on_commit=False) as s:
            barrier.wait()
            try:
                task = service.create_task(s, registry=registry, forge=forge,
                                           principal=principal,
                                           request=ScaffoldRequest(template="tenant",
                                                                   answers=TENANT))
                outcomes.append(task.status)
            except Conflict:
                outcomes.append("409")

    threads = [threading.Thread(target=request) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["409", "succeeded"]
    with Session(engine) as s:
        assert len(s.exec(select(Change)).all()) == 1
        assert len(s.exec(select(Task)).all()) == 1
    branches = git.out(gitops, "for-each-ref", "--format=%(refname)", "refs/heads/").split()
    assert sorted(branches) == ["refs/heads/caas/tenant-payments-web", "refs/heads/main"]


@SQLITE_ONLY
def test_task_events_stream_as_sse(app_client: TestClient, gitops: Path,
                                   make_user: UserFactory, auth_headers: Headers) -> None:
    _people(make_user)
    alice = auth_headers("alice")
    task = app_client.post("/api/scaffolder/tasks", headers=alice,
                           json={"template": "tenant", "answers": TENANT}).json()
    with app_client.stream("GET", f"/api/scaffolder/tasks/{task['id']}/events",
                           headers=alice) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        text = "".join(response.iter_text())
    events = [line[len("event: "):] for line in text.splitlines() if line.startswith("event: ")]
    assert events[-1] == "end" and events.count("step") == len(task["events"])
    data = [json.loads(line[len("data: "):]) for line in text.splitlines()
            if line.startswith("data: ")]
    assert data[-1] == {"status": "succeeded"}
    other = app_client.get(f"/api/scaffolder/tasks/{task['id']}/events",
                           headers=auth_headers("bob"))
    assert other.status_code == 404


@SQLITE_ONLY
def test_a_failed_check_blocks_merging(app_client: TestClient, gitops: Path,
                                       make_user: UserFactory, auth_headers: Headers) -> None:
    _people(make_user)
    alice, bob = auth_headers("alice"), auth_headers("bob")
    # dev declares 8 CPUs; the platform's own tenant holds 2 of them.
    body = {"template": "tenant", "answers": {**TENANT, "cpu_quota": "7"}}
    dry = app_client.post("/api/scaffolder/dry-run", headers=alice, json=body).json()
    capacity = next(c for c in dry["checks"] if c["name"] == "capacity")
    assert capacity["state"] == "failure" and "dev: cpu 9 of 8 (over capacity)" in capacity[
        "details"]
    assert not dry["checks_green"]
    task = app_client.post("/api/scaffolder/tasks", headers=alice, json=body).json()
    cid = task["change_id"]
    assert app_client.post(f"/api/changes/{cid}/approve", headers=bob).status_code == 200
    blocked = app_client.post(f"/api/changes/{cid}/merge", headers=bob)
    assert blocked.status_code == 409 and "checks" in blocked.json()["error"]["message"]


@SQLITE_ONLY
def test_templates_api_lists_versions_and_dynamic_choices(
        app_client: TestClient, gitops: Path, make_user: UserFactory,
        auth_headers: Headers) -> None:
    _people(make_user)
    alice = auth_headers("alice")
    listed = {t["name"]: t for t in app_client.get("/api/templates", headers=alice).json()}
    assert {"team", "tenant", "application", "environment"} <= set(listed)
    assert len(listed["tenant"]["version"]) == 40
    tenant = app_client.get("/api/templates/tenant", headers=alice).json()
    assert tenant["choices"]["team"] == ["payments"]  # alice's teams that exist on main
    assert tenant["choices"]["environments"] == ["dev", "prod"]
    assert app_client.get("/api/templates/nope", headers=alice).status_code == 404
    assert app_client.get("/api/templates", headers={}).status_code == 401


@SQLITE_ONLY
def test_only_a_platform_admin_requests_an_environment(
        app_client: TestClient, engine: Engine, gitops: Path, make_user: UserFactory,
        auth_headers: Headers) -> None:
    from portal.auth.models import AuditEvent

    _people(make_user)
    body = {"template": "environment", "answers": {
        "environment": "staging", "provider": "local", "region": "local", "tier": "staging"}}
    got = app_client.post("/api/scaffolder/tasks", headers=auth_headers("alice"), json=body)
    assert got.status_code == 403 and got.json()["error"]["field"] == "template"
    with Session(engine) as s:
        assert s.exec(select(Change)).all() == []
        denied = s.exec(select(AuditEvent).where(AuditEvent.action == "scaffolder.request")).all()
        assert [e.outcome for e in denied] == ["denied"]
    make_user("root", admin=True)
    task = app_client.post("/api/scaffolder/tasks", headers=auth_headers("root"), json=body)
    assert task.status_code == 201 and task.json()["status"] == "succeeded", task.text
    change = app_client.get(f"/api/changes/{task.json()['change_id']}",
                            headers=auth_headers("root")).json()
    assert change["touches_envs"] and "platform-admin" in change["routing"]
    assert change["checks_green"], change["checks"]
    # The same PR keeps CODEOWNERS current: staging overlays now need the team's reviewers.
    owners = {f["path"]: f for f in change["files"]}["CODEOWNERS"]
    assert owners["status"] == "modified"
    assert "/tenants/platform/*/envs/staging/" in owners["content"]
    # Environment changes need a platform-admin's approval, not a team member's.
    approve = app_client.post(f"/api/changes/{change['id']}/approve",
                              headers=auth_headers("bob"))
    assert approve.status_code == 403


def test_an_approval_is_of_the_head_the_reviewer_saw(
        app_client: TestClient, gitops: Path, make_user: UserFactory, auth_headers: Headers,
        settings: Settings, engine: Engine) -> None:
    """The PR moves on (an update pushed) while bob's page shows the old head: his approval of
    what he saw is refused (409 ``head-moved``, nothing recorded, the refusal audited) — through
    the API's ``head_sha`` and through the change page's Approve button, which carries the head
    it showed. Approving the new head works."""
    _people(make_user)
    alice, bob = auth_headers("alice"), auth_headers("bob")
    task = app_client.post("/api/scaffolder/tasks", headers=alice,
                           json={"template": "tenant", "answers": TENANT}).json()
    cid = task["change_id"]
    seen = app_client.get(f"/api/changes/{cid}", headers=bob).json()
    page = app_client.get(f"/changes/{cid}", headers={**bob, "accept": "text/html"}).text
    assert f'name="head_sha" value="{seen["head_sha"]}"' in page
    forge = LocalForge(settings, engine)
    path = "tenants/payments/payments-web/envs/dev/quota.yaml"
    moved = forge.update_change(seen["number"], [FileChange(
        path, (forge.read_file(path, seen["head_sha"]) or b"") + b"# pushed meanwhile\n")],
        "edit after review")
    with Session(engine) as s:
        row = s.get(Change, cid)
        assert row is not None
        row.head_sha = moved.head_sha
        s.add(row)
        s.commit()

    stale = app_client.post(f"/api/changes/{cid}/approve", headers=bob,
                            json={"head_sha": seen["head_sha"]})
    assert stale.status_code == 409, stale.text
    assert stale.json()["error"]["rule"] == "head-moved"
    refused = app_client.post(f"/changes/{cid}/approve", follow_redirects=False,
                              headers={**bob, "accept": "text/html"},
                              data={"head_sha": seen["head_sha"]})
    assert refused.status_code == 409 and "review it again" in refused.text
    assert forge.approvals(seen["number"]) == []
    assert app_client.get(f"/api/changes/{cid}", headers=bob).json()["approved_by"] == []
    bad = app_client.post(f"/api/changes/{cid}/approve", headers=bob,
                          json={"head_sha": "../main"})
    assert bad.status_code == 422
    fresh = app_client.post(f"/api/changes/{cid}/approve", headers=bob,
                            json={"head_sha": moved.head_sha})
    assert fresh.status_code == 200 and fresh.json()["approved_by"] == ["bob"]
    assert forge.approvals(seen["number"]) == ["bob"]
