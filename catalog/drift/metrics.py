"""The Prometheus gauge ``caas_drift_findings{kind, side}``: stored findings in state drift.

Read from the stored findings at scrape time (one grouped COUNT), so the gauge is what the last
runs found and scraping never runs a check. Every (kind, side) pair is exported, zero included,
so an alert on ``> 0`` sees drift disappear as well as appear. A database that cannot answer
(not migrated yet, down) exports nothing rather than failing the whole scrape.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from catalog.drift import service
from catalog.drift.models import Side
from catalog.models import Kind

log = logging.getLogger("caas.drift")


class DriftCollector(Collector):
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        try:
            with Session(self.engine) as session:
                counts = service.counts(session)
        except SQLAlchemyError:
            log.warning("drift gauge: the findings cannot be read", exc_info=True)
            return
        gauge = GaugeMetricFamily("caas_drift_findings", "Drift findings (state drift) from "
                                  "the last drift runs, per entity kind and side",
                                  labels=["kind", "side"])
        for kind in Kind:
            for side in Side:
                gauge.add_metric([kind.value, side.value], counts.get((kind.value, side.value),
                                                                      0))
        yield gauge
