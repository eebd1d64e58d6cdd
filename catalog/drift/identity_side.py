"""The Keycloak side: team groups and members against the team files on main.

The comparison is the Keycloak sync's own read-only plan (``reconciler.service
.identity_drift``); each difference becomes one finding on ``team:<team>`` whose subject names
the group and member, with the fix "Keycloak sync" — except a listed user who has no Keycloak
account, which no sync can fix until they sign in.
"""

from __future__ import annotations

import time

from catalog.drift.models import Finding, Fix, Side, SideResult
from gitops.forges.base import Forge
from portal.errors import CaasError
from portal.settings import Settings
from reconciler import service as reconciler_service


def check(settings: Settings, forge: Forge, *, teams: int) -> SideResult:
    """``teams``: how many teams main has (what the side compared)."""
    started = time.perf_counter()
    result = SideResult(side=Side.keycloak)
    if not settings.keycloak_url:
        result.status = "not configured"
        return result
    try:
        found = reconciler_service.identity_drift(settings, forge)
    except CaasError as exc:  # NotConfigured, or the sync's SyncError
        result.status = (f"not configured: {exc.message}" if exc.code == "not_configured"
                         else f"failed: {exc.message}")[:300]
        return result
    for item in found:
        subject = f"{item.group}: {item.member}" if item.member else item.group
        result.findings.append(Finding(
            entity=f"team:{item.team}", side=Side.keycloak, subject=subject[:300],
            what=item.what, team=item.team,
            fix=Fix.none if item.kind == "user-missing" else Fix.keycloak_sync,
            fix_target=item.team))
    result.checked = teams
    result.seconds = time.perf_counter() - started
    return result
