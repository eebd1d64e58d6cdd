"""The worker's periodic Keycloak resync: every team on ``main`` synced again, so people listed
in a ``team.yaml`` before their Keycloak account existed join the team's groups once it does.

``KeycloakResync(settings, forge).resync_once() -> SyncReport`` reads every
``teams/<team>/team.yaml`` at the head of ``main`` and runs ``KeycloakSync.sync`` on their
derived groups (the same plan-then-write sync the merge job runs; idempotent, so a resync with
nothing new writes nothing). A team file the group rule refuses is logged and left out — its
groups are not touched — and the other teams still sync. Raises ``NotConfigured`` without
Keycloak and ``SyncError`` when Keycloak fails.

``run(stop)`` repeats it every ``CAAS_KEYCLOAK_RESYNC_INTERVAL_S`` seconds (0: never) until
``stop`` is set; ``reconciler.runtime`` starts it beside the worker (``caas worker``, ``caas
serve`` in-process).
"""

from __future__ import annotations

import logging
import threading

from gitops import yaml
from gitops.forges.base import Forge
from portal.settings import Settings
from reconciler.adapters import NotConfigured
from reconciler.keycloak import (
    GroupSpec,
    KeycloakPermanentError,
    KeycloakSync,
    SyncError,
    SyncReport,
    groups_from_team,
)

log = logging.getLogger("caas.reconciler.keycloak")


class KeycloakResync:
    def __init__(self, settings: Settings, forge: Forge) -> None:
        self.settings, self.forge = settings, forge
        self.refused: dict[str, str] = {}  # team -> why, from the last resync

    def run(self, stop: threading.Event) -> None:
        interval = self.settings.keycloak_resync_interval_s
        if interval <= 0 or not self.settings.keycloak_url:
            return
        while not stop.wait(interval):
            try:
                report = self.resync_once()
            except NotConfigured:
                return
            except Exception:  # Keycloak or the forge is down: try again next interval
                log.warning("Keycloak resync failed", exc_info=True)
                continue
            if report.changed:
                log.info("Keycloak resync: %s", report.summary())

    def resync_once(self) -> SyncReport:
        sync = KeycloakSync.from_settings(self.settings)
        return sync.sync(self.groups())

    def groups(self, teams: set[str] | None = None) -> list[GroupSpec]:
        """The derived groups of every team on main (or only of ``teams``): what a resync
        writes and what drift compares Keycloak with. Refused team files are left out and
        named in ``refused``."""
        head = self.forge.head(self.settings.main_branch)
        found = sorted({p.split("/")[1] for p in self.forge.list_files("teams/", head)
                        if p.count("/") == 2 and p.endswith("/team.yaml")})
        teams_on_main = [t for t in found if teams is None or t in teams]
        groups: list[GroupSpec] = []
        self.refused = {}
        for team in teams_on_main:
            content = self.forge.read_file(f"teams/{team}/team.yaml", head)
            try:
                doc = yaml.load(content or b"")
                if not isinstance(doc, dict):
                    raise KeycloakPermanentError("team.yaml must hold a mapping")
                groups.extend(groups_from_team(
                    team, doc, platform_groups=(self.settings.oidc_admin_group,)))
            except (yaml.YamlError, SyncError) as exc:
                self.refused[team] = str(exc)
                log.warning("Keycloak resync leaves team %s out: %s", team, exc)
        return groups
