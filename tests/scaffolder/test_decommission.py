"""Decommissioning (issue 15) on real git: the PR deletes the unit's files and rewrites the
lists naming it; a unit with dependants is refused, naming them, with nothing written."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from catalog import service as catalog_service
from gitops import git, gittree
from gitops.gitreader import GitReader
from portal.auth.models import AuditEvent, Role
from scaffolder.models import Change
from tests.conftest import UserFactory

Headers = Callable[[str], dict[str, str]]
TENANT = {"team": "payments", "name": "web", "cost_center": "cc-1", "environments": ["dev"]}
APP = {"team": "payments", "name": "shop", "tenant": "web", "environment": "dev",
       "repo_url": "https://charts.example.com", "revision": "1.2.3", "chart": "shop"}


def _merge(client: TestClient, task: dict[str, object], approver: dict[str, str]) -> None:
    assert task["status"] == "succeeded", task
    cid = task["change_id"]
    assert client.post(f"/api/changes/{cid}/approve", headers=approver).status_code == 200
    merged = client.post(f"/api/changes/{cid}/merge", headers=approver)
    assert merged.status_code == 200, merged.text


def test_decommission_refuses_dependants_then_removes_bottom_up(
        app_client: TestClient, engine: Engine, gitops: Path, make_user: UserFactory,
        auth_headers: Headers) -> None:
    make_user("alice", teams={"payments": Role.developer})
    make_user("bob", teams={"payments": Role.developer})
    alice, bob = auth_headers("alice"), auth_headers("bob")
    for template, answers in (("tenant", TENANT), ("application", APP)):
        got = app_client.post("/api/scaffolder/tasks", headers=alice,
                              json={"template": template, "answers": answers})
        assert got.status_code == 201, got.text
        _merge(app_client, got.json(), bob)
    refs_before = git.out(gitops, "for-each-ref", "--format=%(refname)")

    team = app_client.post("/api/scaffolder/decommission", headers=alice,
                           json={"unit": "teams/payments"})
    assert team.status_code == 409, team.text
    assert team.json()["error"]["field"] == "unit"
    assert "namespace:payments/payments-web" in team.json()["error"]["message"]
    assert "application:payments/shop" in team.json()["error"]["message"]
    namespace = app_client.post("/api/scaffolder/decommission", headers=alice,
                                json={"unit": "tenants/payments/payments-web"})
    assert namespace.status_code == 409
    assert "application:payments/shop" in namespace.json()["error"]["message"]
    env = app_client.post("/api/scaffolder/decommission", headers=alice,
                          json={"unit": "envs/dev"})
    assert env.status_code in (400, 403, 422)  # 422: the schema admits no envs/ folder
    other = app_client.post("/api/scaffolder/decommission", headers=auth_headers("bob"),
                            json={"unit": "tenants/platform/platform-tools"})
    assert other.status_code == 403
    assert git.out(gitops, "for-each-ref", "--format=%(refname)") == refs_before

    app_files = set(gittree.list_paths(gitops, "main", "applications/payments/shop"))
    app = app_client.post("/api/scaffolder/decommission", headers=alice,
                          json={"unit": "applications/payments/shop"})
    assert app.status_code == 201, app.text
    change = app_client.get(f"/api/changes/{app.json()['change_id']}", headers=alice).json()
    assert change["action"] == "decommission" and change["checks_green"], change["checks"]
    assert {f["path"]: f["status"] for f in change["files"]} == dict.fromkeys(app_files, "deleted")
    _merge(app_client, app.json(), bob)
    assert gittree.list_paths(gitops, "main", "applications/payments") == []

    ns = app_client.post("/api/scaffolder/decommission", headers=alice,
                         json={"unit": "tenants/payments/payments-web"})
    assert ns.status_code == 201, ns.text
    _merge(app_client, ns.json(), bob)
    assert gittree.list_paths(gitops, "main", "tenants/payments") == []
    with Session(engine) as s:
        outcomes = s.exec(select(AuditEvent.outcome).where(
            AuditEvent.action == "scaffolder.decommission")).all()
        assert sorted(outcomes) == ["denied", "success", "success"]
        assert {c.action for c in s.exec(select(Change)).all()} == {"create", "decommission"}


def test_removing_a_namespace_rewrites_its_teams_appproject(
        app_client: TestClient, gitops: Path, make_user: UserFactory,
        auth_headers: Headers) -> None:
    make_user("admin", admin=True)
    before = gittree.read_blob(gitops, "main", "teams/platform/appproject.yaml") or b""
    assert b"platform-tools" in before
    got = app_client.post("/api/scaffolder/decommission", headers=auth_headers("admin"),
                          json={"unit": "tenants/platform/platform-tools"})
    assert got.status_code == 201, got.text
    change = app_client.get(f"/api/changes/{got.json()['change_id']}",
                            headers=auth_headers("admin")).json()
    statuses = {f["path"]: f["status"] for f in change["files"]}
    assert statuses.pop("teams/platform/appproject.yaml") == "modified"
    assert set(statuses.values()) == {"deleted"}
    after = gittree.read_blob(gitops, change["head_sha"], "teams/platform/appproject.yaml")
    assert after is not None and b"platform-tools" not in after
    assert b"kind: AppProject" in after



def test_a_team_with_open_changes_is_not_decommissioned_until_they_end(
        app_client: TestClient, engine: Engine, gitops: Path, make_user: UserFactory,
        auth_headers: Headers) -> None:
    """Each open change of the team would be red once the team is gone (``team`` check): the
    request is refused naming them, nothing written; the team page's Remove says the same;
    once the change is closed the team may go."""
    make_user("root", admin=True)
    make_user("alice", teams={"web": Role.developer})
    make_user("bob", teams={"web": Role.developer})
    alice, root = auth_headers("alice"), auth_headers("root")
    team = app_client.post("/api/scaffolder/tasks", headers=alice, json={
        "template": "team", "answers": {"team": "web", "display_name": "Web",
                                        "cost_center": "cc-1", "owners": ["alice"]}})
    _merge(app_client, team.json(), root)
    before = gittree.resolve(gitops, "main~1")
    with Session(engine) as s:  # what the reconciler's catalog job does after the merge
        catalog_service.index_commit(s, forge=GitReader(gitops), commit=gittree.resolve(
            gitops, "main"), changed=gittree.changed_paths(gitops, before, "main"))
    tenant = app_client.post("/api/scaffolder/tasks", headers=alice, json={
        "template": "tenant", "answers": {**TENANT, "team": "web", "name": "api"}})
    assert tenant.status_code == 201 and tenant.json()["status"] == "succeeded", tenant.text
    cid = tenant.json()["change_id"]
    refs_before = git.out(gitops, "for-each-ref", "--format=%(refname)")
    with Session(engine) as s:
        rows = len(s.exec(select(Change)).all())

    refused = app_client.post("/api/scaffolder/decommission", headers=alice,
                              json={"unit": "teams/web"})
    assert refused.status_code == 409, refused.text
    error = refused.json()["error"]
    assert (error["field"], error["rule"]) == ("unit", "open-changes")
    assert error["message"] == ("unit: team:web has open changes; merge or close them first: "
                                f"change {cid} (tenants/web/web-api)")
    assert git.out(gitops, "for-each-ref", "--format=%(refname)") == refs_before
    with Session(engine) as s:
        assert len(s.exec(select(Change)).all()) == rows
    page = app_client.get("/catalog/teams/web", headers={**alice, "accept": "text/html"}).text
    assert re.search(r"<button[^>]*disabled[^>]*>Remove</button>", page), page[:2000]
    assert f"team:web has open changes; merge or close them first: change {cid}" in page

    assert app_client.post(f"/api/changes/{cid}/close", headers=alice).status_code == 200
    allowed = app_client.post("/api/scaffolder/decommission", headers=alice,
                              json={"unit": "teams/web"})
    assert allowed.status_code == 201 and allowed.json()["status"] == "succeeded", allowed.text
