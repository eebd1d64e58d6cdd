from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from portal.app import create_app
from portal.auth.models import AuditEvent, Role
from tests.conftest import PASSWORD, UserFactory, make_settings


def _audit(session: Session, action: str) -> list[AuditEvent]:
    session.rollback()  # end the snapshot: see what the app committed since
    return list(session.exec(select(AuditEvent).where(AuditEvent.action == action)).all())


def test_wrong_password_is_401_and_audited(
    app_client: TestClient, make_user: UserFactory, session: Session
) -> None:
    make_user("alice")
    response = app_client.post("/api/auth/login", json={"username": "alice", "password": "nope"})
    assert response.status_code == 401
    assert response.json()["error"]["field"] == "password"
    rows = _audit(session, "auth.login")
    assert [(r.actor, r.outcome) for r in rows] == [("alice", "failure")]
    assert rows[0].ip == "testclient"


def test_login_session_and_me(app_client: TestClient, make_user: UserFactory) -> None:
    make_user("bob", teams={"payments": Role.reviewer})
    login = app_client.post("/api/auth/login", json={"username": "bob", "password": PASSWORD})
    assert login.status_code == 200
    assert login.json()["user"]["teams"] == {"payments": "reviewer"}
    me = app_client.get("/api/auth/me")
    assert me.status_code == 200 and me.json()["username"] == "bob"


def test_request_without_credentials_is_401(app_client: TestClient) -> None:
    response = app_client.get("/api/auth/me")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert app_client.get("/api/auth/me", headers={"Authorization": "Basic abc"}).status_code == 401
    assert app_client.get("/api/auth/me",
                          headers={"Authorization": "Bearer caas_forged"}).status_code == 401


def test_token_can_be_revoked(
    app_client: TestClient, make_user: UserFactory, auth_headers: Callable[[str], dict[str, str]]
) -> None:
    make_user("carol")
    headers = auth_headers("carol")
    created = app_client.post("/api/auth/tokens", json={"name": "ci"}, headers=headers)
    assert created.status_code == 201
    token = created.json()["token"]
    second = {"Authorization": f"Bearer {token}"}
    assert app_client.get("/api/auth/me", headers=second).status_code == 200
    revoked = app_client.delete(f"/api/auth/tokens/{created.json()['id']}", headers=headers)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    assert app_client.get("/api/auth/me", headers=second).status_code == 401


def test_session_replayed_after_logout_is_refused(
    app_client: TestClient, make_user: UserFactory
) -> None:
    make_user("dan")
    login = app_client.post("/api/auth/login", json={"username": "dan", "password": PASSWORD})
    cookie = app_client.cookies.get("caas_session")
    csrf = login.json()["csrf_token"]
    assert app_client.post("/api/auth/logout", headers={"x-csrf-token": csrf}).status_code == 204
    app_client.cookies.set("caas_session", cookie)
    assert app_client.get("/api/auth/me").status_code == 401


def test_cookie_post_without_csrf_is_refused_and_audited(
    app_client: TestClient, make_user: UserFactory, session: Session
) -> None:
    make_user("erin")
    app_client.post("/api/auth/login", json={"username": "erin", "password": PASSWORD})
    response = app_client.post("/api/auth/tokens", json={"name": "x"},
                               headers={"x-csrf-token": "forged"})
    assert response.status_code == 403
    assert response.json()["error"]["field"] == "csrf_token"
    assert [r.outcome for r in _audit(session, "auth.csrf")] == ["denied"]


def test_tenth_failed_sign_in_in_a_minute_is_refused(
    app_client: TestClient, make_user: UserFactory, session: Session
) -> None:
    make_user("frank")
    codes = [app_client.post("/api/auth/login",
                             json={"username": "frank", "password": "wrong"}).status_code
             for _ in range(10)]
    assert codes == [401] * 9 + [429]
    # Even the right password is refused while the limit holds.
    ok = app_client.post("/api/auth/login", json={"username": "frank", "password": PASSWORD})
    assert ok.status_code == 429
    assert any(r.outcome == "denied" for r in _audit(session, "auth.login"))


def test_audit_log_is_admin_only(
    app_client: TestClient, make_user: UserFactory, auth_headers: Callable[[str], dict[str, str]]
) -> None:
    make_user("root", admin=True)
    make_user("gina")
    assert app_client.get("/api/audit", headers=auth_headers("gina")).status_code == 403
    admin = auth_headers("root")
    rows = app_client.get("/api/audit", params={"action": "user."}, headers=admin).json()
    assert {r["target"] for r in rows} == {"root", "gina"}
    csv = app_client.get("/api/audit", params={"format": "csv"}, headers=admin)
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.text.splitlines()[0] == "id,at,actor,action,target,outcome,ip,detail"


def test_local_sign_in_disabled_leaves_break_glass_admins(
    tmp_path: Path, database_url: str, make_user: UserFactory, session: Session
) -> None:
    make_user("root", admin=True)
    make_user("hank")
    settings = make_settings(tmp_path, database_url, local_login_enabled=False)
    with TestClient(create_app(settings)) as client:
        refused = client.post("/api/auth/login", json={"username": "hank", "password": PASSWORD})
        assert refused.status_code == 403 and refused.json()["error"]["rule"] == "local_login"
        wrong = client.post("/api/auth/login", json={"username": "root", "password": "nope"})
        assert wrong.status_code == 401
        glass = client.post("/api/auth/login", json={"username": "root", "password": PASSWORD})
        assert glass.status_code == 200 and glass.json()["user"]["is_platform_admin"]
    rows = [(r.actor, r.outcome, r.detail.get("via") or r.detail.get("reason"))
            for r in _audit(session, "auth.login")]
    assert rows == [("hank", "denied", "local sign-in disabled"),
                    ("root", "failure", "bad credentials"), ("root", "success", "break-glass")]
