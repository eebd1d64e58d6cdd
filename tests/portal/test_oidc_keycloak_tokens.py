"""ID tokens shaped like Keycloak's through the whole code flow (both databases): the groups
claim with "Full group path" on and off, "Email as username" realms, ``aud`` arrays carrying
``account`` with ``azp``, and the refusals that name the realm setting."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from portal.app import create_app
from portal.settings import Settings
from tests.fakes.oidc import CLIENT_ID, FakeIdP, start_sign_in


def keycloak_user(username: str, groups: list[str], **extra: Any) -> dict[str, Any]:
    """The claims Keycloak 26 puts in an ID token of a confidential client (besides iss, aud,
    exp, iat, nonce, which the fake provider sets)."""
    return {"preferred_username": username, "email": extra.pop("email", f"{username}@x.org"),
            "email_verified": True, "name": "Olga Olsen", "given_name": "Olga",
            "family_name": "Olsen", "sid": "0b3c", "acr": "1", "at_hash": "q1",
            "auth_time": 1_700_000_000, "typ": "ID", "groups": groups, **extra}


@pytest.fixture(autouse=True)
def _reset(idp: FakeIdP) -> None:
    idp.keys[:] = idp.keys[:1]
    idp.token_overrides = {}


def _sign_in(portal: TestClient) -> Any:
    return portal.get(start_sign_in(portal), follow_redirects=False)


@pytest.mark.parametrize("slash", ["/", ""], ids=["full-path-on", "full-path-off"])
def test_group_mapper_with_full_path_on_and_off(portal: TestClient, idp: FakeIdP,
                                                slash: str) -> None:
    idp.user = keycloak_user("olga", [f"{slash}team-payments", f"{slash}team-search",
                                      f"{slash}team-search-admins", f"{slash}platform-admins",
                                      "offline_access", "default-roles-caas"])
    assert _sign_in(portal).status_code == 303
    me = portal.get("/api/auth/me").json()
    assert me["teams"] == {"payments": "developer", "search": "reviewer"}
    assert me["is_platform_admin"] is True


def test_aud_array_with_account_and_azp(portal: TestClient, idp: FakeIdP) -> None:
    idp.user = keycloak_user("olga", ["/team-payments-admins"])
    idp.token_overrides = {"aud": [CLIENT_ID, "account"], "azp": CLIENT_ID}
    assert _sign_in(portal).status_code == 303
    assert portal.get("/api/auth/me").json()["teams"] == {"payments": "reviewer"}
    portal.cookies.clear()
    idp.token_overrides = {"aud": [CLIENT_ID, "account"], "azp": "account-console"}
    refused = _sign_in(portal)
    assert refused.status_code == 401 and refused.json()["error"]["rule"] == "azp"


def test_email_as_username_realm(portal: TestClient, idp: FakeIdP) -> None:
    idp.user = keycloak_user("olga@example.org", ["team-payments"], email="olga@example.org")
    assert _sign_in(portal).status_code == 303
    me = portal.get("/api/auth/me").json()
    assert me["username"] == "olga_at_example.org"
    assert me["teams"] == {"payments": "developer"}


def test_two_accounts_mapping_to_one_portal_name_are_refused(portal: TestClient,
                                                             idp: FakeIdP) -> None:
    idp.user = keycloak_user("o+k@example.org", ["team-payments"], sub="kc-1")
    assert _sign_in(portal).status_code == 303
    portal.cookies.clear()
    idp.user = keycloak_user("o-k@example.org", ["team-payments"], sub="kc-2")
    refused = _sign_in(portal)
    assert refused.status_code == 401
    assert refused.json()["error"]["rule"] == "username-collision"
    assert "caas_session" not in portal.cookies
    portal.cookies.clear()
    idp.user = keycloak_user("o+k@example.org", ["team-payments"], sub="kc-1")
    assert _sign_in(portal).status_code == 303  # the first account still signs in


def test_retired_group_forms_grant_nothing(portal: TestClient, idp: FakeIdP) -> None:
    idp.user = keycloak_user("olga", ["/teams/payments", "/teams/payments/reviewers",
                                      "payments-reviewers", "reviewers"])
    assert _sign_in(portal).status_code == 303
    assert portal.get("/api/auth/me").json()["teams"] == {}


@pytest.fixture
def nested_admin_portal(oidc_settings: Settings, oidc_engine: Engine) -> Iterator[TestClient]:
    settings = oidc_settings.model_copy(update={"oidc_admin_group": "ops/admins"})
    with TestClient(create_app(settings, engine=oidc_engine)) as c:
        yield c


def test_full_group_path_off_with_a_nested_admin_group_is_refused_naming_the_setting(
        nested_admin_portal: TestClient, idp: FakeIdP) -> None:
    idp.user = keycloak_user("olga", ["admins", "team-payments"])
    refused = nested_admin_portal.get(start_sign_in(nested_admin_portal),
                                      follow_redirects=False)
    assert refused.status_code == 401
    error = refused.json()["error"]
    assert error["rule"] == "full-group-path" and "Full group path" in error["message"]
    nested_admin_portal.cookies.clear()
    idp.user = keycloak_user("olga", ["/ops/admins", "/team-payments"])
    assert nested_admin_portal.get(start_sign_in(nested_admin_portal),
                                   follow_redirects=False).status_code == 303
    assert nested_admin_portal.get("/api/auth/me").json()["is_platform_admin"] is True
