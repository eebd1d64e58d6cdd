"""Every page renders for the right people and refuses the others with a page that says what
to do next; plain HTTP against the live server (fast, no browser)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from portal.app import create_app
from tests.conftest import UserFactory, bearer, make_settings
from tests.frontend.conftest import LiveServer


@pytest.fixture(scope="module")
def client(live_server: LiveServer) -> Iterator[Callable[[str], httpx.Client]]:
    clients: list[httpx.Client] = []

    def as_user(username: str) -> httpx.Client:
        c = httpx.Client(base_url=live_server.url, timeout=60,
                         headers={"accept": "text/html", **bearer(live_server.engine, username)})
        clients.append(c)
        return c

    yield as_user
    for c in clients:
        c.close()


def test_pages_render_for_a_developer(client: Callable[[str], httpx.Client]) -> None:
    dana = client("dana")
    for path, text in [
        ("/", "My requests"),
        ("/templates", "Request something"),
        ("/templates/team", "Request: Team"),
        ("/catalog", "Namespaces"),
        ("/catalog?kind=teams", "payments"),
        ("/catalog?kind=environments&q=dev", "dev"),
        ("/catalog/teams/payments", "Monthly cost"),
        ("/catalog/environments/dev", "Terraform units"),
        ("/changes?view=all", "Changes"),
    ]:
        response = dana.get(path)
        assert response.status_code == 200, (path, response.text[:500])
        assert text in response.text, path
        assert "content-security-policy" in response.headers
        assert "<script>" not in response.text  # scripts only from /static (CSP)


def test_refusals_are_pages_with_a_next_step(client: Callable[[str], httpx.Client]) -> None:
    dana = client("dana")
    for path, status in [("/audit", 403), ("/catalog/teams/nobody", 404),
                         ("/catalog/namespaces/payments/nothing", 404),
                         ("/catalog/environments/nowhere", 404), ("/changes/99999", 404),
                         ("/templates/no-such-template", 404), ("/catalog?kind=bogus", 422)]:
        response = dana.get(path)
        assert response.status_code == status, path
        assert "Next step:" in response.text, path
        assert "Traceback" not in response.text


def test_request_form_refuses_bad_values_server_side(client: Callable[[str], httpx.Client]) -> None:
    dana = client("dana")
    response = dana.post("/templates/tenant/preview", data={
        "team": "payments", "name": "{{ 7*7 }}", "cost_center": "cc",
        "environments.__multi": "1", "environments": "dev"})
    assert response.status_code == 422
    assert 'aria-invalid="true"' in response.text
    assert 'value="{{ 7*7 }}"' in response.text  # shown back as inert data, never evaluated
    assert "must not contain the template marker" in response.text
    check = dana.post("/templates/tenant/check", data={
        "name": "kube-system", "_fields": ["name", "team"], "team": "platform"})
    errors = check.json()["errors"]
    assert set(errors) == {"team"}  # `kube-system` is a fine DNS label; the team is not mine
    assert "not an existing team you belong to" in errors["team"]
    other = dana.post("/templates/tenant/preview", data={
        "team": "platform", "name": "x", "cost_center": "cc",
        "environments.__multi": "1", "environments": "dev"})
    assert other.status_code == 422 and "not an existing team you belong to" in other.text


def test_login_page_follows_the_identity_settings(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'caas.db'}", oidc_enabled=True,
                             oidc_issuer="https://sso.example.test/realms/caas",
                             oidc_client_id="caas-portal", local_login_enabled=False)
    page = TestClient(create_app(settings)).get("/login?next=/catalog")  # no lifespan: no DB
    assert page.status_code == 200
    assert 'href="/auth/oidc/login?next=/catalog"' in page.text
    assert 'name="password"' not in page.text


def test_sign_in_returns_to_the_page_with_its_query(app_client: TestClient,
                                                    make_user: UserFactory) -> None:
    """A link to ``/search?q=pay&kind=team`` opened signed out used to come back as
    ``/search`` after sign-in (the redirect kept the path only)."""
    make_user("carol")
    sent = app_client.get("/search?q=pay&kind=team", headers={"accept": "text/html"},
                          follow_redirects=False)
    assert sent.status_code == 303
    assert sent.headers["location"] == "/login?next=/search%3Fq%3Dpay%26kind%3Dteam"
    login = app_client.get(sent.headers["location"])
    assert 'name="next" value="/search?q=pay&amp;kind=team"' in login.text
