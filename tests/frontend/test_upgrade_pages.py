"""The Upgrades page and the catalog's "behind template" badge (issue 15); HTTP through the
app, no browser."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from catalog import service as catalog_service
from gitops.gitreader import GitReader
from portal.auth.models import Role
from portal.settings import Settings
from scaffolder.models import Change
from tests.conftest import UserFactory
from tests.scaffolder.conftest import seed
from tests.scaffolder.test_upgrade import UNIT, admin, behind_unit

pytestmark = pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
Headers = Callable[[str], dict[str, str]]


@pytest.fixture
def gitops(settings: Settings, tmp_path: Path) -> Path:
    return seed(settings, tmp_path)


def test_the_page_lists_units_behind_with_what_changed_and_opens_their_prs(
        app_client: TestClient, settings: Settings, engine: Engine, gitops: Path,
        tmp_path: Path, make_user: UserFactory, auth_headers: Headers) -> None:
    root = admin(engine, make_user, "admin")
    registry, _forge = behind_unit(settings, engine, gitops, tmp_path, root,
                                   ("# The default quota;", "# Agreed with finance;"))
    with Session(engine) as s:
        catalog_service.reindex(s, forge=GitReader(gitops))
    make_user("rita", teams={"payments": Role.reviewer})
    make_user("dev", teams={"payments": Role.developer})
    html = {**auth_headers("rita"), "accept": "text/html"}

    entity = app_client.get("/catalog/namespaces/payments/payments-web", headers=html)
    assert entity.status_code == 200
    assert 'id="behind-template"' in entity.text and "behind template tenant" in entity.text
    current = app_client.get("/catalog/namespaces/platform/platform-tools", headers=html)
    assert current.status_code == 200 and 'id="behind-template"' not in current.text

    page = app_client.get("/upgrades", headers=html)
    assert page.status_code == 200, page.text[:500]
    assert UNIT in page.text and "What changed" in page.text
    assert "+    pods: &#39;{{ cookiecutter.max_pods | int }}&#39;" in page.text
    assert 'href="/upgrades"' in page.text  # the navigation names the page for reviewers
    denied = app_client.get("/upgrades", headers={**auth_headers("dev"), "accept": "text/html"})
    assert denied.status_code == 403

    opened = app_client.post("/upgrades", headers=html, data={"template": "tenant",
                                                              "per": "unit"})
    assert opened.status_code == 200, opened.text[:500]
    assert "opened" in opened.text
    with Session(engine) as s:
        [change] = s.exec(select(Change)).all()
        assert change.action == "upgrade" and change.unit_key == UNIT
    assert f'href="/changes/{change.id}"' in opened.text
    assert registry.store.versions("tenant")


@pytest.mark.parametrize(("form", "field"), [
    ({"template": "../tenant", "per": "unit"}, "template"),
    ({"template": "tenant", "per": "everything"}, "per"),
])
def test_a_refused_form_value_is_a_422_naming_the_field_and_opens_nothing(
        app_client: TestClient, engine: Engine, gitops: Path, make_user: UserFactory,
        auth_headers: Headers, form: dict[str, str], field: str) -> None:
    """The button's form is parsed into ``UpgradeRequest``: a hostile value used to be a
    500 (an unhandled pydantic error)."""
    admin(engine, make_user, "admin")
    refused = app_client.post("/upgrades", headers=auth_headers("admin"), data=form)
    assert refused.status_code == 422, refused.text[:300]
    error = refused.json()["error"]
    assert error["field"] == field and field in error["message"]
    with Session(engine) as s:
        assert s.exec(select(Change)).all() == []
