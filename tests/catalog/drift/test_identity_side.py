"""The Keycloak side against a fake Keycloak at the HTTP layer (python-keycloak's real client):
a member removed in Keycloak is one finding on the team, fixed by a Keycloak sync."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from catalog.drift import service
from catalog.drift.models import DriftReport
from devtools.keycloak import FakeKeycloak, FakeRealm
from devtools.server import serve
from gitops.forges.factory import make_forge
from portal.auth.principal import SYSTEM
from portal.settings import Settings
from reconciler.identity_resync import KeycloakResync
from scaffolder.registry import Registry
from tests.catalog.drift.conftest import Main

CLIENT, SECRET = "caas-portal-admin", "s3cr3t"
TEAM = "teams/platform/team.yaml"


@pytest.fixture
def keycloak() -> Iterator[tuple[FakeKeycloak, str]]:
    fake = FakeKeycloak(client_id=CLIENT, client_secret=SECRET)
    with serve(fake.app) as url:
        yield fake, url


@pytest.fixture
def realm(keycloak: tuple[FakeKeycloak, str]) -> FakeRealm:
    realm = keycloak[0].add_realm("caas")
    for name in ("platform-admin", "alice", "bob"):
        realm.add_user(name)
    return realm


@pytest.fixture
def kc_settings(settings: Settings, keycloak: tuple[FakeKeycloak, str],
                realm: FakeRealm) -> Settings:
    return settings.model_copy(update={
        "keycloak_url": keycloak[1], "keycloak_realm": realm.name,
        "keycloak_admin_client_id": CLIENT,
        "keycloak_admin_client_secret": Settings(
            keycloak_admin_client_secret=SECRET).keycloak_admin_client_secret})


def _run(engine: Engine, settings: Settings) -> DriftReport:
    with Session(engine) as session:
        return service.run(session, settings=settings, forge=make_forge(settings, engine),
                           registry=Registry(settings), sides=["keycloak"])


def test_member_removed_in_keycloak_is_one_finding_fixed_by_a_sync(
        engine: Engine, kc_settings: Settings, main: Main, realm: FakeRealm,
        keycloak: tuple[FakeKeycloak, str]) -> None:
    main.write(TEAM, main.read(TEAM).replace("members: []", "members: [alice, bob]"))
    main.commit("platform: alice and bob")
    forge = make_forge(kc_settings, engine)
    KeycloakResync(kc_settings, forge).resync_once()  # Keycloak as the team files say
    assert realm.members("team-platform") == {"platform-admin", "alice", "bob"}
    clean = _run(engine, kc_settings)
    assert clean.findings == [] and [s.status for s in clean.sides] == ["checked"]

    group = realm.group("team-platform")
    assert group is not None
    group["members"].discard(realm.user_id("bob"))  # someone removed bob in Keycloak
    writes = len(keycloak[0].writes)
    report = _run(engine, kc_settings)
    assert len(keycloak[0].writes) == writes  # drift only reads
    [finding] = report.findings
    assert (finding.side, finding.entity, finding.subject, finding.fix, finding.fix_target) == (
        "keycloak", "team:platform", "team-platform: bob", "keycloak-sync", "platform")
    assert "bob is listed in teams/platform/team.yaml" in finding.what
    assert report.counts == {"team/keycloak": 1}

    with Session(engine) as session:
        result = service.fix(session, settings=kc_settings, forge=forge,
                             registry=Registry(kc_settings), principal=SYSTEM,
                             finding_id=finding.id)
        assert "1 memberships added" in result.message
        assert service.report(session, side="keycloak").findings == []
    assert "bob" in realm.members("team-platform")


def test_without_keycloak_the_side_is_not_configured(engine: Engine, settings: Settings,
                                                      main: Main) -> None:
    report = _run(engine, settings)
    assert [(s.side, s.status) for s in report.sides] == [("keycloak", "not configured")]
