from __future__ import annotations

from fastapi.testclient import TestClient


def test_healthz_readyz_metrics(app_client: TestClient, db_backend: str) -> None:
    assert app_client.get("/healthz").json() == {"status": "ok"}
    ready = app_client.get("/readyz").json()
    # The fixture's portal has no GitOps repository yet: it serves, degraded, naming the fix.
    assert ready["status"] == "degraded" and ready["database"] == db_backend
    assert "run `caas init`" in ready["reason"]
    metrics = app_client.get("/metrics")
    assert metrics.status_code == 200
    assert "caas_http_requests_total" in metrics.text
    assert 'route="/healthz"' in metrics.text


def test_unknown_api_route_is_json_404(app_client: TestClient) -> None:
    response = app_client.get("/api/nope")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "http_error"


def test_oversized_body_is_refused(app_client: TestClient) -> None:
    response = app_client.post("/api/auth/login", content=b"x" * 2_000_000,
                               headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.json()["error"]["field"] == "body"


def test_security_headers(app_client: TestClient) -> None:
    response = app_client.get("/login")
    assert response.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


def test_pages_redirect_to_login_without_session(app_client: TestClient) -> None:
    response = app_client.get("/", headers={"accept": "text/html"}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login")
