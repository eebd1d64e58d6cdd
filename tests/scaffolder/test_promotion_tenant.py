"""Promotion of a tenant's overlay (issue 16): what differs per environment in a tenant is its
CPU and memory quota (``envs/<env>/quota.yaml`` from ``environment_quotas``); a promotion
carries the source's to the target through the same gates, changing the target's quota and the
stored answers only (real git, both databases, the API and the CLI)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import kmock
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from devtools.kubernetes import write_kubeconfig
from gitops import git, gittree, yaml
from portal.app import create_app
from portal.settings import Settings
from tests.conftest import UserFactory, bearer, make_settings, make_user_for
from tests.scaffolder.test_promotion import (
    APP,
    TENANT,
    _application,
    _checks,
    _merged,
    _people,
    _seed,
)

Headers = Callable[[str], dict[str, str]]
UNIT = "tenants/payments/payments-web"
QUOTA = UNIT + "/envs/{}/quota.yaml"


def _promote(client: TestClient, who: dict[str, str], source: str, target: str,
             namespace: str = "payments-web") -> Any:
    return client.post(f"/api/namespaces/payments/{namespace}/promotions", headers=who,
                       json={"from": source, "to": target})


def _hard(gitops: Path, ref: str, env: str) -> dict[str, Any]:
    doc = yaml.load(gittree.read_blob(gitops, ref, QUOTA.format(env)) or b"")
    return dict(doc["spec"]["hard"])


def test_a_tenant_promotion_carries_the_quota_to_the_target_only(
        settings: Settings, engine: Engine, tmp_path: Path, make_user: UserFactory,
        auth_headers: Headers) -> None:
    gitops = _seed(settings, tmp_path)
    _people(make_user)
    alice, bob, root = auth_headers("alice"), auth_headers("bob"), auth_headers("root")
    with TestClient(create_app(settings, engine=engine)) as client:
        tenant = {**TENANT, "environment_quotas": {"dev": {"cpu": "3", "memory": "6Gi"}}}
        _merged(client, client.post("/api/scaffolder/tasks", headers=alice, json={
            "template": "tenant", "answers": tenant}), root)
        _merged(client, client.post("/api/scaffolder/tasks", headers=alice, json={
            "template": "application", "answers": APP}), root)
        _merged(client, client.post("/api/scaffolder/tasks", headers=alice, json={
            "template": "tenant", "answers": {**TENANT, "name": "api", "cpu_quota": "1",
                                              "memory_quota": "2Gi",
                                              "environments": ["dev"]}}), root)
        base = gittree.resolve(gitops, "main")
        assert _hard(gitops, "main", "staging")["requests.cpu"] != "3"

        # Refusals: nothing written (no branch, no change).
        refs = git.out(gitops, "for-each-ref", "--format=%(refname)")
        assert _promote(client, auth_headers("eve"), "dev", "staging").status_code == 403
        for body, field, status in (({"from": "dev", "to": "dev"}, "to", 422),
                                    ({"from": "dev", "to": "qa"}, "to", 422)):
            bad = client.post("/api/namespaces/payments/payments-web/promotions",
                              headers=alice, json=body)
            assert bad.status_code == status and bad.json()["error"]["field"] == field, bad.text
        absent = _promote(client, alice, "dev", "staging", namespace="payments-api")
        assert absent.status_code == 409, absent.text
        assert absent.json()["error"]["rule"] == "tenant-in-environment"
        assert _promote(client, alice, "dev", "staging", namespace="nope").status_code == 404
        assert git.out(gitops, "for-each-ref", "--format=%(refname)") == refs

        task = _promote(client, alice, "dev", "staging").json()
        assert task["status"] == "succeeded", task
        change = client.get(f"/api/changes/{task['change_id']}", headers=alice).json()
        head = change["head_sha"]
        # Exactly the target's quota and the stored answers that render it.
        assert gittree.changed_paths(gitops, base, head) == [
            f"{UNIT}/.caas-answers.yaml", QUOTA.format("staging")]
        assert _hard(gitops, head, "staging")["requests.cpu"] == "3"
        assert _hard(gitops, head, "staging")["limits.memory"] == "6Gi"
        assert _hard(gitops, head, "prod") == _hard(gitops, "main", "prod")
        stored = yaml.load(gittree.read_blob(gitops, head, f"{UNIT}/.caas-answers.yaml") or b"")
        assert stored["answers"]["environment_quotas"] == {
            "dev": {"cpu": "3", "memory": "6Gi"}, "staging": {"cpu": "3", "memory": "6Gi"}}
        assert change["action"] == "promote" and change["tier"] == "staging"
        checks = _checks(change)
        health = checks["source-health"]
        assert health["state"] == "pending" and health["summary"].startswith("unknown:")
        # The namespace's Applications in dev: the tenant's own and the application in it.
        assert "tenant.payments-web.dev, app.payments.shop.dev" in health["summary"]
        assert checks["approval"]["state"] == "pending"
        assert checks["target-policies"]["state"] == "success"
        assert "no container image" in checks["target-policies"]["summary"]
        assert checks["source-statuses"]["state"] == "success"

        assert client.post(f"/api/changes/{change['id']}/approve", headers=bob).status_code == 200
        assert client.post(f"/api/promotions/{change['id']}/override", headers=root, json={
            "gate": "source-health", "reason": "no cluster in this test"}).status_code == 200
        merged = client.post(f"/api/changes/{change['id']}/merge", headers=bob)
        assert merged.status_code == 200, merged.text
        assert _hard(gitops, "main", "staging")["requests.cpu"] == "3"
        again = _promote(client, alice, "dev", "staging")
        assert again.status_code == 409 and again.json()["error"]["rule"] == "no-change"


def test_cli_promotes_a_tenant(settings: Settings, engine: Engine, tmp_path: Path,
                               make_user: UserFactory, auth_headers: Headers) -> None:
    from tests.scaffolder.test_cli import caas

    gitops = _seed(settings, tmp_path)
    _people(make_user)
    with TestClient(create_app(settings, engine=engine)) as client:
        _merged(client, client.post("/api/scaffolder/tasks", headers=auth_headers("alice"),
                                    json={"template": "tenant", "answers": {
                                        **TENANT, "environment_quotas": {
                                            "dev": {"cpu": "3", "memory": "6Gi"}}}}),
                auth_headers("root"))
    done = caas(settings, "promote", "payments/payments-web", "--tenant", "--from", "dev",
                "--to", "prod", "--user", "alice")
    assert done.returncode == 0, done.stderr
    assert "change #" in done.stdout
    branch = gittree.resolve(gitops, "caas/promote-payments-payments-web-dev-to-prod")
    assert branch is not None
    assert _hard(gitops, branch, "prod")["requests.cpu"] == "3"


def test_a_tenant_promotion_into_an_uninstalled_environment_is_refused(
        settings: Settings, engine: Engine, tmp_path: Path, make_user: UserFactory,
        auth_headers: Headers) -> None:
    """As for an application: ``installed: false`` leaves no cluster to carry a quota to."""
    from gitops.forges.base import FileChange

    gitops = _seed(settings, tmp_path)
    _people(make_user)
    alice, root = auth_headers("alice"), auth_headers("root")
    with TestClient(create_app(settings, engine=engine)) as client:
        tenant = {**TENANT, "environment_quotas": {"dev": {"cpu": "3", "memory": "6Gi"}}}
        _merged(client, client.post("/api/scaffolder/tasks", headers=alice, json={
            "template": "tenant", "answers": tenant}), root)
        head = gittree.resolve(gitops, "main")
        infra = (gittree.read_blob(gitops, head, "envs/staging/infra.yaml") or b"").replace(
            b"installed: true", b"installed: false")
        moved = gittree.commit_files(gitops, parent=head, message="uninstall staging",
                                     files=[FileChange("envs/staging/infra.yaml", infra)],
                                     author="root")
        assert gittree.update_ref(gitops, "main", moved, head)
        refs = git.out(gitops, "for-each-ref", "--format=%(refname)")
        refused = _promote(client, alice, "dev", "staging")
        assert refused.status_code == 422, refused.text
        assert (refused.json()["error"]["field"], refused.json()["error"]["rule"]) == (
            "to", "environment-installed")
    assert git.out(gitops, "for-each-ref", "--format=%(refname)") == refs


async def test_source_health_judges_the_namespaces_applications(
        kmock: kmock.KubernetesEmulator, tmp_path: Path, database_url: str) -> None:
    """kmock serves the Applications: the tenant's own is Healthy, but the application
    deployed into the namespace is Degraded — the gate fails naming it; once it is Healthy
    too, the gate passes."""
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", str(kmock.url))
    settings = make_settings(tmp_path, database_url, kubeconfig=kubeconfig,
                             promotion_soak_minutes="dev=0,staging=0,prod=0")
    apps = "argoproj.io/v1alpha1/applications"
    long_ago = datetime.now(UTC) - timedelta(hours=2)
    kmock.objects[apps, "argocd", "tenant.payments-web.dev"] = _application(
        "tenant.payments-web.dev", sync="Synced", health="Healthy", since=long_ago)
    kmock.objects[apps, "argocd", "app.payments.shop.dev"] = _application(
        "app.payments.shop.dev", sync="Synced", health="Degraded", since=long_ago)

    def scenario() -> None:
        from portal import db

        engine = db.make_engine(settings)
        _seed(settings, tmp_path)
        _people(make_user_for(engine))
        with TestClient(create_app(settings, engine=engine)) as client:
            headers = lambda user: bearer(engine, user)  # noqa: E731
            alice, root = headers("alice"), headers("root")
            _merged(client, client.post("/api/scaffolder/tasks", headers=alice, json={
                "template": "tenant", "answers": {**TENANT, "environment_quotas": {
                    "dev": {"cpu": "3", "memory": "6Gi"}}}}), root)
            _merged(client, client.post("/api/scaffolder/tasks", headers=alice, json={
                "template": "application", "answers": APP}), root)
            task = _promote(client, alice, "dev", "staging").json()
            cid = task["change_id"]
            health = _checks(client.get(f"/api/changes/{cid}", headers=alice).json())[
                "source-health"]
            assert health["state"] == "failure", health
            assert "app.payments.shop.dev is Synced and Degraded" in health["summary"]
            kmock.objects[apps, "argocd", "app.payments.shop.dev"] = _application(
                "app.payments.shop.dev", sync="Synced", health="Healthy", since=long_ago)
            fresh = client.post(f"/api/promotions/{cid}/gates", headers=alice).json()
            health = _checks(fresh)["source-health"]
            assert health["state"] == "success", health
            assert "tenant.payments-web.dev Synced and Healthy" in health["summary"]
            assert "app.payments.shop.dev Synced and Healthy" in health["summary"]
        engine.dispose()

    await asyncio.to_thread(scenario)
