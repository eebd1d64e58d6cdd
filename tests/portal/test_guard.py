"""``portal.guard``: which value a request body was cut in when it crossed the limit; text
PostgreSQL cannot hold refused before any view."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from portal.auth.models import ApiToken
from portal.guard import NUL_FREE, _field_at_cut, nul_field
from tests.conftest import UserFactory


def scope(content_type: str) -> dict[str, object]:
    return {"type": "http", "headers": [(b"content-type", content_type.encode())]}


@pytest.mark.parametrize(("content_type", "prefix", "field"), [
    ("application/json", b'{"template": "t", "answers": {"description": "xx',
     "answers.description"),
    ("application/json; charset=utf-8", b'{"a": {"b": {"c": "xx', "a.b.c"),
    ("application/json", b'{"answers": {"owners": ["a", "b", "cc', "answers.owners"),
    ("application/json", b'{"name": "xxxxx', "name"),
    ("application/json", b'["xxxxx', "body"),
    ("application/json", b"not json at all", "body"),
    ("application/x-www-form-urlencoded", b"csrf=1&description=xxxx", "description"),
    ("multipart/form-data; boundary=x", b"--x\r\nContent-Disposition: form-data", "body"),
    ("text/plain", b"xxxx", "body"),
])
def test_the_value_in_progress_is_named(content_type: str, prefix: bytes, field: str) -> None:
    assert _field_at_cut(scope(content_type), prefix) == field


# ---- text PostgreSQL cannot hold: NUL (U+0000) ------------------------------------------------

# Each answered 500 on PostgreSQL (psycopg: "PostgreSQL text fields cannot contain NUL (0x00)
# bytes"), sign-in before any authentication included.
NUL_GETS = [
    ("/api/catalog/teams/%00", "path"),
    ("/api/catalog/namespaces/a%00/b", "path"),
    ("/api/audit?actor=%00", "actor"),
    ("/api/audit?limit=5&action=a%00", "action"),
    ("/api/audit?target=%00", "target"),
    ("/api/catalog/search?q=a%00", "q"),
    ("/api/catalog/teams?q=a%00b", "q"),
    ("/search?q=a%00b", "q"),
]


@pytest.mark.parametrize("db_backend", ["sqlite", "postgresql"], indirect=True)
def test_a_nul_character_anywhere_is_a_422_naming_the_parameter(
        app_client: TestClient, make_user: UserFactory,
        auth_headers: Callable[[str], dict[str, str]], engine: Engine) -> None:
    make_user("root", admin=True)
    headers = auth_headers("root")
    for url, field in NUL_GETS:
        got = app_client.get(url, headers=headers)
        assert got.status_code == 422, (url, got.text)
        assert got.json()["error"]["field"] == field, url
        assert got.json()["error"]["rule"] == "no-control-characters", url
    page = app_client.get("/search?q=a%00b", headers={**headers, "accept": "text/html"})
    assert page.status_code == 422 and "text/html" in page.headers["content-type"]
    assert "must not contain the NUL character" in page.text
    with Session(engine) as s:
        tokens_before = len(s.exec(select(ApiToken)).all())
    login = app_client.post("/api/auth/login", json={"username": "a\x00", "password": "x"})
    assert login.status_code == 422 and login.json()["error"]["field"] == "username"
    form = app_client.post("/login", data={"username": "root\x00", "password": "x"})
    assert form.status_code == 422
    token = app_client.post("/api/auth/tokens", json={"name": "ci\x00"}, headers=headers)
    assert token.status_code == 422 and token.json()["error"]["field"] == "name"
    nested = app_client.post("/api/auth/tokens", json={"name": "ci", "x": {"y": ["\x00"]}},
                             headers=headers)
    assert nested.json()["error"]["field"] == "y"
    with Session(engine) as s:
        assert len(s.exec(select(ApiToken)).all()) == tokens_before
    # A backslash before "u0000" is text, not NUL.
    fine = app_client.post("/api/auth/tokens", json={"name": "ci\\u0000"}, headers=headers)
    assert fine.status_code == 201, fine.text


def test_nul_field_costs_nothing_without_a_nul() -> None:
    assert nul_field({"path": "/api/x", "query_string": b"q=a%20b"}, b'{"a": "\\\\u0000"}') is None
    assert nul_field({"path": "/a\x00"}, b"") == "path"
    assert nul_field({"path": "/", "query_string": b"a=1&%00=2"}, b"") == "query"


def test_the_api_document_states_the_rule_for_free_text(app_client: TestClient) -> None:
    document = app_client.get("/api/openapi.json").json()
    login = document["components"]["schemas"]["LoginIn"]["properties"]["username"]
    assert login["pattern"] == NUL_FREE
    search = next(p for p in document["paths"]["/api/catalog/search"]["get"]["parameters"]
                  if p["name"] == "q")
    assert search["schema"]["pattern"] == NUL_FREE
    cursor = next(p for p in document["paths"]["/api/catalog/teams"]["get"]["parameters"]
                  if p["name"] == "cursor")
    assert cursor["schema"]["anyOf"][0]["pattern"] != NUL_FREE  # its own pattern stays
