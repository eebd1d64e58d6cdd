"""The API keeps its contract under hostile input, on both databases: each kind of bad input is
a 4xx naming the field (or parameter) and NOTHING is written (no git ref, no change, task or
pull-request row); a task that fails after reserving its unit releases the reservation."""

from __future__ import annotations

import contextlib
import json
import select as io_select
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from gitops import git, gittree
from gitops.forges.models import LocalPullRequest
from portal.app import create_app
from portal.auth.models import Role
from portal.settings import Settings
from scaffolder.models import Change, Task
from tests.conftest import UserFactory, bearer
from tests.harness.served import served

TENANT = {"team": "payments", "name": "web", "cost_center": "cc-1", "environments": ["dev"]}
ENVIRONMENT = {"environment": "qa", "provider": "local", "region": "local", "tier": "dev"}
HUGE = str(2**63)


@pytest.fixture
def client(app_client: TestClient, gitops: Path, make_user: UserFactory,
           auth_headers: Callable[[str], dict[str, str]]) -> tuple[TestClient, dict[str, str]]:
    make_user("root", teams={"platform": Role.reviewer}, admin=True)
    return app_client, auth_headers("root")


def nothing_written(engine: Engine, gitops: Path, main: str | None) -> None:
    refs = git.out(gitops, "for-each-ref", "--format=%(refname)").split()
    assert refs == ["refs/heads/main"]
    assert gittree.resolve(gitops, "main") == main
    with Session(engine) as s:
        assert s.exec(select(Change)).all() == []
        assert s.exec(select(Task)).all() == []
        assert s.exec(select(LocalPullRequest)).all() == []


BODIES: list[tuple[str, bytes, str, int]] = [
    # kind: non-finite or out-of-bounds quantities (environment capacity, tenant quota)
    ("capacity 1e309", json.dumps({"template": "environment", "answers": {
        **ENVIRONMENT, "capacity_cpu": "1e309"}}).encode(), "capacity_cpu", 422),
    ("capacity above 2^63", json.dumps({"template": "environment", "answers": {
        **ENVIRONMENT, "capacity_memory": "9Ei"}}).encode(), "capacity_memory", 422),
    ("quota 1e309", json.dumps({"template": "tenant", "answers": {
        **TENANT, "cpu_quota": "1e309"}}).encode(), "cpu_quota", 422),
    # kind: JSON numbers Python reads as inf/nan
    ("number 1e309", b'{"template": "tenant", "answers": {"team": "payments", "name": "web", '
     b'"cost_center": "c", "environments": ["dev"], "max_pods": 1e309}}', "max_pods", 422),
    ("NaN", b'{"template": "tenant", "answers": {"team": "payments", "name": "web", '
     b'"cost_center": "c", "environments": ["dev"], "max_pods": NaN}}', "max_pods", 422),
    # kind: null where the schema has a default but no null
    ("null quota", json.dumps({"template": "tenant", "answers": {
        **TENANT, "cpu_quota": None}}).encode(), "cpu_quota", 422),
    ("null list", json.dumps({"template": "environment", "answers": {
        **ENVIRONMENT, "zones": None}}).encode(), "zones", 422),
    ("null update", json.dumps({"template": "tenant", "answers": TENANT,
                                "update": None}).encode(), "update", 422),
    ("null answers", json.dumps({"template": "tenant", "answers": None}).encode(), "answers",
     422),
    # kind: one oversized value: refused naming it, whole body over the limit or not
    ("1 MiB value", json.dumps({"template": "tenant", "answers": {
        **TENANT, "description": "x" * 1_100_000}}).encode(), "answers.description", 413),
    ("long value", json.dumps({"template": "tenant", "answers": {
        **TENANT, "description": "x" * 5000}}).encode(), "description", 422),
]


@pytest.mark.parametrize(("case", "body", "field", "status"), BODIES,
                         ids=[b[0] for b in BODIES])
@pytest.mark.parametrize("chunked", [False, True], ids=["length", "chunked"])
def test_bad_bodies_are_refused_naming_the_field_and_nothing_is_written(
        case: str, body: bytes, field: str, status: int, chunked: bool,
        client: tuple[TestClient, dict[str, str]], engine: Engine, gitops: Path) -> None:
    app, headers = client
    main = gittree.resolve(gitops, "main")
    headers = {**headers, "content-type": "application/json"}
    for path in ("/api/scaffolder/dry-run", "/api/scaffolder/tasks"):
        # A generator body goes out with Transfer-Encoding: chunked and no Content-Length.
        content: bytes | Iterator[bytes] = (
            iter([body[i:i + 65536] for i in range(0, len(body), 65536)]) if chunked else body)
        got = app.post(path, headers=headers, content=content)
        assert got.status_code == status, (case, got.text[:300])
        error = got.json()["error"]
        assert error["field"] == field, (case, error)
        assert got.headers["x-request-id"] and got.headers["x-content-type-options"] == "nosniff"
    nothing_written(engine, gitops, main)


def test_chunked_body_is_cut_off_at_the_limit(settings: Settings, engine: Engine,
                                             gitops: Path, make_user: UserFactory) -> None:
    """200 MB sent chunked to the served app: the 413 (naming the value) arrives once about
    1 MiB has been read; the server closes the connection instead of reading the rest."""
    make_user("root", admin=True)
    token = bearer(engine, "root")["Authorization"]
    main = gittree.resolve(gitops, "main")
    with served(create_app(settings, engine=engine)) as url:
        host, port = url.removeprefix("http://").split(":")
        conn = socket.create_connection((host, int(port)))
        conn.sendall(f"POST /api/scaffolder/dry-run HTTP/1.1\r\nHost: {host}\r\n"
                     f"Authorization: {token}\r\nContent-Type: application/json\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n".encode())
        opening = b'{"template": "tenant", "answers": {"description": "'
        conn.sendall(b"%x\r\n%s\r\n" % (len(opening), opening))
        chunk, sent, reply = b"x" * 65536, 0, b""
        with contextlib.suppress(OSError):  # the server closed: writing fails
            while sent < 200_000_000 and not reply:
                conn.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
                if io_select.select([conn], [], [], 0)[0]:
                    reply = conn.recv(65536)
        conn.settimeout(10)
        with contextlib.suppress(OSError):
            while b"\r\n\r\n" not in reply or not reply.rstrip().endswith(b"}"):
                more = conn.recv(65536)
                if not more:
                    break
                reply += more
        conn.close()
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), reply[:300]
    assert b"x-request-id" in head.lower()
    assert json.loads(body)["error"]["field"] == "answers.description"
    assert sent < 16 * 1_048_576  # stopped long before 200 MB (socket buffers hold a few MB)
    nothing_written(engine, gitops, main)


ID_PATHS = [("GET", "/api/changes/{}"), ("POST", "/api/changes/{}/approve"),
            ("POST", "/api/changes/{}/merge"), ("POST", "/api/changes/{}/close"),
            ("GET", "/api/scaffolder/tasks/{}"), ("POST", "/api/scaffolder/tasks/{}/retry"),
            ("GET", "/api/scaffolder/tasks/{}/events"), ("GET", "/api/reconciler/jobs/{}"),
            ("GET", "/api/reconciler/jobs/{}/events"),
            ("POST", "/api/reconciler/jobs/{}/retry"), ("DELETE", "/api/auth/tokens/{}"),
            ("GET", "/changes/{}"), ("GET", "/tasks/{}")]


def test_out_of_range_ids_are_refused_naming_the_parameter(
        client: tuple[TestClient, dict[str, str]], engine: Engine, gitops: Path) -> None:
    app, headers = client
    main = gittree.resolve(gitops, "main")
    for method, template in ID_PATHS:
        for value in (HUGE, str(2**31), "-1", "0", "1e3"):
            got = app.request(method, template.format(value), headers=headers)
            assert got.status_code == 422, (method, template, value, got.text[:300])
            assert got.headers["x-request-id"]
            if template.startswith("/api"):
                field = got.json()["error"]["field"]
                assert field in {"change_id", "task_id", "job_id", "token_id"}, field
    nothing_written(engine, gitops, main)


def test_out_of_range_queries_are_refused_naming_the_parameter(
        client: tuple[TestClient, dict[str, str]]) -> None:
    app, headers = client
    for path, field in [
            (f"/api/changes?limit={HUGE}", "limit"), (f"/api/audit?before_id={HUGE}", "before_id"),
            (f"/api/reconciler/jobs?before_id={HUGE}", "before_id"),
            (f"/api/catalog/entities?offset={HUGE}0", "offset"),
            (f"/api/catalog/teams?limit={HUGE}", "limit"), ("/api/changes?status=bogus", "status"),
            ("/api/audit?until=0.5", "until"), ("/api/catalog/teams?cursor=%2C", "cursor")]:
        got = app.get(path, headers=headers)
        assert got.status_code == 422, (path, got.text[:300])
        assert got.json()["error"]["field"] == field, path


def test_last_event_id_beyond_64_bits_is_refused(client: tuple[TestClient, dict[str, str]]
                                                 ) -> None:
    app, headers = client
    got = app.get("/api/reconciler/jobs/1/events", headers={**headers, "last-event-id": HUGE})
    assert got.status_code == 422 and got.json()["error"]["field"] == "last-event-id"


def test_unexpected_errors_are_500_with_the_security_headers(
        client: tuple[TestClient, dict[str, str]], monkeypatch: pytest.MonkeyPatch) -> None:
    from scaffolder import review

    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(review, "list_changes", broken)
    app, headers = client
    got = app.get("/api/changes", headers={**headers, "x-request-id": "trace-42"})
    assert got.status_code == 500
    assert got.json()["error"]["code"] == "internal" and "a bug" not in got.text
    assert got.headers["x-request-id"] == "trace-42"
    assert got.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in got.headers["content-security-policy"]
