"""The sync at its boundaries, through python-keycloak against the fake admin API: hostile
group names, team files naming platform or foreign groups, a leading-slash admin setting, a
nested admin group, a 409 on create, a 401 mid-sync, a failure while planning, and a user who
appears in Keycloak after the team merged (the worker's periodic resync)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from devtools.keycloak import FakeKeycloak, FakeRealm
from devtools.server import serve
from gitops.forges.local import LocalForge
from portal.settings import Settings
from reconciler.errors import PermanentError, TemporaryError
from reconciler.identity_resync import KeycloakResync
from reconciler.keycloak import (
    GroupSpec,
    KeycloakPermanentError,
    KeycloakSync,
    KeycloakTemporaryError,
    SyncError,
    groups_from_team,
)
from tests.reconciler.conftest import push

CLIENT, SECRET = "caas-portal-admin", "s3cr3t"
_realms = itertools.count(1)


def team_doc(team: str, **groups: str) -> dict[str, Any]:
    spec: dict[str, Any] = {"owners": ["alice"], "members": ["bob"]}
    if groups:
        spec["groups"] = groups
    return {"apiVersion": "caas.io/v1", "kind": "Team", "metadata": {"name": team},
            "spec": spec}


@pytest.fixture(scope="module")
def fake() -> Iterator[tuple[FakeKeycloak, str]]:
    keycloak = FakeKeycloak(client_id=CLIENT, client_secret=SECRET)
    with serve(keycloak.app) as url:
        yield keycloak, url


@pytest.fixture
def keycloak(fake: tuple[FakeKeycloak, str]) -> FakeKeycloak:
    fake[0].reset()
    return fake[0]


@pytest.fixture
def realm(keycloak: FakeKeycloak) -> FakeRealm:
    realm = keycloak.add_realm(f"caas-{next(_realms)}")
    for name in ("alice", "bob", "platform-admin", "breakglass"):
        realm.add_user(name)
    realm.add_group("platform-admins", ("breakglass",))
    realm.add_group("team-x", ("bob",))
    realm.add_group("team-A", ("bob",))
    return realm


def kc_settings(tmp_path: Path, url: str, realm: FakeRealm, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path, "keycloak_url": url, "keycloak_realm": realm.name,
        "keycloak_admin_client_id": CLIENT, "keycloak_admin_client_secret": SECRET}
    return Settings(**{**values, **overrides})


@pytest.fixture
def sync(fake: tuple[FakeKeycloak, str], realm: FakeRealm, tmp_path: Path) -> KeycloakSync:
    return KeycloakSync.from_settings(kc_settings(tmp_path, fake[1], realm))


def snapshot(realm: FakeRealm) -> dict[str, set[str]]:
    return {realm.path(i): set(g["members"]) for i, g in realm.groups.items()}


@pytest.mark.parametrize("name", ["team-x#2", "team-%41", "team-x?y", "team-x/../a", "Team-x",
                                  "platform-admins", "/platform-admins", "team-", "admins",
                                  "team-x ", "team-shop-admins-viewers"])
def test_hostile_group_names_are_refused_before_any_request(
        sync: KeycloakSync, keycloak: FakeKeycloak, realm: FakeRealm, name: str) -> None:
    before = snapshot(realm)
    with pytest.raises(KeycloakPermanentError) as refused:
        sync.sync([GroupSpec("team-shop", ["alice"]), GroupSpec(name, ["alice"])])
    assert isinstance(refused.value, PermanentError) and "refused" in refused.value.message
    assert keycloak.requests == [] and keycloak.writes == []
    assert snapshot(realm) == before


def test_the_client_escapes_what_it_puts_in_a_path(sync: KeycloakSync, keycloak: FakeKeycloak,
                                                   realm: FakeRealm) -> None:
    # Below the name rule (defence in depth): even an unchecked name addresses only itself.
    sync.plan([], admins=())
    for name in ("team-x#2", "team-%41", "team-x?y"):
        assert sync._find(name) is None  # not team-x, not team-A
    paths = [raw for _, raw, _, _ in keycloak.requests if "group-by-path" in raw]
    assert [p.rsplit("/", 1)[-1] for p in paths] == ["team-x%232", "team-%2541", "team-x%3Fy"]
    assert keycloak.writes == []


@pytest.mark.parametrize(("groups", "field", "why"), [
    ({"admin": "platform-admins"}, "spec.groups.admin", "is a platform group"),
    ({"admin": "/platform-admins"}, "spec.groups.admin", "is a platform group"),
    ({"edit": "team-web"}, "spec.groups.edit", "is team 'web''s developers group"),
    ({"edit": "team-x#2"}, "spec.groups.edit", "is not 'shop''s developers group"),
    ({"edit": "team-%41"}, "spec.groups.edit", "is not 'shop''s developers group"),
])
def test_a_team_file_naming_other_groups_moves_nothing(
        sync: KeycloakSync, keycloak: FakeKeycloak, realm: FakeRealm,
        groups: dict[str, str], field: str, why: str) -> None:
    before = snapshot(realm)
    with pytest.raises(KeycloakPermanentError) as refused:
        groups_from_team("shop", team_doc("shop", **groups),
                         platform_groups=("platform-admins",))
    assert f"teams/shop/team.yaml: {field}" in refused.value.message
    assert "team-group" in refused.value.message and why in refused.value.message
    assert isinstance(refused.value, PermanentError)
    assert keycloak.requests == [] and snapshot(realm) == before


def test_a_team_named_like_another_teams_group_is_refused() -> None:
    with pytest.raises(SyncError, match="team-name"):
        groups_from_team("shop-admins", team_doc("shop-admins"))


@pytest.mark.parametrize("setting", ["/platform-admins", "platform-admins/", " /platform-admins/"])
def test_a_leading_slash_admin_setting_syncs(fake: tuple[FakeKeycloak, str], realm: FakeRealm,
                                             keycloak: FakeKeycloak, tmp_path: Path,
                                             setting: str) -> None:
    sync = KeycloakSync.from_settings(kc_settings(tmp_path, fake[1], realm,
                                                  oidc_admin_group=setting))
    report = sync.sync(groups_from_team("shop", team_doc("shop")))
    assert realm.members("platform-admins") == {"breakglass", "platform-admin"}
    assert realm.members("team-shop") == {"alice", "bob"}
    assert report.created_groups == ["team-shop", "team-shop-admins"]
    # The admin group is never a team group target, whatever form the setting had.
    with pytest.raises(SyncError, match="refused"):
        sync.sync([GroupSpec("platform-admins", ["alice"])])


def test_a_nested_admin_group_is_created_under_its_parent(
        fake: tuple[FakeKeycloak, str], realm: FakeRealm, tmp_path: Path) -> None:
    sync = KeycloakSync.from_settings(kc_settings(tmp_path, fake[1], realm,
                                                  oidc_admin_group="/ops/admins"))
    report = sync.sync([])
    assert report.created_groups == ["ops", "ops/admins"]
    assert realm.members("/ops/admins") == {"platform-admin"}
    assert realm.members("ops") == set()
    assert not sync.sync([]).changed


def test_a_409_on_create_reads_the_group_back_and_completes(
        sync: KeycloakSync, keycloak: FakeKeycloak, realm: FakeRealm) -> None:
    def race(method: str, parts: list[str]) -> int | None:
        if method == "POST" and parts == ["groups"] and realm.group("team-shop") is None:
            realm.add_group("team-shop", ("breakglass",))  # another sync won the race
        return None

    keycloak.on_request = race
    report = sync.sync(groups_from_team("shop", team_doc("shop")), admins=())
    assert "team-shop" not in report.created_groups
    # Members are planned before the create: the racer's member stays until the next run.
    assert realm.members("team-shop") >= {"alice", "bob"}
    keycloak.on_request = None
    sync.sync(groups_from_team("shop", team_doc("shop")), admins=())
    assert realm.members("team-shop") == {"alice", "bob"}


def test_a_401_mid_sync_gets_a_new_token_and_completes(
        sync: KeycloakSync, keycloak: FakeKeycloak, realm: FakeRealm) -> None:
    tokens_before = keycloak.token_requests
    keycloak.revoke_tokens_after = 4  # the token expires after four admin requests
    report = sync.sync(groups_from_team("shop", team_doc("shop")))
    assert keycloak.token_requests >= tokens_before + 2
    assert realm.members("team-shop") == {"alice", "bob"}
    assert realm.members("team-shop-admins") == {"alice"}
    assert report.created_groups == ["team-shop", "team-shop-admins"]


def test_a_failure_while_planning_writes_nothing(sync: KeycloakSync, keycloak: FakeKeycloak,
                                                 realm: FakeRealm) -> None:
    before = snapshot(realm)

    def fail_on_users(method: str, parts: list[str]) -> int | None:
        return 500 if parts == ["users"] else None

    keycloak.on_request = fail_on_users
    with pytest.raises(KeycloakTemporaryError) as failed:
        sync.sync(groups_from_team("shop", team_doc("shop")))
    assert isinstance(failed.value, TemporaryError)
    assert keycloak.writes == [] and snapshot(realm) == before


def test_a_user_created_later_joins_at_the_next_resync(
        fake: tuple[FakeKeycloak, str], keycloak: FakeKeycloak, realm: FakeRealm,
        forge: LocalForge, settings: Settings) -> None:
    config = settings.model_copy(update={
        "keycloak_url": fake[1], "keycloak_realm": realm.name,
        "keycloak_admin_client_id": CLIENT,
        "keycloak_admin_client_secret": SecretStr(SECRET)})
    push(forge, {
        "teams/shop/team.yaml": "apiVersion: caas.io/v1\nkind: Team\nmetadata: {name: shop}\n"
                                "spec: {owners: [alice], members: [bob, dave]}\n",
        "teams/evil/team.yaml": "kind: Team\nmetadata: {name: evil}\n"
                                "spec: {groups: {admin: platform-admins}, owners: [bob]}\n"})
    resync = KeycloakResync(config, forge)
    first = resync.resync_once()
    assert first.missing_users == ["dave"]
    assert set(resync.refused) == {"evil"} and "platform group" in resync.refused["evil"]
    assert realm.members("platform-admins") == {"breakglass", "platform-admin"}
    assert realm.group("team-evil-admins") is None
    realm.add_user("dave")  # the account appears in Keycloak after the merge
    second = resync.resync_once()
    assert second.added == [("team-shop", "dave")] and second.missing_users == []
    assert realm.members("team-shop") == {"alice", "bob", "dave"}
    writes = len(keycloak.writes)
    assert not resync.resync_once().changed
    assert len(keycloak.writes) == writes


def test_a_group_renamed_in_keycloak_is_renamed_back_not_recreated(
        sync: KeycloakSync, keycloak: FakeKeycloak, realm: FakeRealm) -> None:
    first = sync.sync(groups_from_team("shop", team_doc("shop")), admins=())
    assert first.created_groups == ["team-shop", "team-shop-admins"]
    shop_id = realm.group_id("team-shop")
    assert shop_id is not None
    realm.groups[shop_id]["name"] = "Shop Team"  # an admin renames it in the console
    again = sync.sync(groups_from_team("shop", team_doc("shop")), admins=())
    assert again.renamed == [("Shop Team", "team-shop")] and again.created_groups == []
    assert realm.group_id("team-shop") == shop_id
    assert realm.members("team-shop") == {"alice", "bob"}
    assert not sync.sync(groups_from_team("shop", team_doc("shop")), admins=()).changed


def test_existing_team_groups_get_the_mark_once(sync: KeycloakSync, keycloak: FakeKeycloak,
                                                realm: FakeRealm) -> None:
    realm.add_group("team-shop", ("alice",))
    realm.groups[realm.group_id("team-shop") or ""]["attributes"] = {"cost": ["cc-1"]}
    report = sync.sync(groups_from_team("shop", team_doc("shop")), admins=())
    assert report.marked == ["team-shop"]
    assert realm.group("team-shop") == {**realm.group("team-shop"),  # type: ignore[dict-item]
                                        "attributes": {"cost": ["cc-1"],
                                                       "caas-portal-group": ["team-shop"]}}
    writes = len(keycloak.writes)
    assert not sync.sync(groups_from_team("shop", team_doc("shop")), admins=()).changed
    assert len(keycloak.writes) == writes


@pytest.mark.parametrize("victim", ["platform-admins", "team-x"])
def test_a_copied_mark_never_renames_the_admin_group_or_another_team(
        sync: KeycloakSync, realm: FakeRealm, victim: str) -> None:
    realm.groups[realm.group_id(victim) or ""]["attributes"] = {
        "caas-portal-group": ["team-shop"]}
    report = sync.sync(groups_from_team("shop", team_doc("shop")), admins=())
    assert report.renamed == [] and report.created_groups == ["team-shop", "team-shop-admins"]
    assert realm.group(victim) is not None


def test_email_as_username_realm_members_by_portal_name(
        sync: KeycloakSync, keycloak: FakeKeycloak, realm: FakeRealm) -> None:
    for email in ("dave@example.org", "erin@example.org"):
        realm.add_user(email)
    realm.add_group("team-shop", ("erin@example.org",))
    doc = {"kind": "Team", "metadata": {"name": "shop"},
           "spec": {"owners": ["erin_at_example.org"], "members": ["dave_at_example.org"]}}
    report = sync.sync(groups_from_team("shop", doc), admins=())
    assert report.added == [("team-shop", "dave_at_example.org"),
                            ("team-shop-admins", "erin_at_example.org")]
    assert report.removed == [] and report.missing_users == []
    assert realm.members("team-shop") == {"dave@example.org", "erin@example.org"}
    assert not sync.sync(groups_from_team("shop", doc), admins=()).changed
