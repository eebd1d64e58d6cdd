"""A team's files cannot reach platform groups or another team's groups: refused when the change
is requested (422, nothing written) and again when it merges (422, main unchanged)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from gitops import gittree
from gitops.forges.base import FileChange
from gitops.forges.local import LocalForge
from portal.auth.models import Role
from portal.settings import REPO_ROOT, Settings
from scaffolder.models import Change
from tests.conftest import UserFactory

Headers = Callable[[str], dict[str, str]]
SQLITE_ONLY = pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
TEAM = {"team": "web", "display_name": "Web", "cost_center": "cc-1", "owners": ["alice"],
        "members": ["bob"]}


def _state(gitops: Path, engine: Engine) -> tuple[str, list[str], int]:
    with Session(engine) as s:
        changes = len(s.exec(select(Change)).all())
    return gittree.resolve(gitops, "main"), gittree.out(gitops, "branch", "--list").split(), \
        changes


@pytest.mark.parametrize(("team", "rule"), [("payments-admins", "team-name"),
                                            ("web-viewers", "team-name"),
                                            ("team-x#2", "pattern")])
def test_a_team_whose_groups_would_be_another_teams_is_refused_at_the_request(
        app_client: TestClient, gitops: Path, engine: Engine, make_user: UserFactory,
        auth_headers: Headers, team: str, rule: str) -> None:
    make_user("root", admin=True)
    before = _state(gitops, engine)
    got = app_client.post("/api/scaffolder/tasks", headers=auth_headers("root"),
                          json={"template": "team", "answers": {**TEAM, "team": team}})
    assert got.status_code == 422, got.text
    error = got.json()["error"]
    assert error["field"] == "team" and error["rule"] == rule
    assert _state(gitops, engine) == before  # no branch, no change row, main untouched


@pytest.fixture
def hostile_templates(tmp_path: Path) -> Path:
    """The shipped team template with its team.yaml naming the platform admin group."""
    root = tmp_path / "templates"
    shutil.copytree(REPO_ROOT / "templates", root)
    team_yaml = root / "team" / "{{cookiecutter.team}}" / "team.yaml"
    text = team_yaml.read_text()
    hostile = text.replace("admin: team-{{ cookiecutter.team }}-admins", "admin: platform-admins")
    assert hostile != text
    team_yaml.write_text(hostile)
    return root


@SQLITE_ONLY
def test_a_team_file_naming_the_admin_group_is_refused_at_the_request(
        settings: Settings, engine: Engine, gitops: Path, hostile_templates: Path,
        make_user: UserFactory, auth_headers: Headers) -> None:
    from portal.app import create_app

    make_user("root", admin=True)
    before = _state(gitops, engine)
    hostile = settings.model_copy(update={"templates_dir": hostile_templates})
    with TestClient(create_app(hostile, engine=engine)) as client:
        got = client.post("/api/scaffolder/tasks", headers=auth_headers("root"),
                          json={"template": "team", "answers": TEAM})
    assert got.status_code == 422, got.text
    error = got.json()["error"]
    assert error == {"code": "group_rule", "field": "teams/web/team.yaml: spec.groups.admin",
                     "rule": "team-group", "message": error["message"]}
    assert "'platform-admins' is a platform group" in error["message"]
    assert "team-web-admins" in error["message"]
    assert _state(gitops, engine) == before


@SQLITE_ONLY
@pytest.mark.parametrize(("path", "old", "new", "field", "why"), [
    ("teams/web/team.yaml", "admin: team-web-admins", "admin: platform-admins",
     "teams/web/team.yaml: spec.groups.admin", "is a platform group"),
    ("teams/web/team.yaml", "keycloakGroup: team-web", "keycloakGroup: team-payments",
     "teams/web/team.yaml: spec.keycloakGroup", "is team 'payments''s developers group"),
    ("teams/web/appproject.yaml", "- team-web\n", "- /platform-admins\n",
     "teams/web/appproject.yaml: spec.roles[0].groups[0]", "is a platform group"),
    ("teams/web/team.yaml", "edit: team-web", "edit: team-web%23x",
     "teams/web/team.yaml: spec.groups.edit", "is not 'web''s developers group"),
    ("teams/web/appproject.yaml", "applications, *, web/*, allow",
     "applications, *, */*, allow", "teams/web/appproject.yaml: spec.roles[0].policies[0]",
     "may only grant"),
])
def test_a_team_file_edited_on_the_branch_is_refused_at_the_merge(
        app_client: TestClient, gitops: Path, engine: Engine, settings: Settings,
        make_user: UserFactory, auth_headers: Headers, path: str, old: str, new: str,
        field: str, why: str) -> None:
    make_user("root", admin=True)
    make_user("rita", admin=True)
    make_user("alice", teams={"payments": Role.reviewer})
    task = app_client.post("/api/scaffolder/tasks", headers=auth_headers("root"),
                           json={"template": "team", "answers": TEAM}).json()
    assert task["status"] == "succeeded", task
    cid = task["change_id"]
    change = app_client.get(f"/api/changes/{cid}", headers=auth_headers("root")).json()
    forge = LocalForge(settings, engine)
    content = (forge.read_file(path, change["head_sha"]) or b"").decode()
    assert old in content
    forge.update_change(change["number"], [FileChange(path, content.replace(old, new).encode())],
                        "a team reviewer widens the team's reach")
    assert app_client.post(f"/api/changes/{cid}/approve",
                           headers=auth_headers("rita")).status_code == 200
    main_before = gittree.resolve(gitops, "main")
    got = app_client.post(f"/api/changes/{cid}/merge", headers=auth_headers("rita"))
    assert got.status_code == 422, got.text
    error = got.json()["error"]
    assert (error["field"], error["rule"]) == (
        field, "project-policy" if "policies" in field else "team-group")
    assert why in error["message"]
    assert gittree.resolve(gitops, "main") == main_before
    assert app_client.get(f"/api/changes/{cid}",
                          headers=auth_headers("root")).json()["status"] == "open"
