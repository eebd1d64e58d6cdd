"""Decommission after the merge (issue 15): the removal jobs delete the tenant's ArgoCD
Application, wait for ArgoCD's finalizer, then delete the Namespace and wait for its
termination — against kmock, on both databases, the order asserted from the requests."""

from __future__ import annotations

import asyncio
from pathlib import Path

import kmock
import pytest
from sqlmodel import Session, col, select

from catalog import service as catalog_service
from catalog.models import Entity, TimelineEvent
from devtools.keycloak import FakeKeycloak
from devtools.kubernetes import ApplyingEmulator, write_kubeconfig
from devtools.server import serve
from gitops.forges.base import MergeEvent
from gitops.forges.local import LocalForge
from gitops.git import seed_repository
from portal import db
from portal.auth.models import AuditEvent
from reconciler import service
from reconciler.planner import plan_merge
from reconciler.removal import removal_jobs
from reconciler.worker import Worker
from tests.conftest import REPO_ROOT, make_settings
from tests.reconciler.conftest import drain, jobs_of, push

APPS = "argoproj.io/v1alpha1/applications"
UNIT = "tenants/platform/platform-tools"
APP = "tenant.platform-tools.dev"
FINALIZER = "resources-finalizer.argocd.argoproj.io"
ENTITY = "namespace:platform/platform-tools"


def test_only_units_whose_answers_went_are_removed() -> None:
    paths = [f"{UNIT}/.caas-answers.yaml", f"{UNIT}/envs/dev/quota.yaml",
             f"{UNIT}/envs/prod/quota.yaml", "applications/pay/shop/.caas-answers.yaml",
             "tenants/pay/pay-web/.caas-answers.yaml"]
    jobs = removal_jobs(paths, gone=lambda p: not p.startswith("tenants/pay/"))
    assert [(j.unit, j.depends_on, j.payload["names"]) for j in jobs] == [
        ("remove:app.pay.shop", None, ["app.pay.shop"]),
        ("remove:tenant.platform-tools", None,
         ["tenant.platform-tools.dev", "tenant.platform-tools.prod"]),
        ("remove:namespace/platform-tools", "remove:tenant.platform-tools", ["platform-tools"])]
    planned = plan_merge(paths, terraform=lambda env: [], gone=lambda p: True, full=True)
    assert not [j for j in planned if j.kind == "remove"]  # a first commit removes nothing


def _run_until_waiting(worker: Worker, commit: str) -> None:
    for _ in range(200):
        worker.run_one()
        job = jobs_of(worker.engine, commit).get("remove:tenant.platform-tools")
        if job is not None and job.result.get("waiting_since") and job.state == "queued":
            return
    raise AssertionError("the removal never waited for the finalizer")


@pytest.mark.kmock(cls=ApplyingEmulator)
async def test_application_goes_before_the_namespace(
        kmock: kmock.KubernetesEmulator, tmp_path: Path, database_url: str) -> None:
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", str(kmock.url), context="platform")
    settings = make_settings(tmp_path, database_url, kubeconfig=kubeconfig,
                             kube_context="platform", worker_backoff_s=0.01,
                             worker_wait_poll_s=0.01, worker_max_attempts=2)
    engine = db.make_engine(settings)
    seed_repository(settings.resolved_gitops_repo, REPO_ROOT / "gitops-skeleton")
    forge = LocalForge(settings, engine)
    with Session(engine) as session:
        catalog_service.reindex(session, forge=forge)
    kmock.objects[APPS, "argocd", APP] = {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {"name": APP, "namespace": "argocd", "finalizers": [FINALIZER]}}
    kmock["delete /api/v1/namespaces/platform-tools"] << {
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "platform-tools"},
        "status": {"phase": "Terminating"}}
    kmock["get /api/v1/namespaces/platform-tools"] << 404 << {
        "apiVersion": "v1", "kind": "Status", "status": "Failure", "code": 404,
        "reason": "NotFound", "message": 'namespaces "platform-tools" not found'}
    deleted = dict.fromkeys(forge.list_files(UNIT + "/"))
    before, commit = push(forge, deleted, message="decommission platform-tools")
    with Session(engine) as session:
        service.record_merge_event(session, event=MergeEvent(commit=commit, before=before))
    worker = Worker(settings, engine, forge)

    await asyncio.to_thread(_run_until_waiting, worker, commit)
    # A long finalizer wait spends no attempt (max_attempts is 2 here): look many times.
    for _ in range(6):
        await asyncio.to_thread(_run_until_waiting, worker, commit)
    waiting = jobs_of(engine, commit)["remove:tenant.platform-tools"]
    assert (waiting.state, waiting.attempts) == ("queued", 0), waiting.message
    assert waiting.message.startswith("waiting: Application tenant.platform-tools.dev still")
    # ArgoCD holds the Application until its resources are gone; no Namespace delete yet.
    assert kmock.objects[APPS, "argocd", APP]["metadata"].get("deletionTimestamp")
    assert not [r for r in kmock if str(r.method).upper().endswith("DELETE")
                and r.url.path == "/api/v1/namespaces/platform-tools"]
    kmock.objects[APPS, "argocd", APP].patch({"metadata": {"finalizers": []}})  # ArgoCD done
    await asyncio.to_thread(drain, worker)

    jobs = jobs_of(engine, commit)
    assert jobs["remove:tenant.platform-tools"].state == "succeeded"
    assert jobs["remove:namespace/platform-tools"].state == "succeeded", \
        jobs["remove:namespace/platform-tools"].message
    gone_at = max(i for i, r in enumerate(kmock) if str(r.method).upper().endswith("GET")
                  and r.url.path.endswith(f"/applications/{APP}"))
    ns_delete = [i for i, r in enumerate(kmock) if str(r.method).upper().endswith("DELETE")
                 and r.url.path == "/api/v1/namespaces/platform-tools"]
    assert ns_delete and ns_delete[0] > gone_at  # Application gone, then the Namespace
    assert (APPS, "argocd", APP) not in kmock.objects or kmock.objects[
        APPS, "argocd", APP].deleted
    with Session(engine) as session:
        steps = session.exec(select(AuditEvent.action, AuditEvent.target).where(
            AuditEvent.actor == "reconciler",
            AuditEvent.action.startswith("reconciler.remove.")).order_by(AuditEvent.id)).all()
    assert [tuple(s) for s in steps] == [("reconciler.remove.applications", APP),
                                         ("reconciler.remove.namespace", "platform-tools")]
    with Session(engine) as session:
        entity = session.exec(select(Entity).where(Entity.key == ENTITY)).one()
        events = session.exec(select(TimelineEvent.event).where(
            TimelineEvent.entity == ENTITY).order_by(col(TimelineEvent.id))).all()
    # The catalog keeps it, decommissioned, with each removal step on its timeline; waiting
    # appears once, not at every look.
    assert entity.status == "decommissioned" and entity.decommissioned_at is not None
    assert events.count("job.waiting") == 1
    assert [e for e in events if e.startswith(("removed.", "catalog."))] == [
        "catalog.removed", "removed.application", "removed.namespace"]
    engine.dispose()


@pytest.mark.kmock(cls=ApplyingEmulator)
async def test_a_wait_past_its_deadline_fails_naming_what_is_left(
        kmock: kmock.KubernetesEmulator, tmp_path: Path, database_url: str) -> None:
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", str(kmock.url), context="platform")
    settings = make_settings(tmp_path, database_url, kubeconfig=kubeconfig,
                             kube_context="platform", worker_wait_poll_s=0.01,
                             worker_wait_deadline_s=0.3)
    engine = db.make_engine(settings)
    seed_repository(settings.resolved_gitops_repo, REPO_ROOT / "gitops-skeleton")
    forge = LocalForge(settings, engine)
    kmock.objects[APPS, "argocd", APP] = {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {"name": APP, "namespace": "argocd", "finalizers": [FINALIZER]}}
    before, commit = push(forge, dict.fromkeys(forge.list_files(UNIT + "/")),
                          message="decommission platform-tools")
    with Session(engine) as session:
        service.record_merge_event(session, event=MergeEvent(commit=commit, before=before))
    await asyncio.to_thread(drain, Worker(settings, engine, forge), 400)
    jobs = jobs_of(engine, commit)
    stuck = jobs["remove:tenant.platform-tools"]
    assert stuck.state == "failed" and stuck.attempts == 1
    assert "Application tenant.platform-tools.dev still exists" in stuck.message
    assert "gave up after waiting" in stuck.message
    assert jobs["remove:namespace/platform-tools"].state == "failed"  # never deleted
    assert not [r for r in kmock if str(r.method).upper().endswith("DELETE")
                and r.url.path == "/api/v1/namespaces/platform-tools"]
    engine.dispose()


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


def test_a_decommissioned_team_loses_the_keycloak_groups_the_portal_made(
        tmp_path: Path, database_url: str) -> None:
    keycloak = FakeKeycloak(client_id="portal-admin", client_secret="s3cr3t")
    realm = keycloak.add_realm("caas")
    for user in ("alice", "bob", "platform-admin"):
        realm.add_user(user)
    with serve(keycloak.app) as url:
        settings = make_settings(tmp_path, database_url, keycloak_url=url,
                                 keycloak_realm="caas", keycloak_admin_client_id="portal-admin",
                                 keycloak_admin_client_secret="s3cr3t", worker_backoff_s=0.01)
        engine = db.make_engine(settings)
        seed_repository(settings.resolved_gitops_repo, REPO_ROOT / "gitops-skeleton")
        forge = LocalForge(settings, engine)
        files = {"teams/shop/team.yaml": TEAM,
                 "teams/shop/.caas-answers.yaml": "template: team\nanswers: {team: shop}\n"}
        before, commit = push(forge, files)
        with Session(engine) as session:
            service.record_merge_event(session, event=MergeEvent(commit=commit, before=before))
        worker = Worker(settings, engine, forge)
        drain(worker)
        assert realm.members("team-shop") == {"alice", "bob"}
        realm.add_group("team-shop-viewers")  # someone's own group: not the portal's

        before, commit = push(forge, dict.fromkeys(files), message="decommission shop")
        with Session(engine) as session:
            service.record_merge_event(session, event=MergeEvent(commit=commit, before=before))
        drain(worker)
    job = jobs_of(engine, commit)["remove:team/shop"]
    assert job.payload["names"] == ["team-shop", "team-shop-admins", "team-shop-viewers"]
    assert realm.group("team-shop") is None and realm.group("team-shop-admins") is None
    # The unmarked group is left in place and the job says why (permanent: no retry loop).
    assert realm.group("team-shop-viewers") is not None
    assert job.state == "failed" and "not created by the portal" in job.message
    engine.dispose()
