"""Every request the group sync sends, checked against the Keycloak Admin REST API as Keycloak's
own admin client (``@keycloak/keycloak-admin-client``, npm, pinned) defines it: endpoint,
method, query keys and body fields. Runs the sync through its cases: first sync and a second
one, removals, paging past 100 members, users missing, a nested admin group created under its
parent, a 409 on create, a 401 mid-sync, names escaped in paths, a group renamed in Keycloak
found by its mark and renamed back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.keycloak import FakeKeycloak, FakeRealm
from devtools.server import serve
from portal.settings import Settings
from reconciler.keycloak import GroupSpec, KeycloakSync, groups_from_team
from tests.fakes.keycloak_npm import admin_routes, check_request

pytestmark = pytest.mark.keycloak_spec
CLIENT, SECRET = "caas-portal-admin", "s3cr3t"


@pytest.fixture(scope="module")
def fake() -> Iterator[tuple[FakeKeycloak, str]]:
    keycloak = FakeKeycloak(client_id=CLIENT, client_secret=SECRET)
    with serve(keycloak.app) as url:
        yield keycloak, url


def test_the_admin_client_definitions_are_read() -> None:
    routes = {(r.method, r.template) for r in admin_routes()}
    assert ("GET", "/admin/realms/{realm}/group-by-path/{path}") in routes
    assert ("PUT", "/admin/realms/{realm}/users/{id}/groups/{groupId}") in routes
    assert check_request("GET", "/admin/realms/caas/user", {}, None)  # a wrong path is caught
    assert check_request("GET", "/admin/realms/caas/users", {"usernam": "x"}, None)
    assert check_request("POST", "/admin/realms/caas/groups", {}, {"nam": "x"})


def test_every_request_of_the_sync_is_a_documented_endpoint(
        fake: tuple[FakeKeycloak, str], tmp_path: Path) -> None:
    keycloak, url = fake
    keycloak.reset()
    realm: FakeRealm = keycloak.add_realm("spec")
    names = [f"user{i:03}" for i in range(130)]
    for name in ("alice", "bob", "platform-admin", *names):
        realm.add_user(name)
    realm.add_group("team-big", tuple(names))
    settings = Settings(data_dir=tmp_path, keycloak_url=url, keycloak_realm="spec",
                        keycloak_admin_client_id=CLIENT,
                        keycloak_admin_client_secret=SECRET,  # type: ignore[arg-type]
                        oidc_admin_group="/ops/admins")
    sync = KeycloakSync.from_settings(settings)
    doc = {"kind": "Team", "metadata": {"name": "shop"},
           "spec": {"owners": ["alice"], "members": ["bob", "ghost"]}}
    first = sync.sync([*groups_from_team("shop", doc), GroupSpec("team-big", names[1:])])
    assert first.created_groups == ["team-shop", "team-shop-admins", "ops", "ops/admins"]
    assert first.removed == [("team-big", "user000")] and first.missing_users == ["ghost"]
    assert not sync.sync([*groups_from_team("shop", doc),
                          GroupSpec("team-big", names[1:])]).changed

    def race(method: str, parts: list[str]) -> int | None:
        if method == "POST" and parts == ["groups"] and realm.group("team-web") is None:
            realm.add_group("team-web")
        return None

    keycloak.on_request = race
    sync.sync([GroupSpec("team-web", ["alice"])], admins=())
    keycloak.on_request = None
    keycloak.revoke_tokens_after = 3
    sync.sync([GroupSpec("team-mobile", ["bob"])])
    for hostile in ("team-x#2", "team-%41", "team-x?y"):
        assert sync._find(hostile) is None
    realm.groups[realm.group_id("team-shop") or ""]["name"] = "Shop"  # renamed in the console
    assert sync.sync(groups_from_team("shop", doc)).renamed == [("Shop", "team-shop")]

    seen = {(method, raw.split("/")[4]) for method, raw, _, _ in keycloak.requests}
    assert {("GET", "group-by-path"), ("POST", "groups"), ("GET", "groups"), ("GET", "users"),
            ("PUT", "users"), ("DELETE", "users"), ("PUT", "groups")} <= seen
    assert any(raw.endswith("/groups") and "q" in query
               for _, raw, query, _ in keycloak.requests)
    # team-big predates the mark: it got it once (PUT /groups/{id} with its attributes).
    assert realm.group("team-big")["attributes"] == {  # type: ignore[index]
        "caas-portal-group": ["team-big"]}
    problems = [p for request in keycloak.requests for p in check_request(*request)]
    assert problems == []
