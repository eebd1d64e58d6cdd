"""The ArgoCD and Keycloak jobs end to end: a merge on the real skeleton, the worker, and the
adapters talking to a fake Kubernetes API (kmock) and a fake Keycloak over HTTP."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kmock
import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from catalog import service as catalog_service
from catalog.models import Entity
from devtools.keycloak import FakeKeycloak, FakeRealm
from devtools.kubernetes import ApplyingEmulator, write_kubeconfig
from devtools.server import serve
from gitops.forges.base import MergeEvent
from gitops.forges.local import LocalForge
from gitops.git import seed_repository
from portal import db
from portal.settings import Settings
from reconciler import service
from reconciler.argocd import REFRESH_ANNOTATION
from reconciler.worker import Worker
from tests.conftest import REPO_ROOT, make_settings
from tests.harness.databases import SqliteFactory
from tests.reconciler.conftest import drain, jobs_of, push, tenant_files

APPS = "argoproj.io/v1alpha1/applications"
TEAM = """apiVersion: caas.io/v1
kind: Team
metadata:
  name: shop
spec:
  keycloakGroup: team-shop
  groups: {admin: team-shop-admins, edit: team-shop, view: team-shop-viewers}
  owners: [alice]
  members: [bob]
"""


@dataclass
class KeycloakPlatform:
    """A fake Keycloak (realm ``caas``) served over HTTP, and a platform whose worker syncs it."""

    keycloak: FakeKeycloak
    realm: FakeRealm
    settings: Settings
    engine: Engine
    forge: LocalForge
    worker: Worker

    def merged(self, before: str, commit: str) -> None:
        """Record the merge ``before..commit`` and drain the worker."""
        with Session(self.engine) as session:
            service.record_merge_event(session, event=MergeEvent(commit=commit, before=before))
        drain(self.worker)


@contextmanager
def keycloak_platform(tmp_path: Path, sqlite_factory: SqliteFactory, users: tuple[str, ...],
                      **settings: Any) -> Iterator[KeycloakPlatform]:
    keycloak = FakeKeycloak(client_id="portal-admin", client_secret="s3cr3t")
    realm = keycloak.add_realm("caas")
    for user in users:
        realm.add_user(user)
    with serve(keycloak.app) as url:
        configured = make_settings(tmp_path, sqlite_factory.new(tmp_path / "db"),
                                   keycloak_url=url, keycloak_realm="caas",
                                   keycloak_admin_client_id="portal-admin",
                                   keycloak_admin_client_secret="s3cr3t", **settings)
        engine = db.make_engine(configured)
        seed_repository(configured.resolved_gitops_repo, REPO_ROOT / "gitops-skeleton")
        forge = LocalForge(configured, engine)
        try:
            yield KeycloakPlatform(keycloak, realm, configured, engine, forge,
                                   Worker(configured, engine, forge))
        finally:
            engine.dispose()


@pytest.mark.kmock(cls=ApplyingEmulator)
async def test_argocd_job_applies_refreshes_and_reads_status_back(
        kmock: kmock.KubernetesEmulator, tmp_path: Path, sqlite_factory: SqliteFactory) -> None:
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", str(kmock.url), context="platform")
    settings = make_settings(tmp_path, sqlite_factory.new(tmp_path / "db"),
                             kubeconfig=kubeconfig, kube_context="platform")
    engine = db.make_engine(settings)
    seed_repository(settings.resolved_gitops_repo, REPO_ROOT / "gitops-skeleton")
    forge = LocalForge(settings, engine)
    with Session(engine) as session:
        catalog_service.reindex(session, forge=forge)
    # the Application the tenants ApplicationSet generates for tenants/platform/web/envs/dev
    kmock.objects[APPS, "argocd", "tenant.web.dev"] = {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {"name": "tenant.web.dev", "namespace": "argocd"},
        "status": {"sync": {"status": "OutOfSync"}, "health": {"status": "Progressing"}}}
    root = (REPO_ROOT / "gitops-skeleton" / "bootstrap" / "root.yaml").read_text()
    before, commit = push(forge, {**tenant_files("platform", "web"),
                                  "bootstrap/root.yaml": root + "# touched\n"})
    with Session(engine) as session:
        service.record_merge_event(session, event=MergeEvent(commit=commit, before=before))
    await asyncio.to_thread(drain, Worker(settings, engine, forge))

    job = jobs_of(engine, commit)["argocd"]
    assert job.state == "succeeded", job.message
    assert sorted(job.result["applied"]) == [
        "AppProject/caas.platform", "Application/appsets", "Application/clusters",
        "Application/platform", "Application/teams"]
    assert job.result["applications"]["tenant.web.dev"] == {"sync": "OutOfSync",
                                                     "health": "Progressing"}
    stored = kmock.objects[APPS, "argocd", "tenant.web.dev"]
    assert stored["metadata"]["annotations"][REFRESH_ANNOTATION] == "normal"
    assert kmock.objects["argoproj.io/v1alpha1/appprojects", "argocd", "caas.platform"]
    with Session(engine) as session:
        web = session.exec(select(Entity).where(Entity.key == "namespace:platform/web")).one()
    assert (web.status, web.sync, web.health) == ("applied", "out-of-sync", "progressing")
    engine.dispose()


def test_keycloak_job_syncs_the_changed_team(tmp_path: Path,
                                             sqlite_factory: SqliteFactory) -> None:
    with keycloak_platform(tmp_path, sqlite_factory, ("alice", "bob", "platform-admin")) as p:
        before, commit = push(p.forge, {"teams/shop/team.yaml": TEAM})
        p.merged(before, commit)
        job = jobs_of(p.engine, commit)["keycloak"]
        assert job.state == "succeeded", job.message
        assert job.payload == {"teams": ["shop"]}
        assert p.realm.members("team-shop") == {"alice", "bob"}
        assert p.realm.members("team-shop-admins") == {"alice"}
        assert "platform-admin" in p.realm.members("platform-admins")
        assert sorted(job.result["created_groups"]) == ["platform-admins", "team-shop",
                                                       "team-shop-admins"]


def test_a_late_merge_event_does_not_restore_members_a_later_merge_removed(
        tmp_path: Path, sqlite_factory: SqliteFactory) -> None:
    """The Keycloak job syncs the team as it is at main's head: the poller learning of an old
    merge after a later one must not put back a member the later merge removed."""
    users = ("alice", "bob", "carol", "platform-admin")
    with keycloak_platform(tmp_path, sqlite_factory, users) as p:
        p.merged(*push(p.forge, {"teams/shop/team.yaml": TEAM}))
        late = push(p.forge, {"teams/shop/team.yaml": TEAM.replace("[bob]", "[bob, carol]")})
        p.merged(*push(p.forge, {"teams/shop/team.yaml": TEAM.replace("[bob]", "[]")}))
        assert p.realm.members("team-shop") == {"alice"}
        p.merged(*late)
        assert jobs_of(p.engine, late[1])["keycloak"].state == "succeeded"
        assert p.realm.members("team-shop") == {"alice"}


def test_a_worker_keeps_its_keycloak_client_and_renews_a_revoked_or_expired_token(
        tmp_path: Path, sqlite_factory: SqliteFactory) -> None:
    """One Keycloak client per worker (``reconciler.clients``): its token serves the next
    job; a token revoked or expired between jobs is replaced and the job completes; a job that
    failed leaves no client behind (the retry starts afresh)."""
    users = ("alice", "bob", "carol", "platform-admin")
    with keycloak_platform(tmp_path, sqlite_factory, users, worker_backoff_s=0.01) as p:
        keycloak, realm, worker = p.keycloak, p.realm, p.worker

        def merged(members: str) -> str:
            before, commit = push(p.forge, {"teams/shop/team.yaml": TEAM.replace(
                "[bob]", members)})
            p.merged(before, commit)
            job = jobs_of(p.engine, commit)["keycloak"]
            assert job.state == "succeeded", job.message
            return commit

        merged("[bob]")
        assert keycloak.token_requests == 1 and "keycloak" in worker.clients
        merged("[bob, carol]")
        assert keycloak.token_requests == 1  # the kept token served the second job
        assert realm.members("team-shop") == {"alice", "bob", "carol"}

        keycloak.tokens.clear()  # revoked between jobs: a 401, a new token, the call again
        keycloak.token_lifetime_s = 4  # the new token's: a job lasting 3.6 s would renew it
        merged("[carol]")
        assert keycloak.token_requests == 2
        assert realm.members("team-shop") == {"alice", "carol"}

        time.sleep(4.1)  # the token has expired (python-keycloak renews it at 90 % of 4 s)
        keycloak.token_lifetime_s = 300  # the renewed one outlives the rest of the test
        merged("[bob]")
        assert keycloak.token_requests == 3
        assert realm.members("team-shop") == {"alice", "bob"}

        keycloak.fail_next = [503]  # the job fails once (temporary): its client is dropped
        commit = merged("[]")
        assert jobs_of(p.engine, commit)["keycloak"].attempts == 2
        assert keycloak.token_requests == 4  # the retry built a new client, with a new token
        assert realm.members("team-shop") == {"alice"}
