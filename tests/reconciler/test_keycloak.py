"""Keycloak admin sync through python-keycloak's real client against a fake Keycloak."""

from __future__ import annotations

import itertools
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools.keycloak import FakeKeycloak, FakeRealm
from devtools.server import serve
from portal.settings import Settings
from reconciler.adapters import NotConfigured
from reconciler.errors import PermanentError, TemporaryError
from reconciler.keycloak import (
    GroupSpec,
    KeycloakPermanentError,
    KeycloakSync,
    KeycloakTemporaryError,
    SyncError,
    SyncReport,
    groups_from_team,
)

CLIENT, SECRET = "caas-portal-admin", "s3cr3t"
_realms = itertools.count(1)

TEAM_YAML: dict[str, Any] = {
    "apiVersion": "caas.io/v1", "kind": "Team", "metadata": {"name": "shop"},
    "spec": {"keycloakGroup": "team-shop",
             "groups": {"admin": "team-shop-admins", "edit": "team-shop",
                        "view": "team-shop-viewers"},
             "owners": ["alice"], "members": ["Bob", {"username": "carol"}]},
}


@pytest.fixture(scope="module")
def fake() -> Iterator[tuple[FakeKeycloak, str]]:
    keycloak = FakeKeycloak(client_id=CLIENT, client_secret=SECRET)
    with serve(keycloak.app) as url:
        yield keycloak, url


@pytest.fixture
def realm(fake: tuple[FakeKeycloak, str]) -> FakeRealm:
    keycloak, _ = fake
    keycloak.reset()
    realm = keycloak.add_realm(f"caas-{next(_realms)}")
    for name in ("alice", "bob", "carol", "mallory", "platform-admin", "breakglass"):
        realm.add_user(name)
    return realm


def _settings(tmp_path: Path, url: str, realm: FakeRealm, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": tmp_path, "keycloak_url": url, "keycloak_realm": realm.name,
        "keycloak_admin_client_id": CLIENT, "keycloak_admin_client_secret": SECRET,
        "oidc_admin_group": "platform-admins"}
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def sync(fake: tuple[FakeKeycloak, str], realm: FakeRealm, tmp_path: Path) -> KeycloakSync:
    return KeycloakSync.from_settings(_settings(tmp_path, fake[1], realm))


def test_groups_from_team_yaml() -> None:
    assert groups_from_team("shop", TEAM_YAML) == [
        GroupSpec("team-shop", ["alice", "bob", "carol"]),
        GroupSpec("team-shop-admins", ["alice"])]
    # Without group fields the names are derived all the same.
    assert groups_from_team("x", {"metadata": {"name": "x"}, "spec": {"owners": ["o"]}}) == [
        GroupSpec("team-x", ["o"]), GroupSpec("team-x-admins", ["o"])]
    assert groups_from_team("x", {"metadata": {"name": "x"}, "spec": "broken"}) == [
        GroupSpec("team-x", []), GroupSpec("team-x-admins", [])]


def test_first_sync_creates_groups_and_members(sync: KeycloakSync, realm: FakeRealm,
                                               fake: tuple[FakeKeycloak, str]) -> None:
    keycloak, _ = fake
    report = sync.sync(groups_from_team("shop", TEAM_YAML))
    assert report.created_groups == ["team-shop", "team-shop-admins", "platform-admins"]
    assert realm.members("team-shop") == {"alice", "bob", "carol"}
    assert realm.members("team-shop-admins") == {"alice"}
    assert realm.members("platform-admins") == {"platform-admin"}
    assert sorted(report.added) == [
        ("platform-admins", "platform-admin"), ("team-shop", "alice"), ("team-shop", "bob"),
        ("team-shop", "carol"), ("team-shop-admins", "alice")]
    assert report.removed == []
    assert report.missing_users == []
    # Memberships go through PUT /users/{id}/groups/{gid}; groups through POST /groups.
    methods = {(m, p.split("/")[0]) for m, p in keycloak.writes}
    assert methods == {("POST", "groups"), ("PUT", "users")}


def test_second_sync_changes_nothing(sync: KeycloakSync, realm: FakeRealm,
                                     fake: tuple[FakeKeycloak, str]) -> None:
    keycloak, _ = fake
    sync.sync(groups_from_team("shop", TEAM_YAML))
    writes = len(keycloak.writes)
    report = sync.sync(groups_from_team("shop", TEAM_YAML))
    assert report == SyncReport()
    assert not report.changed
    assert len(keycloak.writes) == writes


def test_extra_members_are_removed_but_extra_admins_stay(sync: KeycloakSync,
                                                        realm: FakeRealm) -> None:
    realm.add_group("team-shop", ("alice", "mallory"))
    realm.add_group("platform-admins", ("breakglass",))
    report = sync.sync([GroupSpec("team-shop", ["alice", "bob"])])
    assert report.created_groups == []
    assert report.removed == [("team-shop", "mallory")]
    assert report.added == [("team-shop", "bob"), ("platform-admins", "platform-admin")]
    assert realm.members("team-shop") == {"alice", "bob"}
    assert realm.members("platform-admins") == {"breakglass", "platform-admin"}


def test_unknown_users_are_reported_not_created(sync: KeycloakSync, realm: FakeRealm) -> None:
    users_before = len(realm.users)
    report = sync.sync([GroupSpec("team-new", ["alice", "ghost"])], admins=())
    assert report.missing_users == ["ghost"]
    assert realm.members("team-new") == {"alice"}
    assert len(realm.users) == users_before
    assert realm.group("platform-admins") is None  # admins=() leaves the admin group alone


def test_membership_paging(sync: KeycloakSync, realm: FakeRealm) -> None:
    # More members than python-keycloak's page size: every page must be read.
    names = [f"user{i:03}" for i in range(150)]
    for name in names:
        realm.add_user(name)
    realm.add_group("team-big", tuple(names))
    report = sync.sync([GroupSpec("team-big", names[:149])], admins=())
    assert report.removed == [("team-big", "user149")]
    assert report.added == []


def test_bad_input_is_refused_before_any_write(sync: KeycloakSync,
                                               fake: tuple[FakeKeycloak, str]) -> None:
    keycloak, _ = fake
    writes = len(keycloak.writes)
    with pytest.raises(KeycloakPermanentError) as caught:
        sync.sync([GroupSpec("a/b", ["alice"])])
    assert isinstance(caught.value, PermanentError)
    with pytest.raises(SyncError, match="claimed twice"):
        sync.sync([GroupSpec("team-x", ["alice"]), GroupSpec("team-x", ["bob"])])
    with pytest.raises(SyncError, match="not a group name"):
        sync.sync([GroupSpec("team-y", ["alice"]), GroupSpec("", [])])
    assert len(keycloak.writes) == writes


def test_server_errors_are_temporary(sync: KeycloakSync, fake: tuple[FakeKeycloak, str]
                                     ) -> None:
    keycloak, _ = fake
    keycloak.fail_next.append(503)
    with pytest.raises(KeycloakTemporaryError) as caught:
        sync.sync([GroupSpec("team-shop", ["alice"])])
    assert isinstance(caught.value, TemporaryError)
    assert caught.value.http_status == 503


def test_wrong_credentials_are_permanent(fake: tuple[FakeKeycloak, str], realm: FakeRealm,
                                         tmp_path: Path) -> None:
    sync = KeycloakSync.from_settings(_settings(tmp_path, fake[1], realm,
                                                keycloak_admin_client_secret="wrong"))
    with pytest.raises(KeycloakPermanentError) as caught:
        sync.sync([GroupSpec("team-shop", ["alice"])])
    assert isinstance(caught.value, PermanentError)
    assert caught.value.http_status == 401


def test_unreachable_keycloak_is_temporary(realm: FakeRealm, tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sync = KeycloakSync.from_settings(_settings(tmp_path, f"http://127.0.0.1:{port}", realm))
    with pytest.raises(KeycloakTemporaryError) as caught:
        sync.sync([GroupSpec("team-shop", ["alice"])])
    assert isinstance(caught.value, TemporaryError)


def test_not_configured(tmp_path: Path) -> None:
    with pytest.raises(NotConfigured) as no_url:
        KeycloakSync.from_settings(Settings(data_dir=tmp_path))
    assert no_url.value.reason.startswith("not configured")
    with pytest.raises(NotConfigured):
        KeycloakSync.from_settings(Settings(data_dir=tmp_path, keycloak_url="http://kc",
                                            keycloak_admin_client_id="x"))
