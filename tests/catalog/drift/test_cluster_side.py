"""The cluster side against kmock (the official client, real HTTP): a quota changed in the
cluster is one finding with an ArgoCD sync as the fix; the sync reaches the Application."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import kmock
import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from catalog.drift import service
from catalog.drift.models import DriftReport
from devtools.kubernetes import serve_namespace, write_kubeconfig
from gitops.forges.factory import make_forge
from portal.auth.principal import SYSTEM
from portal.settings import Settings
from scaffolder.registry import Registry
from tests.catalog.drift.conftest import Main, reindex

NS, APP = "platform-tools", "tenant.platform-tools.dev"
APPS = "argoproj.io/v1alpha1/applications"
BINDINGS = "rbac.authorization.k8s.io/v1/rolebindings"
GIT_QUOTA = {"requests.cpu": "2", "limits.cpu": "2", "requests.memory": "4Gi",
             "limits.memory": "4Gi", "requests.storage": "20Gi", "pods": "50"}


@pytest.fixture
def cluster_settings(settings: Settings, tmp_path: Path,
                     kmock: kmock.KubernetesEmulator) -> Settings:
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", str(kmock.url))
    return settings.model_copy(update={"kubeconfig": kubeconfig, "argocd_namespace": "argocd"})


def _binding(name: str, role: str, group: str) -> dict[str, Any]:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": name, "namespace": NS},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": role},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group",
                          "name": group}]}


def _cluster_as_git(server: kmock.KubernetesEmulator, hard: dict[str, str]) -> None:
    serve_namespace(server, NS, "Active")
    server.objects["v1/resourcequotas", NS, "tenant-quota"] = {
        "apiVersion": "v1", "kind": "ResourceQuota",
        "metadata": {"name": "tenant-quota", "namespace": NS},
        "spec": {"hard": hard}, "status": {"hard": hard, "used": {}}}
    for name, role, group in (("team-admin", "admin", "team-platform-admins"),
                              ("team-edit", "edit", "team-platform"),
                              ("team-view", "view", "team-platform-viewers")):
        server.objects[BINDINGS, NS, name] = _binding(name, role, group)
    server.objects[APPS, "argocd", APP] = {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {"name": APP, "namespace": "argocd"},
        "status": {"sync": {"status": "Synced"}, "health": {"status": "Healthy"}}}


def _run(engine: Engine, settings: Settings) -> DriftReport:
    with Session(engine) as session:
        return service.run(session, settings=settings, forge=make_forge(settings, engine),
                           registry=Registry(settings), sides=["cluster"])


async def test_cluster_matching_git_has_no_drift(
        engine: Engine, cluster_settings: Settings, main: Main,
        kmock: kmock.KubernetesEmulator) -> None:
    _cluster_as_git(kmock, {**GIT_QUOTA, "requests.cpu": "2000m"})  # same amount
    report = await asyncio.to_thread(_run, engine, cluster_settings)
    assert report.findings == []
    [side] = report.sides
    assert (side.side, side.status, side.checked) == ("cluster", "checked", 1)


async def test_quota_changed_in_the_cluster_is_one_finding_fixed_by_a_sync(
        engine: Engine, cluster_settings: Settings, main: Main,
        kmock: kmock.KubernetesEmulator) -> None:
    _cluster_as_git(kmock, {**GIT_QUOTA, "requests.cpu": "8"})
    reindex(engine, main)
    report = await asyncio.to_thread(_run, engine, cluster_settings)
    [finding] = report.findings
    assert (finding.side, finding.entity, finding.subject, finding.fix, finding.fix_target) == (
        "cluster", "namespace:platform/platform-tools", f"ResourceQuota {NS}", "argocd-sync",
        APP)
    assert "cpu: git 2000 / cluster 8000" in finding.what
    assert report.counts == {"namespace/cluster": 1}

    def fix() -> str:
        with Session(engine) as session:
            return service.fix(session, settings=cluster_settings,
                               forge=make_forge(cluster_settings, engine),
                               registry=Registry(cluster_settings), principal=SYSTEM,
                               finding_id=finding.id).message

    assert await asyncio.to_thread(fix) == f"ArgoCD sync of {APP} requested"
    operation = kmock.objects[APPS, "argocd", APP]["operation"]
    assert operation["initiatedBy"] == {"username": "system"} and "sync" in operation


async def test_missing_binding_and_degraded_app(
        engine: Engine, cluster_settings: Settings, main: Main,
        kmock: kmock.KubernetesEmulator) -> None:
    _cluster_as_git(kmock, GIT_QUOTA)
    del kmock.objects[BINDINGS, NS, "team-view"]
    kmock.objects[APPS, "argocd", APP]["status"] = {"sync": {"status": "OutOfSync"},
                                                    "health": {"status": "Degraded"}}
    report = await asyncio.to_thread(_run, engine, cluster_settings)
    assert sorted(f.subject for f in report.findings) == [
        f"Application {APP}", f"RoleBinding {NS}/team-view"]
    assert all(f.fix == "argocd-sync" for f in report.findings)


async def test_unreachable_cluster_says_so(engine: Engine, settings: Settings, main: Main,
                                           tmp_path: Path) -> None:
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", "http://127.0.0.1:9")
    report = await asyncio.to_thread(_run, engine, settings.model_copy(
        update={"kubeconfig": kubeconfig}))
    [side] = report.sides
    assert side.status.startswith("failed: cluster unreachable") and report.findings == []
    # Without a kubeconfig the side is "not connected", never a guess.
    report = await asyncio.to_thread(_run, engine, settings)
    assert [s.status for s in report.sides] == ["not connected"]
