"""Hostile input: each case → a 4xx naming the field, and nothing written (no branch, no change
row, no task row, no file in the repository)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from gitops import git, gittree
from gitops.forges.models import LocalPullRequest
from portal.auth.models import Role
from scaffolder.models import Change, Task
from tests.conftest import UserFactory

pytestmark = pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)

OK = {"team": "payments", "name": "web", "cost_center": "cc-1", "environments": ["dev"]}


def tenant(**changes: Any) -> dict[str, Any]:
    return {"template": "tenant", "answers": {**OK, **changes}}


CASES: list[tuple[str, dict[str, Any], str]] = [
    ("jinja in a value", tenant(cost_center="{{ 7*7 }}"), "cost_center"),
    ("jinja statement", tenant(description="{% for x in y %}x{% endfor %}"), "description"),
    ("backstage expression", tenant(description="${{ parameters.team }}"), "description"),
    ("newline", tenant(cost_center="cc\nkind: Secret"), "cost_center"),
    ("yaml key breaker", tenant(cost_center="a: b"), "cost_center"),
    ("document separator", tenant(name="---"), "name"),
    ("yaml anchor", tenant(cost_center="&a *a"), "cost_center"),
    ("path traversal", tenant(name="../../etc"), "name"),
    ("absolute path", tenant(name="/etc/passwd"), "name"),
    ("traversal in team", tenant(team="../payments"), "team"),
    ("reserved name", {"template": "team", "answers": {
        "team": "kube-system", "display_name": "x", "cost_center": "c", "owners": ["a"]}},
     "team"),
    ("default namespace", {"template": "team", "answers": {
        "team": "default", "display_name": "x", "cost_center": "c", "owners": ["a"]}}, "team"),
    ("oversized value", tenant(description="x" * 5000), "description"),
    ("unicode look-alike", tenant(name="w\u0435b"), "name"),
    ("zero-width character", tenant(name="w\u200beb"), "name"),
    ("control character", tenant(description="a\x1b[31mb"), "description"),
    ("bidi override", tenant(description="a\u202eb"), "description"),
    ("wrong type", tenant(max_pods="fifty"), "max_pods"),
    ("wrong list type", tenant(environments="dev"), "environments"),
    ("unknown answer", tenant(privileged=True), "privileged"),
    ("unknown body field", {**tenant(), "force": True}, "force"),
    ("unknown template", {"template": "nope", "answers": {}}, "template"),
    ("template path traversal", {"template": "../tenant", "answers": OK}, "template"),
    ("team the user is not in", tenant(team="search"), "team"),
    ("team that does not exist", tenant(team="ghosts"), "team"),
    ("unknown environment", tenant(environments=["moon"]), "environments"),
    ("quota out of bounds", tenant(cpu_quota="100000"), "cpu_quota"),
    ("missing required", {"template": "tenant", "answers": {"team": "payments"}}, "name"),
]


@pytest.fixture
def client(app_client: TestClient, gitops: Path, make_user: UserFactory,
           auth_headers: Callable[[str], dict[str, str]]
           ) -> tuple[TestClient, dict[str, str]]:
    make_user("alice", teams={"payments": Role.developer})
    make_user("sam", teams={"search": Role.developer})
    return app_client, auth_headers("alice")


@pytest.mark.parametrize(("case", "body", "field"), CASES, ids=[c[0] for c in CASES])
def test_hostile_input_is_refused_and_nothing_is_written(
        case: str, body: dict[str, Any], field: str, client: tuple[TestClient, dict[str, str]],
        engine: Engine, gitops: Path) -> None:
    app, headers = client
    main = gittree.resolve(gitops, "main")
    files = gittree.list_paths(gitops, "main")
    for path in ("/api/scaffolder/dry-run", "/api/scaffolder/tasks"):
        got = app.post(path, headers=headers, json=body)
        assert 400 <= got.status_code < 500, (case, got.text)
        error = got.json()["error"]
        assert error["field"] == field, (case, error)
    refs = git.out(gitops, "for-each-ref", "--format=%(refname)").split()
    assert refs == ["refs/heads/main"]
    assert gittree.resolve(gitops, "main") == main
    assert gittree.list_paths(gitops, "main") == files
    with Session(engine) as s:
        assert s.exec(select(Change)).all() == []
        assert s.exec(select(Task)).all() == []
        assert s.exec(select(LocalPullRequest)).all() == []


def test_oversized_body_is_refused(client: tuple[TestClient, dict[str, str]]) -> None:
    app, headers = client
    got = app.post("/api/scaffolder/tasks", headers=headers,
                   content=b'{"template": "tenant", "answers": {"description": "'
                   + b"x" * 1_100_000 + b'"}}',
                   )
    assert got.status_code == 413 and got.json()["error"]["field"] == "body"


@pytest.mark.parametrize(("raw", "field"), [
    ('"description": "Rocket \\ud83d"', "description"),  # a lone (high) surrogate
    ('"description": "a\\udc00b"', "description"),  # a lone (low) surrogate
    ('"description": "a\\u0085b"', "description"),  # C1 control (NEL)
    ('"description": "a\\u0000b"', "description"),  # C0 control
    ('"cost_center": "cc\\u009b31m"', "cost_center"),  # C1 CSI
])
def test_surrogates_and_control_characters_are_refused_naming_the_field(
        raw: str, field: str, client: tuple[TestClient, dict[str, str]], engine: Engine,
        gitops: Path) -> None:
    """JSON can carry what UTF-8 cannot (a lone surrogate): sent as escapes in the raw body."""
    app, headers = client
    main = gittree.resolve(gitops, "main")
    body = ('{"template": "tenant", "answers": {"team": "payments", "name": "web", '
            '"cost_center": "cc-1", "environments": ["dev"], ' + raw + "}}")
    for path in ("/api/scaffolder/dry-run", "/api/scaffolder/tasks"):
        got = app.post(path, headers={**headers, "content-type": "application/json"},
                       content=body.encode())
        assert 400 <= got.status_code < 500, got.text
        assert got.json()["error"]["field"] == field
        assert got.json()["error"]["rule"] == "no-control-characters"
    assert gittree.resolve(gitops, "main") == main
    with Session(engine) as s:
        assert s.exec(select(Change)).all() == []
