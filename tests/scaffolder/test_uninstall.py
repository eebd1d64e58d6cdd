"""Uninstalling an environment (``installed: false``) on real git through the API: refused
while namespaces or applications run there, naming them, nothing written (both databases)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from gitops import git
from portal.auth.models import Role
from scaffolder.models import Change
from tests.conftest import UserFactory
from tests.scaffolder.test_decommission import APP, TENANT, _merge

Headers = Callable[[str], dict[str, str]]


def test_uninstalling_an_environment_is_refused_while_something_runs_there(
        app_client: TestClient, engine: Engine, gitops: Path, make_user: UserFactory,
        auth_headers: Headers) -> None:
    """``installed: false`` destroys the environment's cluster: like a team with namespaces,
    it is refused while namespaces or applications still run there, naming them; an
    environment nothing runs in is uninstalled as before."""
    make_user("alice", teams={"payments": Role.developer})
    make_user("root", admin=True)
    make_user("ops", admin=True)
    alice, root, ops = auth_headers("alice"), auth_headers("root"), auth_headers("ops")
    for template, answers in (("tenant", TENANT), ("application", APP)):
        got = app_client.post("/api/scaffolder/tasks", headers=alice,
                              json={"template": template, "answers": answers})
        _merge(app_client, got.json(), root)
    qa = app_client.post("/api/scaffolder/tasks", headers=root, json={
        "template": "environment", "answers": {"environment": "qa", "provider": "local",
                                               "region": "local", "tier": "dev",
                                               "network_cidr": "10.40.0.0/16"}})
    _merge(app_client, qa.json(), ops)
    refs = git.out(gitops, "for-each-ref", "--format=%(refname)")
    with Session(engine) as s:
        changes = len(s.exec(select(Change)).all())

    def uninstall(env: str) -> object:
        stored = app_client.get("/api/scaffolder/units", headers=root,
                                params={"unit": f"envs/{env}"}).json()["answers"]
        return app_client.post("/api/scaffolder/tasks", headers=root, json={
            "template": "environment", "update": True,
            "answers": {**stored, "installed": False}})

    refused = uninstall("dev")
    assert refused.status_code == 409, refused.text
    error = refused.json()["error"]
    assert (error["field"], error["rule"]) == ("installed", "dependants")
    for key in ("namespace:payments/payments-web", "namespace:platform/platform-tools",
                "application:payments/shop"):
        assert key in error["message"]
    assert git.out(gitops, "for-each-ref", "--format=%(refname)") == refs
    with Session(engine) as s:
        assert len(s.exec(select(Change)).all()) == changes
    opened = uninstall("qa")
    assert opened.status_code == 201 and opened.json()["status"] == "succeeded", opened.text
