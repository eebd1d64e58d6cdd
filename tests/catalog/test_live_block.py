"""The detail view's live block: "not connected" without a kubeconfig, the cluster's facts
with one (official client against kmock)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import kmock

from catalog.live_status import live_block
from devtools.kubernetes import serve_namespace, write_kubeconfig
from portal.settings import Settings

NS_SPEC = {"namespace": "payments-api"}


def test_not_connected_without_kubeconfig(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    block = live_block(settings, kind="namespace", name="payments/payments-api", spec=NS_SPEC)
    assert block["connected"] is False and block["message"].startswith("not connected")


async def test_live_namespace_and_application(kmock: kmock.KubernetesEmulator,
                                              tmp_path: Path) -> None:
    serve_namespace(kmock, "payments-api", "Active")
    kmock.objects["v1/resourcequotas", "payments-api", "tenant-quota"] = {
        "apiVersion": "v1", "kind": "ResourceQuota",
        "metadata": {"name": "tenant-quota", "namespace": "payments-api"},
        "status": {"hard": {"requests.cpu": "4"}, "used": {"requests.cpu": "1500m"}}}
    kmock.objects["argoproj.io/v1alpha1/applications", "argocd", "app.payments.checkout"] = {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {"name": "app.payments.checkout", "namespace": "argocd"},
        "status": {"sync": {"status": "OutOfSync", "revision": "abc"},
                   "health": {"status": "Degraded"}}}
    settings = Settings(data_dir=tmp_path,
                        kubeconfig=write_kubeconfig(tmp_path / "kubeconfig", str(kmock.url)))
    ns = await asyncio.to_thread(live_block, settings, kind="namespace",
                                 name="payments/payments-api", spec=NS_SPEC)
    assert (ns["connected"], ns["present"], ns["phase"]) == (True, True, "Active")
    assert ns["quota"] == {"hard": {"requests.cpu": "4"}, "used": {"requests.cpu": "1500m"}}
    app = await asyncio.to_thread(live_block, settings, kind="application",
                                  name="payments/checkout", spec={})
    assert (app["connected"], app["found"], app["sync"], app["health"]) == (
        True, True, "OutOfSync", "Degraded")
    gone = await asyncio.to_thread(live_block, settings, kind="namespace",
                                   name="payments/payments-old", spec={})
    assert (gone["connected"], gone["present"]) == (True, False)
