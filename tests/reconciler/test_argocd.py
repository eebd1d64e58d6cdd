"""ArgoCDApplier with the official kubernetes client against kmock's fake Kubernetes API.

The client is synchronous and kmock serves from the test's event loop, so every client call
runs in a worker thread (``asyncio.to_thread``).
"""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path
from typing import Any

import kmock
import pytest
from kubernetes import config as k8s_config

from devtools.kubernetes import ApplyingEmulator, write_kubeconfig
from portal.settings import Settings
from reconciler.adapters import NotConfigured
from reconciler.argocd import (
    APPLY_PATCH,
    FIELD_MANAGER,
    REFRESH_ANNOTATION,
    ApplyError,
    AppStatus,
    ArgoCDApplier,
    ArgoCDPermanentError,
    ArgoCDTemporaryError,
)
from reconciler.errors import PermanentError, TemporaryError

pytestmark = pytest.mark.kmock(cls=ApplyingEmulator)

APPS = "argoproj.io/v1alpha1/applications"


def _project(name: str) -> dict[str, Any]:
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject",
            "metadata": {"name": name},
            "spec": {"sourceRepos": ["*"], "destinations": [{"namespace": f"{name}-*",
                                                             "server": "*"}]}}


def _appset(name: str) -> dict[str, Any]:
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "ApplicationSet",
            "metadata": {"name": name, "namespace": "argocd"},
            "spec": {"generators": [{"git": {"directories": [{"path": "tenants/*/*/envs/*"}]}}],
                     "template": {"metadata": {"name": "{{path.basename}}"},
                                  "spec": {"project": "default"}}}}


def _root() -> dict[str, Any]:
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": "root", "resourceVersion": "17", "uid": "x"},
            "spec": {"project": "default", "source": {"path": "bootstrap"}},
            "status": {"sync": {"status": "Synced"}}}


def _applier(tmp_path: Path, url: str) -> ArgoCDApplier:
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", url, context="platform")
    settings = Settings(data_dir=tmp_path, kubeconfig=kubeconfig, kube_context="platform",
                        argocd_namespace="argocd")
    return ArgoCDApplier.from_settings(settings)


async def test_server_side_apply_in_dependency_order(kmock: kmock.KubernetesEmulator,
                                                     tmp_path: Path) -> None:
    applier = _applier(tmp_path, str(kmock.url))
    manifests = [_root(), _appset("tenants"), _project("team-shop")]
    applied = await asyncio.to_thread(applier.apply_all, manifests)

    assert [(a.kind, a.name, a.namespace) for a in applied] == [
        ("AppProject", "team-shop", "argocd"), ("ApplicationSet", "tenants", "argocd"),
        ("Application", "root", "argocd")]
    patches = list(kmock["patch"])
    assert [str(p.url.path) for p in patches] == [
        "/apis/argoproj.io/v1alpha1/namespaces/argocd/appprojects/team-shop",
        "/apis/argoproj.io/v1alpha1/namespaces/argocd/applicationsets/tenants",
        "/apis/argoproj.io/v1alpha1/namespaces/argocd/applications/root"]
    for request in patches:
        assert request.headers["Content-Type"] == APPLY_PATCH
        assert request.params["fieldManager"] == FIELD_MANAGER
        assert request.params["force"] == "False"
        assert request.headers["Authorization"] == "Bearer fake-token"
    # Server-populated fields are never sent back; the namespace is filled in.
    root_body = json.loads(patches[2].body)
    assert "status" not in root_body
    assert root_body["metadata"] == {"name": "root", "namespace": "argocd"}
    stored = kmock.objects[APPS, "argocd", "root"]
    assert stored["spec"]["source"]["path"] == "bootstrap"
    assert kmock.objects["argoproj.io/v1alpha1/appprojects", "argocd", "team-shop"]["spec"][
        "destinations"][0]["namespace"] == "team-shop-*"

    # Applying again is the same server-side apply: no create, no error.
    await asyncio.to_thread(applier.apply, _project("team-shop"))
    assert len(kmock["post"]) == 0


async def test_refresh_annotation_and_status(kmock: kmock.KubernetesEmulator,
                                             tmp_path: Path) -> None:
    kmock.objects[APPS, "argocd", "shop-web-dev"] = {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {"name": "shop-web-dev", "namespace": "argocd"},
        "status": {"sync": {"status": "OutOfSync", "revision": "abc123"},
                   "health": {"status": "Degraded"}}}
    applier = _applier(tmp_path, str(kmock.url))

    assert await asyncio.to_thread(applier.refresh, "shop-web-dev") is True
    patch = list(kmock["patch"])[-1]
    assert patch.headers["Content-Type"] == "application/merge-patch+json"
    assert patch.data == {"metadata": {"annotations": {REFRESH_ANNOTATION: "normal"}}}
    annotations = kmock.objects[APPS, "argocd", "shop-web-dev"]["metadata"]["annotations"]
    assert annotations == {REFRESH_ANNOTATION: "normal"}

    status = await asyncio.to_thread(applier.status, "shop-web-dev")
    assert status == AppStatus(name="shop-web-dev", found=True, sync="OutOfSync",
                               health="Degraded", revision="abc123")
    assert str(list(kmock["get"])[-1].url.path) == (
        "/apis/argoproj.io/v1alpha1/namespaces/argocd/applications/shop-web-dev")


async def test_missing_application(kmock: kmock.KubernetesEmulator, tmp_path: Path) -> None:
    kmock.resources[APPS] = {"kind": "Application", "namespaced": True}
    applier = _applier(tmp_path, str(kmock.url))
    assert await asyncio.to_thread(applier.refresh, "ghost") is False
    assert await asyncio.to_thread(applier.status, "ghost") == AppStatus("ghost", found=False)


async def test_validation_errors_are_permanent(kmock: kmock.KubernetesEmulator,
                                               tmp_path: Path) -> None:
    kmock["patch", kmock.resource("argoproj.io", "v1alpha1", "applicationsets")] << 422 << {
        "kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 422,
        "reason": "Invalid", "message": "spec.generators: Required value"}
    applier = _applier(tmp_path, str(kmock.url))
    with pytest.raises(ArgoCDPermanentError) as caught:
        await asyncio.to_thread(applier.apply, _appset("broken"))
    assert isinstance(caught.value, PermanentError)
    assert caught.value.http_status == 422


async def test_server_errors_are_temporary(kmock: kmock.KubernetesEmulator,
                                           tmp_path: Path) -> None:
    kmock["patch"] << 503 << {"kind": "Status", "code": 503, "message": "etcd unavailable"}
    kmock["get"] << 500 << {"kind": "Status", "code": 500, "message": "boom"}
    applier = _applier(tmp_path, str(kmock.url))
    with pytest.raises(ArgoCDTemporaryError) as applying:
        await asyncio.to_thread(applier.apply, _project("p"))
    assert isinstance(applying.value, TemporaryError)
    with pytest.raises(ArgoCDTemporaryError) as reading:
        await asyncio.to_thread(applier.status, "root")
    assert isinstance(reading.value, TemporaryError)


def test_unreachable_cluster_is_temporary(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    applier = _applier(tmp_path, f"http://127.0.0.1:{port}")
    applier._api.api_client.configuration.retries = 0
    with pytest.raises(ArgoCDTemporaryError) as caught:
        applier.apply(_project("p"))
    assert isinstance(caught.value, TemporaryError)


def test_other_kinds_are_refused_before_anything_is_applied(tmp_path: Path) -> None:
    applier = _applier(tmp_path, "http://127.0.0.1:9")
    bad = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}}
    with pytest.raises(ArgoCDPermanentError, match="not an ArgoCD object") as caught:
        applier.apply_all([_project("p"), bad])
    assert isinstance(caught.value, PermanentError)
    with pytest.raises(ApplyError, match=r"metadata\.name"):
        applier.apply({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application"})


def test_not_configured_without_kubeconfig(tmp_path: Path) -> None:
    with pytest.raises(NotConfigured) as caught:
        ArgoCDApplier.from_settings(Settings(data_dir=tmp_path))
    assert caught.value.reason.startswith("not connected")


def test_broken_kubeconfig_is_a_permanent_error(tmp_path: Path) -> None:
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", "http://127.0.0.1:9")
    settings = Settings(data_dir=tmp_path, kubeconfig=kubeconfig, kube_context="nope")
    with pytest.raises(ApplyError) as caught:
        ArgoCDApplier.from_settings(settings)
    assert isinstance(caught.value, PermanentError)
    assert isinstance(caught.value.__cause__, k8s_config.ConfigException)
