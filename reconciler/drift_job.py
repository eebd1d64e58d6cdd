"""The worker's periodic drift run: ``catalog.drift.service.run`` every
``CAAS_DRIFT_INTERVAL_S`` seconds (0: never), so the drift page, the entity badges and the
``caas_drift_findings`` gauge read stored findings instead of checking on each request.

A run is idempotent (findings are keyed by entity, side and subject) and a failed run is
logged and tried again at the next interval. Runs are single-flight across processes and
hosts (``catalog.drift.runs``: a lease in the database): when another worker or a "Check now"
is already running one, this interval joins it without waiting and does nothing.
``reconciler.runtime`` starts it beside the worker (``caas worker``, ``caas serve`` in-process).
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy import Engine
from sqlmodel import Session

from catalog.drift import service as drift_service
from catalog.drift.models import DriftReport
from gitops.forges.base import Forge
from portal.settings import Settings

log = logging.getLogger("caas.reconciler.drift")


class DriftJob:
    def __init__(self, settings: Settings, engine: Engine, forge: Forge) -> None:
        self.settings, self.engine, self.forge = settings, engine, forge

    def run(self, stop: threading.Event) -> None:
        interval = self.settings.drift_interval_s
        if interval <= 0:
            return
        while not stop.wait(interval):
            try:
                report = self.run_once()
            except Exception:  # the forge, the database or a side is down: next interval
                log.warning("drift run failed", exc_info=True)
                continue
            log.info("drift: %s", ", ".join(f"{k} {n}" for k, n in sorted(
                report.counts.items()) if n) or "no drift")

    def run_once(self) -> DriftReport:
        with Session(self.engine) as session:
            return drift_service.run(session, settings=self.settings, forge=self.forge,
                                     requested_by="worker", wait=False)
