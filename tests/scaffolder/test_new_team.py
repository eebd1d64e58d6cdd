"""Anybody signed in requests a new team; a platform-admin approves it; once merged and indexed,
its owners and members have their roles (no `caas team add`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from catalog import service as catalog_service
from gitops import gittree
from gitops.gitreader import GitReader
from portal.auth import service as auth_service
from portal.auth.models import Role
from tests.conftest import UserFactory

Headers = Callable[[str], dict[str, str]]
TEAM = {"team": "web", "display_name": "Web", "cost_center": "cc-1", "owners": ["eve"],
        "members": ["finn"]}


def test_a_non_member_requests_a_team_a_platform_admin_approves_git_gives_the_roles(
        app_client: TestClient, gitops: Path, engine: Engine, make_user: UserFactory,
        auth_headers: Headers) -> None:
    make_user("eve", teams={"search": Role.developer})
    make_user("finn")
    make_user("root", admin=True)
    eve, finn, root = auth_headers("eve"), auth_headers("finn"), auth_headers("root")
    got = app_client.post("/api/scaffolder/tasks", headers=eve,
                          json={"template": "team", "answers": TEAM})
    assert got.status_code == 201, got.text
    change = app_client.get(f"/api/changes/{got.json()['change_id']}", headers=eve).json()
    assert change["routing"] == ("Needs green checks and one approval from a platform-admin "
                                 "(not the author), because it creates a new team.")
    cid = change["id"]
    assert app_client.post(f"/api/changes/{cid}/approve", headers=finn).status_code == 403
    assert app_client.post(f"/api/changes/{cid}/approve", headers=root).status_code == 200
    assert app_client.post(f"/api/changes/{cid}/merge", headers=eve).status_code == 200

    before = gittree.resolve(gitops, "main~1")
    after = gittree.resolve(gitops, "main")
    with Session(engine) as s:  # what the reconciler's catalog job does after the merge
        catalog_service.index_commit(s, forge=GitReader(gitops), commit=after,
                                     changed=gittree.changed_paths(gitops, before, after))
        roles = {u: auth_service.principal_for(s, auth_service.get_user(s, username=u),
                                               via="test").team_roles for u in ("eve", "finn")}
    assert roles == {"eve": {"search": Role.developer, "web": Role.reviewer},
                     "finn": {"web": Role.developer}}

