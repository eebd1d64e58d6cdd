"""Live namespace and Application status through the official client against kmock."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import kmock
import pytest

from catalog.live import NOT_CONNECTED, AppLive, LiveStatus, NamespaceLive, QuotaLive
from devtools.kubernetes import serve_namespace, write_kubeconfig
from portal.settings import Settings


def _live(tmp_path: Path, url: str) -> LiveStatus:
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", url)
    return LiveStatus.from_settings(Settings(data_dir=tmp_path, kubeconfig=kubeconfig,
                                             argocd_namespace="gitops"))


async def test_namespace_with_quota(kmock: kmock.KubernetesEmulator, tmp_path: Path) -> None:
    serve_namespace(kmock, "shop-web-dev", "Active")
    kmock.objects["v1/resourcequotas", "shop-web-dev", "compute"] = {
        "apiVersion": "v1", "kind": "ResourceQuota",
        "metadata": {"name": "compute", "namespace": "shop-web-dev"},
        "spec": {"hard": {"requests.cpu": "2", "requests.memory": "4Gi"}},
        "status": {"hard": {"requests.cpu": "2", "requests.memory": "4Gi"},
                   "used": {"requests.cpu": "750m", "requests.memory": "1536Mi"}}}
    kmock.objects["v1/resourcequotas", "other-ns", "compute"] = {
        "metadata": {"name": "compute", "namespace": "other-ns"},
        "status": {"hard": {"requests.cpu": "64"}}}
    live = _live(tmp_path, str(kmock.url))
    assert live.connected

    result = await asyncio.to_thread(live.namespace, "shop-web-dev")
    assert result == NamespaceLive(
        name="shop-web-dev", connected=True, present=True, phase="Active",
        quotas=(QuotaLive("compute", hard={"requests.cpu": "2", "requests.memory": "4Gi"},
                          used={"requests.cpu": "750m", "requests.memory": "1536Mi"}),))
    assert result.used["requests.cpu"] == "750m"
    assert result.hard["requests.memory"] == "4Gi"
    paths = [str(r.url.path) for r in kmock["get"]]
    assert paths == ["/api/v1/namespaces/shop-web-dev",
                     "/api/v1/namespaces/shop-web-dev/resourcequotas"]


async def test_missing_namespace_is_absent_not_unknown(kmock: kmock.KubernetesEmulator,
                                                       tmp_path: Path) -> None:
    serve_namespace(kmock, "nope", None)
    live = _live(tmp_path, str(kmock.url))
    result = await asyncio.to_thread(live.namespace, "nope")
    assert result == NamespaceLive(name="nope", connected=True, present=False)


async def test_application_sync_and_health(kmock: kmock.KubernetesEmulator,
                                           tmp_path: Path) -> None:
    kmock.objects["argoproj.io/v1alpha1/applications", "gitops", "shop-web-dev"] = {
        "metadata": {"name": "shop-web-dev", "namespace": "gitops"},
        "status": {"sync": {"status": "Synced", "revision": "deadbeef"},
                   "health": {"status": "Healthy"}}}
    kmock.objects["argoproj.io/v1alpha1/applications", "gitops", "fresh"] = {
        "metadata": {"name": "fresh", "namespace": "gitops"}}
    live = _live(tmp_path, str(kmock.url))
    assert await asyncio.to_thread(live.application, "shop-web-dev") == AppLive(
        name="shop-web-dev", connected=True, found=True, sync="Synced", health="Healthy",
        revision="deadbeef")
    # Not reported yet by ArgoCD: None, not a guess.
    assert await asyncio.to_thread(live.application, "fresh") == AppLive(
        name="fresh", connected=True, found=True)
    assert await asyncio.to_thread(live.application, "ghost") == AppLive(
        name="ghost", connected=True, found=False)


async def test_refusals_say_so(kmock: kmock.KubernetesEmulator, tmp_path: Path) -> None:
    kmock["get"] << 403 << {"kind": "Status", "code": 403, "reason": "Forbidden"}
    live = _live(tmp_path, str(kmock.url))
    ns = await asyncio.to_thread(live.namespace, "shop")
    assert (ns.connected, ns.present) == (False, None)
    assert ns.reason is not None and "403" in ns.reason
    app = await asyncio.to_thread(live.application, "shop")
    assert (app.connected, app.found, app.sync) == (False, None, None)


def test_without_kubeconfig_everything_says_not_connected(tmp_path: Path) -> None:
    live = LiveStatus.from_settings(Settings(data_dir=tmp_path))
    assert not live.connected
    assert live.namespace("shop") == NamespaceLive(name="shop", connected=False,
                                                   reason=NOT_CONNECTED)
    assert live.application("shop") == AppLive(name="shop", connected=False,
                                               reason=NOT_CONNECTED)


def test_unusable_kubeconfig_is_not_connected(tmp_path: Path) -> None:
    (tmp_path / "kubeconfig").write_text("this: is: not: yaml: [")
    live = LiveStatus.from_settings(Settings(data_dir=tmp_path,
                                             kubeconfig=tmp_path / "kubeconfig"))
    assert not live.connected
    assert live.reason is not None and live.reason.startswith(NOT_CONNECTED)


def test_unreachable_cluster(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    live = _live(tmp_path, f"http://127.0.0.1:{port}")
    result = live.namespace("shop")
    assert not result.connected
    assert result.present is None
    assert result.reason is not None and result.reason.startswith("cluster unreachable")


@pytest.mark.parametrize("name", ["a", "shop-web-prod"])
def test_answers_keep_the_name(tmp_path: Path, name: str) -> None:
    live = LiveStatus(None)
    assert live.namespace(name).name == name
    assert live.application(name).reason == NOT_CONNECTED
