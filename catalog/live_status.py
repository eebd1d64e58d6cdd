"""The ``live`` block of a detail view: what the cluster says, or plainly "not connected".

The cluster is read by ``catalog.live`` (the only catalog module allowed to import the
``kubernetes`` client). It is imported only when a kubeconfig is configured, so a portal without
a cluster never loads the client; ``LiveStatus`` turns every failure into ``connected=False``
with a reason, so a cluster problem never breaks a catalog page.
"""

from __future__ import annotations

from typing import Any

from catalog.models import Kind
from gitops import object_names
from portal.settings import Settings

NOT_CONNECTED = "not connected"


def live_block(settings: Settings, *, kind: str, name: str,
               spec: dict[str, Any]) -> dict[str, Any]:
    """Live facts of a namespace (present, phase, quota hard/used) or an application (ArgoCD
    sync and health); other kinds have none."""
    if kind not in (Kind.namespace, Kind.application):
        return {"connected": settings.kubeconfig is not None, "reason": None,
                "message": "no live status for this kind of entity"}
    if settings.kubeconfig is None:
        return {"connected": False, "reason": NOT_CONNECTED,
                "message": f"{NOT_CONNECTED}: no kubeconfig configured (CAAS_KUBECONFIG)"}
    from catalog.live import LiveStatus

    live = LiveStatus.from_settings(settings)
    if kind == Kind.namespace:
        ns = live.namespace(str(spec.get("namespace") or name.split("/")[-1]))
        return {"connected": ns.connected, "reason": ns.reason,
                "message": ns.reason or ("present" if ns.present else "namespace not found"),
                "namespace": ns.name, "present": ns.present, "phase": ns.phase,
                "quota": {"hard": ns.hard, "used": ns.used}}
    team, _, app = name.partition("/")
    envs = sorted(spec.get("environments") or {}) if spec.get("layout") == "envs" else []
    # One Application per environment folder; the older single-file layout has one.
    names = [object_names.team_application(team, app, env) for env in envs] or [
        object_names.team_application(team, app)]
    answers = [live.application(n) for n in names]
    found = answers[0]
    block: dict[str, Any] = {"connected": found.connected, "reason": found.reason,
             "message": found.reason or ("found" if found.found else "application not found"),
             "application": found.name, "found": found.found, "sync": found.sync,
             "health": found.health, "revision": found.revision}
    if envs:
        block["environments"] = {env: {"application": a.name, "found": a.found,
                                       "sync": a.sync, "health": a.health,
                                       "revision": a.revision, "reason": a.reason}
                                 for env, a in zip(envs, answers, strict=True)}
    return block
