"""The upgrade API and `caas upgrade`: who may see and open upgrades, and the dry run as a user
reads it (a real subprocess)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from gitops import git, yaml
from portal.auth.models import Role
from portal.settings import Settings
from scaffolder.models import Change
from tests.conftest import UserFactory
from tests.scaffolder.test_cli import caas
from tests.scaffolder.test_upgrade import QUOTA, UNIT, admin, behind_unit, commit_on_main

Headers = Callable[[str], dict[str, str]]
PLATFORM = "tenants/platform/platform-tools"
EDIT = ("# The default quota;", "# Agreed with finance;")


def _platform_behind_too(gitops: Path, version: str) -> None:
    path = f"{PLATFORM}/.caas-answers.yaml"
    doc = yaml.load(git.out(gitops, "show", f"main:{path}"))
    doc["version"] = version
    commit_on_main(gitops, {path: yaml.dump(doc).encode()}, "platform-tools: older version")


def test_admins_see_every_unit_behind_reviewers_their_teams_developers_none(
        app_client: TestClient, settings: Settings, engine: Engine, gitops: Path,
        tmp_path: Path, make_user: UserFactory, auth_headers: Headers) -> None:
    root = admin(engine, make_user, "admin")
    registry, _forge = behind_unit(settings, engine, gitops, tmp_path, root, EDIT)
    old = registry.store.versions("tenant")[0]
    _platform_behind_too(gitops, old)
    make_user("rita", teams={"payments": Role.reviewer})
    make_user("dev", teams={"payments": Role.developer})
    rita, dev, boss = auth_headers("rita"), auth_headers("dev"), auth_headers("admin")

    listed = app_client.get("/api/upgrades", headers=boss)
    assert listed.status_code == 200, listed.text
    assert {u["unit"] for u in listed.json()} == {UNIT, PLATFORM}
    assert {u["version"] for u in listed.json()} == {old}
    mine = app_client.get("/api/upgrades", headers=rita).json()
    assert [u["unit"] for u in mine] == [UNIT]
    assert app_client.get("/api/upgrades", headers=dev).status_code == 403
    other = app_client.post("/api/upgrades", headers=rita, json={"team": "platform"})
    assert other.status_code == 403 and other.json()["error"]["field"] == "team"
    assert app_client.post("/api/upgrades", headers=dev, json={}).status_code == 403
    bad = app_client.post("/api/upgrades", headers=boss, json={"per": "env"})
    assert bad.status_code == 422
    assert app_client.post("/api/upgrades", headers=boss, json={"dry_run": 0}).status_code == 422
    unknown = app_client.post("/api/upgrades", headers=boss, json={"template": "nope"})
    assert unknown.status_code == 404 and unknown.json()["error"]["field"] == "template"

    diff = app_client.get("/api/upgrades/diff", headers=rita,
                          params={"template": "tenant", "version": old})
    assert diff.status_code == 200, diff.text
    assert "+    pods: '{{ cookiecutter.max_pods | int }}'" in diff.json()["diff"]
    missing = app_client.get("/api/upgrades/diff", headers=rita,
                             params={"template": "tenant", "version": "1" * 40})
    assert missing.status_code == 409 and "1" * 40 in missing.json()["error"]["message"]

    opened = app_client.post("/api/upgrades", headers=rita, json={"template": "tenant"})
    assert opened.status_code == 200, opened.text
    assert [(o["key"], o["state"]) for o in opened.json()] == [(UNIT, "opened")]
    again = app_client.post("/api/upgrades", headers=rita, json={"template": "tenant"})
    assert [(o["key"], o["state"]) for o in again.json()] == [(UNIT, "open")]
    with Session(engine) as s:
        [change] = s.exec(select(Change)).all()
        assert change.action == "upgrade" and change.author == "rita"
        assert QUOTA in [f["path"] for f in change.files]


def test_cli_dry_run_prints_each_unit_and_writes_nothing(
        settings: Settings, engine: Engine, gitops: Path, tmp_path: Path,
        make_user: UserFactory) -> None:
    root = admin(engine, make_user, "admin")
    behind_unit(settings, engine, gitops, tmp_path, root, EDIT)
    got = caas(settings, "upgrade", "--dry-run", "--template", "tenant")
    assert got.returncode == 0, got.stderr
    assert f"would-open   {UNIT}  tenant" in got.stdout
    assert "added max_pods=50" in got.stdout and "dropped legacy_tier" in got.stdout
    assert "conflicts=0" in got.stdout
    assert git.out(gitops, "for-each-ref", "--format=%(refname)").split() == [
        "refs/heads/main"]
    with Session(engine) as s:
        assert s.exec(select(Change)).all() == []
    bad = caas(settings, "upgrade", "--per", "env")
    assert bad.returncode != 0 and "per" in bad.stdout + bad.stderr
