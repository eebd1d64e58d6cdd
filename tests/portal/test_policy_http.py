"""A representative slice of the permission matrix through the HTTP API: real scaffolder
changes on LocalForge (dev, staging and prod tenants), approved, merged and closed by each role
of the owning team, of another team, and by a platform-admin."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from gitops.git import seed_repository
from portal.auth.models import AuditEvent, Role
from portal.settings import Settings
from tests.conftest import REPO_ROOT, UserFactory

Headers = Callable[[str], dict[str, str]]
pytestmark = pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)


@pytest.fixture
def gitops(settings: Settings, tmp_path: Path) -> Path:
    skeleton = tmp_path / "skeleton"
    shutil.copytree(REPO_ROOT / "gitops-skeleton", skeleton)
    for team in ("payments", "search"):
        (skeleton / "teams" / team).mkdir(parents=True, exist_ok=True)
        (skeleton / "teams" / team / "team.yaml").write_text(f"name: {team}\n")
    dev = (skeleton / "envs" / "dev" / "infra.yaml").read_text()
    for env in ("staging", "prod"):
        (skeleton / "envs" / env).mkdir(parents=True, exist_ok=True)
        (skeleton / "envs" / env / "infra.yaml").write_text(
            dev.replace("name: dev", f"name: {env}").replace("tier: dev", f"tier: {env}"))
    seed_repository(settings.resolved_gitops_repo, skeleton)
    return settings.resolved_gitops_repo


@pytest.fixture
def people(make_user: UserFactory, auth_headers: Headers) -> dict[str, dict[str, str]]:
    make_user("alice", teams={"payments": Role.developer})   # the author
    make_user("dev", teams={"payments": Role.developer})
    make_user("rev", teams={"payments": Role.reviewer})
    make_user("other", teams={"search": Role.reviewer})
    make_user("root", admin=True)
    return {name: auth_headers(name) for name in ("alice", "dev", "rev", "other", "root")}


def _request(client: TestClient, who: dict[str, str], name: str, env: str) -> int:
    answers = {"team": "payments", "name": name, "cost_center": "cc-1", "environments": [env]}
    got = client.post("/api/scaffolder/tasks", headers=who,
                      json={"template": "tenant", "answers": answers})
    assert got.status_code == 201, got.text
    task = got.json()
    assert task["status"] == "succeeded", task
    return int(task["change_id"])


def test_requests_are_limited_to_own_teams(app_client: TestClient, gitops: Path,
                                           people: dict[str, dict[str, str]]) -> None:
    answers = {"team": "payments", "name": "x", "cost_center": "cc-1", "environments": ["dev"]}
    refused = app_client.post("/api/scaffolder/tasks", headers=people["other"],
                              json={"template": "tenant", "answers": answers})
    # Refused by the form's own team check (422 naming `team`) or by the policy (403).
    assert refused.status_code in (403, 422), refused.text
    assert refused.json()["error"].get("field") == "team"
    env = {"environment": "qa", "tier": "dev", "provider": "local"}
    as_dev = app_client.post("/api/scaffolder/dry-run", headers=people["rev"],
                             json={"template": "environment", "answers": env})
    assert as_dev.status_code in (403, 422)  # never allowed for a non-admin


@pytest.mark.parametrize(("env", "approvers", "refused"), [
    ("dev", ["dev"], ["alice", "other"]),
    ("staging", ["rev"], ["alice", "dev", "other"]),
    ("prod", ["root"], ["alice", "dev", "rev", "other"]),
])
def test_approval_routing_by_tier(app_client: TestClient, gitops: Path, session: Session,
                                  people: dict[str, dict[str, str]], env: str,
                                  approvers: list[str], refused: list[str]) -> None:
    cid = _request(app_client, people["alice"], f"t-{env}", env)
    change = app_client.get(f"/api/changes/{cid}", headers=people["alice"]).json()
    assert change["tier"] == env
    for name in refused:
        got = app_client.post(f"/api/changes/{cid}/approve", headers=people[name])
        assert got.status_code == 403, (name, got.text)
    # Merging before the routed approval is refused, even by a platform-admin.
    assert app_client.post(f"/api/changes/{cid}/merge", headers=people["root"]).status_code \
        == 409
    for name in approvers:
        got = app_client.post(f"/api/changes/{cid}/approve", headers=people[name])
        assert got.status_code == 200, (name, got.text)
    # Someone of another team cannot merge; the author can, once another person approved.
    assert app_client.post(f"/api/changes/{cid}/merge", headers=people["other"]).status_code \
        == 403
    merged = app_client.post(f"/api/changes/{cid}/merge", headers=people["alice"])
    assert merged.status_code == 200 and merged.json()["status"] == "merged"
    session.rollback()
    denied = session.exec(select(AuditEvent).where(AuditEvent.action == "scaffolder.approve",
                                                   AuditEvent.outcome == "denied")).all()
    assert sorted(e.actor for e in denied) == sorted(refused)


def test_close_and_audit_access(app_client: TestClient, gitops: Path,
                                people: dict[str, dict[str, str]]) -> None:
    cid = _request(app_client, people["alice"], "t-close", "dev")
    for name in ("dev", "other"):
        assert app_client.post(f"/api/changes/{cid}/close",
                               headers=people[name]).status_code == 403, name
    closed = app_client.post(f"/api/changes/{cid}/close", headers=people["rev"])
    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    for name, status in (("alice", 403), ("rev", 403), ("root", 200)):
        assert app_client.get("/api/audit", headers=people[name]).status_code == status, name
