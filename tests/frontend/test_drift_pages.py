"""The drift page and the entity badges (HTTP against the app): findings with filters, the fix
as a button that opens the re-render PR, the badge linking an entity to its findings."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from portal.auth.models import Role
from tests.catalog.drift.conftest import QUOTA, Main, reindex, wait_run
from tests.catalog.drift.conftest import main as main  # the fixture, shared
from tests.conftest import UserFactory

Headers = Callable[[str], dict[str, str]]
pytestmark = pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)


def test_drift_page_badges_and_fix_button(app_client: TestClient, main: Main, engine: Engine,
                                          make_user: UserFactory, auth_headers: Headers) -> None:
    main.write(QUOTA, main.read(QUOTA).replace('requests.cpu: "2"', 'requests.cpu: "5"'))
    main.commit("hand edit")
    reindex(engine, main)
    make_user("ada", admin=True)
    make_user("dev", teams={"platform": Role.developer})
    ada = {**auth_headers("ada"), "accept": "text/html"}
    dev = {**auth_headers("dev"), "accept": "text/html"}
    empty = app_client.get("/drift", headers=dev)
    assert empty.status_code == 200 and "Not checked yet" in empty.text
    assert "Check now" not in empty.text  # admins only
    assert app_client.post("/drift/run", headers=dev).status_code == 403
    ran = app_client.post("/drift/run", headers=ada, follow_redirects=False)
    assert ran.status_code == 303 and "started" in ran.headers["location"]
    run_id = app_client.get("/api/drift", headers=dev).json()["run"]["id"]
    assert wait_run(app_client, dev, run_id)["state"] == "succeeded"

    page = app_client.get("/drift", headers=dev, params={"side": "git"})
    assert page.status_code == 200
    assert "namespace:platform/platform-tools" in page.text
    assert "edited by hand" in page.text and "Open a re-render PR" in page.text
    assert "not connected" in app_client.get("/drift", headers=dev).text  # cluster side
    assert "No drift found for these filters" in app_client.get(
        "/drift", headers=dev, params={"side": "keycloak"}).text
    bad = app_client.get("/drift", headers=dev, params={"side": "disk"})
    assert bad.status_code == 422 and "side" in bad.text

    entity = app_client.get("/catalog/namespaces/platform/platform-tools", headers=dev)
    assert 'class="badge drift"' in entity.text and "drift: git" in entity.text
    assert "/drift?entity=namespace%3Aplatform%2Fplatform-tools" in entity.text
    clean = app_client.get("/catalog/environments/dev", headers=dev)
    assert 'class="badge drift"' not in clean.text

    finding = app_client.get("/api/drift", headers=dev, params={"side": "git"}).json()
    fid = finding["findings"][0]["id"]
    pr = app_client.post(f"/drift/findings/{fid}/fix", headers=dev, follow_redirects=False)
    assert pr.status_code == 303 and pr.headers["location"].startswith("/changes/")
    again = app_client.get("/drift", headers=dev, params={"side": "git"})
    assert "re-render PR #" in again.text
