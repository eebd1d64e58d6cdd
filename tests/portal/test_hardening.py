"""Hardening: login CSRF, CSRF on every state-changing route, cookie flags, replayed sessions,
sign-in rate limiting, the append-only audit log, redaction, webhook signatures."""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, select

from portal.app import create_app
from portal.auth import audit
from portal.auth.models import AuditEvent
from portal.deps import get_principal, require_login_csrf
from portal.redact import redact, redact_mapping
from portal.settings import Settings
from tests.conftest import PASSWORD, REPO_ROOT, UserFactory, make_settings

SQLITE_ONLY = pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
HTML = {"accept": "text/html"}


def _events(session: Session, action: str) -> list[AuditEvent]:
    session.rollback()
    return list(session.exec(select(AuditEvent).where(AuditEvent.action == action)).all())


def _login_form(client: TestClient) -> str:
    page = client.get("/login", headers=HTML)
    assert page.status_code == 200
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match, "the sign-in form carries a CSRF token"
    return match.group(1)


# ---- CSRF ---------------------------------------------------------------------------------------


@SQLITE_ONLY
def test_login_form_needs_its_csrf_token(app_client: TestClient, make_user: UserFactory,
                                         session: Session) -> None:
    make_user("alice")
    form = {"username": "alice", "password": PASSWORD, "next": "/"}
    # A cross-site form post has neither the pre-session cookie nor the token.
    forged = app_client.post("/login", data={**form, "csrf_token": "forged"}, headers=HTML,
                             follow_redirects=False)
    assert forged.status_code == 403 and "caas_session" not in app_client.cookies
    token = _login_form(app_client)
    assert app_client.post("/login", data={**form, "csrf_token": token[:-2] + "xx"},
                           headers=HTML, follow_redirects=False).status_code == 403
    ok = app_client.post("/login", data={**form, "csrf_token": token}, headers=HTML,
                         follow_redirects=False)
    assert ok.status_code == 303 and "caas_session" in app_client.cookies
    denied = _events(session, "auth.csrf")
    assert [(e.outcome, e.target) for e in denied] == [("denied", "/login")] * 2


@SQLITE_ONLY
def test_login_token_is_bound_to_the_browser(settings: Settings, engine: Engine,
                                             make_user: UserFactory) -> None:
    make_user("alice")
    app = create_app(settings, engine=engine)
    with TestClient(app) as attacker, TestClient(app) as victim:
        token = _login_form(attacker)  # the attacker's own valid token…
        _login_form(victim)
        response = victim.post("/login", data={"username": "alice", "password": PASSWORD,
                                               "csrf_token": token}, headers=HTML,
                               follow_redirects=False)
        assert response.status_code == 403  # …does not match the victim's cookie


@SQLITE_ONLY
def test_json_sign_in_cannot_be_posted_by_a_cross_site_form(app_client: TestClient,
                                                            make_user: UserFactory) -> None:
    make_user("alice")
    body = json.dumps({"username": "alice", "password": PASSWORD})
    # HTML forms can only send form encodings or text/plain; neither is accepted as JSON.
    for ctype in ("text/plain", "application/x-www-form-urlencoded"):
        got = app_client.post("/api/auth/login", content=body, headers={"content-type": ctype})
        assert got.status_code == 422, ctype


@SQLITE_ONLY
def test_forged_csrf_on_a_page_form_is_refused_and_audited(
        app_client: TestClient, make_user: UserFactory, session: Session) -> None:
    make_user("bob")
    app_client.post("/login", data={"username": "bob", "password": PASSWORD,
                                    "csrf_token": _login_form(app_client)}, headers=HTML)
    forged = app_client.post("/logout", data={"csrf_token": "forged"}, headers=HTML,
                             follow_redirects=False)
    assert forged.status_code == 403
    assert app_client.get("/api/auth/me").status_code == 200  # still signed in
    assert [e.actor for e in _events(session, "auth.csrf")] == ["bob"]


def test_every_state_changing_route_checks_csrf_or_a_signature(settings: Settings,
                                                                engine: Engine) -> None:
    """Cookie-authenticated writes go through ``get_principal`` (session CSRF token) or the
    sign-in form's pre-session token; the rest are listed here with their reason."""
    exempt = {
        ("POST", "/api/auth/login"): "JSON only: a cross-site form cannot send it",
        ("POST", "/api/webhooks/github"): "HMAC signature, no cookie",
    }
    app = create_app(settings, engine=engine)
    checked = set()
    for path, route, extra in _api_routes(app.routes, "", frozenset()):
        for method in sorted((route.methods or set()) & {"POST", "PUT", "PATCH", "DELETE"}):
            if (method, path) in exempt:
                continue
            calls = _dependency_calls(route.dependant) | extra
            assert get_principal in calls or require_login_csrf in calls, (method, path)
            checked.add((method, path))
    assert {("POST", "/login"), ("POST", "/logout"), ("POST", "/api/auth/tokens")} <= checked


def _api_routes(routes: list[Any], prefix: str, extra: frozenset[object]
                ) -> Iterator[tuple[str, APIRoute, frozenset[object]]]:
    """Every APIRoute with its full path, through included routers (eager or lazy)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield prefix + route.path, route, extra
        elif hasattr(route, "original_router"):  # FastAPI's lazily included router
            ctx = route.include_context
            deps = frozenset(d.dependency for d in ctx.dependencies)
            yield from _api_routes(route.original_router.routes, prefix + ctx.prefix,
                                   extra | deps)


def _dependency_calls(dependant: object) -> set[object]:
    found: set[object] = set()
    for dep in getattr(dependant, "dependencies", []):
        found.add(dep.call)
        found |= _dependency_calls(dep)
    return found


# ---- cookies ------------------------------------------------------------------------------------


def _cookie(response_headers: list[tuple[str, str]], name: str) -> str:
    values = [v for k, v in response_headers if k == "set-cookie" and v.startswith(name + "=")]
    assert values, name
    return values[0].lower()


@SQLITE_ONLY
@pytest.mark.parametrize("secure", [False, True])
def test_cookie_flags(tmp_path: Path, database_url: str, make_user: UserFactory,
                      secure: bool) -> None:
    make_user("carol")
    settings = make_settings(tmp_path, database_url, cookie_secure=secure)
    with TestClient(create_app(settings)) as client:
        page = client.get("/login", headers=HTML)
        login = client.post("/api/auth/login", json={"username": "carol",
                                                     "password": PASSWORD})
    for cookie in (_cookie(login.headers.multi_items(), "caas_session"),
                   _cookie(page.headers.multi_items(), "caas_prelogin")):
        assert "httponly" in cookie and "samesite=lax" in cookie and "path=/" in cookie
        assert ("secure" in cookie.split("; ")) is secure


# ---- sessions and rate limiting ---------------------------------------------------------------


@SQLITE_ONLY
def test_replayed_session_after_sign_out_is_refused_and_audited(
        app_client: TestClient, make_user: UserFactory, session: Session) -> None:
    make_user("dan")
    login = app_client.post("/api/auth/login", json={"username": "dan", "password": PASSWORD})
    stolen = app_client.cookies.get("caas_session")
    assert app_client.post("/api/auth/logout",
                           headers={"x-csrf-token": login.json()["csrf_token"]}).status_code == 204
    app_client.cookies.set("caas_session", stolen)
    assert app_client.get("/api/auth/me").status_code == 401
    assert app_client.get("/", headers=HTML, follow_redirects=False).status_code == 303
    replays = _events(session, "auth.session")
    assert replays and all((e.actor, e.outcome, e.detail["reason"]) == ("dan", "denied",
                                                                       "signed out")
                           for e in replays)


def test_revoked_token_use_is_audited(app_client: TestClient, make_user: UserFactory,
                                      auth_headers: Callable[[str], dict[str, str]],
                                      session: Session) -> None:
    make_user("erin")
    headers = auth_headers("erin")
    created = app_client.post("/api/auth/tokens", json={"name": "ci"}, headers=headers).json()
    app_client.delete(f"/api/auth/tokens/{created['id']}", headers=headers)
    got = app_client.get("/api/auth/me", headers={"Authorization": f"Bearer {created['token']}"})
    assert got.status_code == 401
    assert [(e.actor, e.outcome) for e in _events(session, "auth.token")] == [("erin", "denied")]


@SQLITE_ONLY
def test_tenth_failed_sign_in_from_one_address_is_refused(
        app_client: TestClient, make_user: UserFactory, session: Session) -> None:
    make_user("gus")
    # Different usernames each time: the limit holds per address too (password spraying).
    codes = [app_client.post("/api/auth/login", json={"username": f"user{i}",
                                                      "password": "wrong"}).status_code
             for i in range(10)]
    assert codes == [401] * 9 + [429]
    form = app_client.post("/login", data={"username": "gus", "password": PASSWORD,
                                           "csrf_token": _login_form(app_client)},
                           headers=HTML, follow_redirects=False)
    assert form.status_code == 429 and "caas_session" not in app_client.cookies
    outcomes = [e.outcome for e in _events(session, "auth.login")]
    assert outcomes.count("failure") == 9 and outcomes.count("denied") == 2


# ---- audit log ------------------------------------------------------------------------------


def test_audit_rows_cannot_be_updated_or_deleted_in_the_database(engine: Engine,
                                                                  session: Session) -> None:
    audit.record(session, actor="x", action="test.event", target="t")
    for statement in ("UPDATE audit_events SET actor = 'y'", "DELETE FROM audit_events"):
        with engine.connect() as conn, pytest.raises(DBAPIError, match="append-only"):
            conn.execute(text(statement))
    session.rollback()
    assert [e.actor for e in _events(session, "test.event")] == ["x"]


def test_no_code_updates_or_deletes_audit_rows() -> None:
    """Append-only in the code: no SQL that rewrites audit rows anywhere, and no ORM delete or
    bulk update in any module that touches ``AuditEvent`` (the triggers refuse the rest)."""
    sql = re.compile(r"(UPDATE|DELETE\s+FROM|TRUNCATE)\s+(TABLE\s+)?audit_events", re.IGNORECASE)
    orm = re.compile(r"(?<![.\w])(update|delete)\(|\b(sa|sqlalchemy|sqlmodel)\.(update|delete)\("
                     r"|session\.(delete|merge)\(")
    offenders, users = [], []
    for package in ("portal", "catalog", "scaffolder", "reconciler", "frontend"):
        for path in (REPO_ROOT / package).rglob("*.py"):
            if path.name == "identity_0001.py":  # the triggers that refuse exactly that
                continue
            source = path.read_text()
            where = str(path.relative_to(REPO_ROOT))
            offenders += [f"{where}: {m.group(0)}" for m in sql.finditer(source)]
            if "AuditEvent" in source and "models.py" not in where:
                users.append(where)
                offenders += [f"{where}: {m.group(0)}" for m in orm.finditer(source)]
    assert offenders == []
    assert "portal/auth/audit.py" in users  # the scan did look at the writer
    source = inspect.getsource(audit)
    assert "session.add(event)" in source


@SQLITE_ONLY
def test_audit_filters_and_export(app_client: TestClient, make_user: UserFactory,
                                  auth_headers: Callable[[str], dict[str, str]]) -> None:
    make_user("root", admin=True)
    app_client.post("/api/auth/login", json={"username": "=hyperlink(1)", "password": "x"})
    app_client.cookies.clear()
    admin = auth_headers("root")
    failures = app_client.get("/api/audit", params={"outcome": "failure", "ip": "testclient"},
                              headers=admin).json()
    assert [(e["actor"], e["action"]) for e in failures] == [("=hyperlink(1)", "auth.login")]
    assert app_client.get("/api/audit", params={"outcome": "maybe"},
                          headers=admin).status_code == 422
    page = app_client.get("/api/audit", params={"limit": 1}, headers=admin)
    assert len(page.json()) == 1
    older = app_client.get("/api/audit", headers=admin,
                           params={"limit": 1, "before_id": page.headers["x-next-before-id"]})
    assert older.json()[0]["id"] < page.json()[0]["id"]
    csv = app_client.get("/api/audit", params={"format": "csv", "outcome": "failure"},
                         headers=admin).text
    assert "'=hyperlink(1)" in csv  # a formula is exported as text


# ---- redaction and webhooks ---------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "secret"), [
    ('{"password": "hunter2hunter2"}', "hunter2hunter2"),
    ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA=="),
    ("Authorization: Bearer caas_abcdefghijklmnopqrstuvwxyz", "abcdefghijklmnopqrstuvwxyz"),
    ("id_token=eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl", "c2lnbmF0dXJl"),
    ("Cookie: caas_session=s3ss10n-value; theme=dark", "s3ss10n-value"),
    ("remote: https://x-access-token:ghs_abcdefghijklmnop@github.com/o/r", "ghs_abcdefghijklmnop"),
    ("client_secret=kc-secret-value&grant_type=x", "kc-secret-value"),
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----", "MIIEow"),
    ("aws key AKIAABCDEFGHIJKLMNOP used", "AKIAABCDEFGHIJKLMNOP"),
])
def test_secrets_are_redacted(raw: str, secret: str) -> None:
    assert secret not in redact(raw)
    assert "***" in redact(raw)


def test_redaction_keeps_ordinary_text_and_masks_secret_keys() -> None:
    text_in = "tenant payments-web: quota 4 CPU, token budget unchanged"
    assert redact(text_in) == text_in
    assert redact_mapping({"github_token": "x", "nested": {"api_key": "y", "n": 1}}) == {
        "github_token": "***", "nested": {"api_key": "***", "n": 1}}


def test_webhook_signature_is_compared_in_constant_time() -> None:
    from gitops.forges import github_webhook

    source = inspect.getsource(github_webhook.verify_signature)
    assert "hmac.compare_digest" in source and "==" not in source.split('"""')[-1]
    body = b'{"ref": "refs/heads/main"}'
    good = github_webhook.sign("s3cret", body)
    assert github_webhook.verify_signature("s3cret", body, good)
    flipped = good[:-1] + ("1" if good.endswith("0") else "0")
    assert not github_webhook.verify_signature("s3cret", body, flipped)
    assert not github_webhook.verify_signature("", body, github_webhook.sign("", body))
