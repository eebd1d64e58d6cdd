"""Changing a unit (issue 15): the stored answers pre-fill the change, the identifying answers
are named, and the PR on real git is the minimal diff."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from gitops import git
from portal.auth.models import Role
from tests.conftest import UserFactory

SQLITE_ONLY = pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
Headers = Callable[[str], dict[str, str]]
TENANT = {"team": "payments", "name": "web", "cost_center": "cc-1", "environments": ["dev"]}
UNIT = "tenants/payments/payments-web"


@SQLITE_ONLY
def test_changing_one_quota_is_a_one_line_diff_per_file(
        app_client: TestClient, gitops: Path, make_user: UserFactory,
        auth_headers: Headers) -> None:
    make_user("alice", teams={"payments": Role.developer})
    make_user("bob", teams={"payments": Role.developer})
    alice, bob = auth_headers("alice"), auth_headers("bob")
    cid = app_client.post("/api/scaffolder/tasks", headers=alice,
                          json={"template": "tenant", "answers": TENANT}).json()["change_id"]
    app_client.post(f"/api/changes/{cid}/approve", headers=bob)
    assert app_client.post(f"/api/changes/{cid}/merge", headers=bob).status_code == 200

    unit = app_client.get("/api/scaffolder/units", headers=alice, params={"unit": UNIT})
    assert unit.status_code == 200, unit.text
    stored = unit.json()
    assert stored["template"] == "tenant" and stored["fixed"] == ["name", "team"]
    assert stored["answers"]["storage_quota"] == "50Gi"
    assert "namespace" not in stored["answers"]  # derived, not a form field

    answers = {**stored["answers"], "storage_quota": "60Gi"}
    task = app_client.post("/api/scaffolder/tasks", headers=alice,
                           json={"template": "tenant", "update": True, "answers": answers})
    assert task.status_code == 201 and task.json()["status"] == "succeeded", task.text
    change = app_client.get(f"/api/changes/{task.json()['change_id']}", headers=alice).json()
    assert change["action"] == "update"
    # Real git: the PR branch against the commit it was cut from.
    numstat = git.out(gitops, "diff", "--numstat", change["base_sha"], change["head_sha"])
    rows = sorted(line.split("\t") for line in numstat.splitlines())
    assert rows == [["1", "1", f"{UNIT}/{p}"] for p in (
        ".caas-answers.yaml", "base/resourcequota.yaml", "envs/dev/quota.yaml")]
    patch = git.out(gitops, "diff", change["base_sha"], change["head_sha"], "--",
                    f"{UNIT}/base/resourcequota.yaml")
    assert '-    requests.storage: "50Gi"' in patch and '+    requests.storage: "60Gi"' in patch


@SQLITE_ONLY
def test_the_unit_is_named_by_its_identifying_answers(
        app_client: TestClient, gitops: Path, make_user: UserFactory,
        auth_headers: Headers) -> None:
    make_user("admin", admin=True)
    admin = auth_headers("admin")
    team = app_client.get("/api/scaffolder/units", headers=admin,
                          params={"unit": "teams/platform"}).json()
    assert team["template"] == "team" and team["fixed"] == ["team"]
    dry = app_client.post("/api/scaffolder/dry-run", headers=admin, json={
        "template": "team", "update": True,
        "answers": {**team["answers"], "display_name": "Platform engineering"}})
    assert dry.status_code == 200, dry.text
    assert "Platform engineering" in dry.json()["diff"]
    assert all(f["status"] == "modified" for f in dry.json()["files"])
    # Another team name is another unit: there is none to update.
    other = app_client.post("/api/scaffolder/dry-run", headers=admin, json={
        "template": "team", "update": True, "answers": {**team["answers"], "team": "ghost"}})
    assert other.status_code == 404 and other.json()["error"]["field"] == "answers"
    for unit, status in [("../etc", 422), ("tenants/payments/nothing", 404),
                         ("platform/argocd", 404)]:
        got = app_client.get("/api/scaffolder/units", headers=admin, params={"unit": unit})
        assert got.status_code == status, (unit, got.text)
        assert got.json()["error"]["field"] == "unit"
    assert app_client.get("/api/scaffolder/units", params={"unit": "teams/platform"}
                          ).status_code == 401
