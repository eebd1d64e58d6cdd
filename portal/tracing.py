"""OpenTelemetry traces of the portal: one trace per request (request → render → checks → pull
request) and per merge (merge → reconciler jobs → Terraform / ArgoCD / Keycloak), linked across
processes through the W3C ``traceparent`` the jobs carry in their payload.

On only when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set (the standard SDK variable,
opentelemetry.io/docs/specs/otel/protocol/exporter/) or a test passes an exporter. Off, nothing
of OpenTelemetry is imported and ``span`` is a no-op context manager: it costs nothing.

Spans use this module's provider (never a process-global one), so tests can swap it; the
FastAPI, SQLAlchemy and HTTPX instrumentations are given the same provider.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, nullcontext
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from sqlalchemy import Engine

ENDPOINT_VARIABLE = "OTEL_EXPORTER_OTLP_ENDPOINT"
CARRIER_KEY = "trace"  # where a job's payload keeps the W3C trace context

_provider: TracerProvider | None = None
_instrumented_engines: set[int] = set()


def enabled() -> bool:
    return _provider is not None


def configure(*, service: str, exporter: SpanExporter | None = None) -> bool:
    """Turn tracing on for this process: with ``exporter`` (tests: synchronous export), else
    an OTLP/HTTP exporter when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set (batched). Returns
    whether tracing is on. Idempotent: a second call keeps the first provider unless an
    exporter is passed. ``service`` is ``service.name`` unless ``OTEL_SERVICE_NAME`` says
    otherwise."""
    global _provider
    if exporter is None and (_provider is not None or not os.environ.get(ENDPOINT_VARIABLE)):
        return _provider is not None
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", service)})
    provider = TracerProvider(resource=resource)
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    else:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor = HTTPXClientInstrumentor()
    if instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.uninstrument()
    instrumentor.instrument(tracer_provider=provider)  # forge, Keycloak, ArgoCD calls
    _provider = provider
    _instrumented_engines.clear()
    return True


def shutdown() -> None:
    """Flush and turn tracing off (tests; process exit flushes by itself)."""
    global _provider
    if _provider is None:
        return
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    HTTPXClientInstrumentor().uninstrument()
    _provider.shutdown()
    _provider = None
    _instrumented_engines.clear()


def instrument_app(app: FastAPI, engine: Engine, *, service: str = "caas-portal") -> None:
    """create_app's hook: request spans (FastAPI) and query spans (SQLAlchemy), when on."""
    if not configure(service=service):
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(app, tracer_provider=_provider,
                                       excluded_urls="healthz,readyz,metrics")
    instrument_engine(engine)


def instrument_engine(engine: Engine) -> None:
    """Query spans for ``engine`` (once per engine), when on."""
    if _provider is None or id(engine) in _instrumented_engines:
        return
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    # Its declared range stops below SQLAlchemy 2.1, whose engine events it hooks are unchanged;
    # the trace test shows the query spans arrive.
    SQLAlchemyInstrumentor().instrument(engine=engine, tracer_provider=_provider,
                                        skip_dep_check=True)
    _instrumented_engines.add(id(engine))


@contextmanager
def _span(name: str, parent: Mapping[str, str] | None,
          attributes: dict[str, Any]) -> Iterator[None]:
    from opentelemetry import context, propagate

    assert _provider is not None
    token = context.attach(propagate.extract(dict(parent))) if parent else None
    try:
        tracer = _provider.get_tracer("caas-portal")
        with tracer.start_as_current_span(name, attributes=_clean(attributes)):
            yield
    finally:
        if token is not None:
            context.detach(token)


def span(name: str, *, parent: Mapping[str, str] | None = None,
         **attributes: Any) -> Any:
    """A child of the current span (or of ``parent``, a carrier from ``inject``), as a context
    manager. Attribute values that are None are left out. No-op when tracing is off."""
    if _provider is None:
        return nullcontext()
    return _span(name, parent, attributes)


def set_attributes(**attributes: Any) -> None:
    """Add attributes to the current span (e.g. the change number once the PR exists)."""
    if _provider is None:
        return
    from opentelemetry import trace

    trace.get_current_span().set_attributes(_clean(attributes))


def inject() -> dict[str, str]:
    """The current trace context as W3C headers (``traceparent``); empty when off."""
    if _provider is None:
        return {}
    from opentelemetry import propagate

    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def _clean(attributes: Mapping[str, Any]) -> dict[str, Any]:
    return {f"caas.{k}": v for k, v in attributes.items() if v is not None}
