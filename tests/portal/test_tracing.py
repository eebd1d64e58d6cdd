"""OpenTelemetry: a scaffolder request is one trace (request → render → checks → pull request)
and a merge is one trace that the worker's jobs continue; off, nothing is imported."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import Engine

from gitops.forges.factory import make_forge
from portal import tracing
from portal.app import create_app
from portal.auth.models import Role
from portal.settings import Settings
from reconciler.worker import Worker
from tests.conftest import UserFactory, bearer
from tests.reconciler.conftest import drain
from tests.scaffolder.conftest import seed

TENANT = {"team": "payments", "name": "web", "cost_center": "cc-1", "environments": ["dev"]}


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    memory = InMemorySpanExporter()
    assert tracing.configure(service="caas-portal-test", exporter=memory)
    try:
        yield memory
    finally:
        tracing.shutdown()


def by_name(spans: tuple[ReadableSpan, ...], name: str) -> ReadableSpan:
    (found,) = [s for s in spans if s.name == name]
    return found


@pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
def test_request_to_pull_request_is_one_trace_and_merge_continues_in_the_jobs(
        exporter: InMemorySpanExporter, settings: Settings, engine: Engine, tmp_path: Path,
        make_user: UserFactory) -> None:
    seed(settings, tmp_path)
    make_user("alice", teams={"payments": Role.developer})
    make_user("bob", teams={"payments": Role.developer})
    alice, bob = bearer(engine, "alice"), bearer(engine, "bob")
    with TestClient(create_app(settings, engine=engine)) as client:
        exporter.clear()
        task = client.post("/api/scaffolder/tasks", headers=alice,
                           json={"template": "tenant", "answers": TENANT}).json()
        assert task["status"] == "succeeded", task
        spans = exporter.get_finished_spans()
        request = by_name(spans, "POST /api/scaffolder/tasks")
        render, checks, pr = (by_name(spans, f"scaffolder.{n}")
                              for n in ("render", "checks", "pull_request"))
        trace_id = request.context.trace_id
        for child in (render, checks, pr):
            assert child.context.trace_id == trace_id
            assert child.parent is not None and child.parent.span_id == request.context.span_id
        assert render.end_time <= checks.start_time and checks.end_time <= pr.start_time
        change = client.get(f"/api/changes/{task['change_id']}", headers=alice).json()
        assert pr.attributes["caas.change_number"] == change["number"]
        assert pr.attributes["caas.commit"] == change["head_sha"]
        # Database and HTTP work shows up inside the same trace (SQLAlchemy instrumentation).
        assert any(s.context.trace_id == trace_id and s.attributes.get("db.system")
                   for s in spans)

        exporter.clear()
        assert client.post(f"/api/changes/{change['id']}/approve",
                           headers=bob).status_code == 200
        merged = client.post(f"/api/changes/{change['id']}/merge", headers=bob).json()
        merge = by_name(exporter.get_finished_spans(),
                        "POST /api/changes/{change_id}/merge")
        assert merge.attributes["caas.change_number"] == change["number"]
        assert merge.attributes["caas.commit"] == merged["merge_sha"]

    exporter.clear()
    drain(Worker(settings, engine, make_forge(settings, engine)))
    jobs = [s for s in exporter.get_finished_spans() if s.name.startswith("reconciler.")]
    assert {s.name for s in jobs} >= {"reconciler.plan", "reconciler.catalog",
                                      "reconciler.argocd"}
    for job in jobs:  # one trace: merge request → plan job → the jobs it planned
        assert job.context.trace_id == merge.context.trace_id
        assert job.attributes["caas.commit"] == merged["merge_sha"]
        assert job.attributes["caas.change_number"] == change["number"]
    plan = by_name(tuple(jobs), "reconciler.plan")
    assert plan.parent is not None and plan.parent.span_id == merge.context.span_id
    assert all(j.parent is not None and j.parent.span_id == plan.context.span_id
               for j in jobs if j is not plan)


def test_off_imports_nothing_of_opentelemetry(tmp_path: Path) -> None:
    code = ("import sys\nfrom portal.app import create_app\nfrom portal.settings import Settings\n"
            f"create_app(Settings(data_dir={str(tmp_path)!r}))\n"
            "loaded = sorted(m for m in sys.modules if m.startswith('opentelemetry.sdk') "
            "or m.startswith('opentelemetry.instrumentation'))\nprint(loaded)\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "CAAS_"))}
    got = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120, check=False, cwd=Path(__file__).resolve().parents[2])
    assert got.returncode == 0, got.stderr
    assert got.stdout.strip() == "[]"
