"""The ``live`` block of a detail view: what the cluster says, or plainly "not connected".

The cluster is read by ``catalog.live`` (the only catalog module allowed to import the
``kubernetes`` client). It is imported only when a kubeconfig is configured, so a portal without
a cluster never loads the client, and a failing cluster read never breaks the catalog page.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

from catalog.models import Kind
from portal.errors import CaasError
from portal.settings import Settings

log = logging.getLogger(__name__)

NOT_CONNECTED = {"connected": False,
                 "message": "not connected: no kubeconfig configured (CAAS_KUBECONFIG)"}


def live_block(settings: Settings, *, kind: str, name: str,
               spec: dict[str, Any]) -> dict[str, Any]:
    if kind not in (Kind.namespace, Kind.application):
        return {"connected": settings.kubeconfig is not None,
                "message": "no live status for this kind of entity"}
    if settings.kubeconfig is None:
        return dict(NOT_CONNECTED)
    live = importlib.import_module("catalog.live")
    try:
        if kind == Kind.namespace:
            result: dict[str, Any] = live.namespace_status(
                settings, namespace=str(spec.get("namespace") or name.split("/")[-1]))
        else:
            team, _, app = name.partition("/")
            result = live.application_status(settings, name=f"{team}-{app}")
    except (CaasError, OSError) as exc:
        log.warning("live status of %s:%s failed: %s", kind, name, exc)
        return {"connected": False, "message": f"cluster unreachable: {exc}"}
    return {"connected": True, **result}
