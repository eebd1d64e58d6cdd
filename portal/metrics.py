"""Prometheus metrics: one registry per app, so several apps in one process never collide."""

from __future__ import annotations

from fastapi import Response
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "caas_http_requests_total", "HTTP requests served",
            ["method", "route", "status"], registry=self.registry,
        )
        self.latency = Histogram(
            "caas_http_request_duration_seconds", "HTTP request latency",
            ["method", "route"], registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )

    def render(self) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """One served request; ``route`` is the route template (``/api/changes/{change_id}``)."""
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)
