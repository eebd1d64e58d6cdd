"""The catalog API: detail views with relations, quota, cost, capacity, timeline and live."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from catalog import service
from tests.catalog import gitops

Headers = Callable[[str], dict[str, str]]


@pytest.fixture
def headers(indexed: gitops.Repo, make_user: Callable[..., object],
            auth_headers: Headers) -> dict[str, str]:
    make_user("dora")
    return auth_headers("dora")


@pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
def test_cost_and_capacity_match_a_hand_computation(app_client: TestClient,
                                                    headers: dict[str, str]) -> None:
    # Prices (test sheet): dev 10/CPU 2/GiB 0.1/GiB-storage; staging 20/4/0.2; prod 40/8/0.5.
    ns = app_client.get("/api/catalog/namespaces/payments/payments-api", headers=headers).json()
    # dev: 1 CPU, 2Gi, 10Gi = 10 + 4 + 1; prod: 4 CPU, 8Gi, 50Gi = 160 + 64 + 25
    assert ns["cost"] == {"currency": "EUR", "monthly_total": 264.0,
                          "environments": {"dev": 15.0, "prod": 249.0}}
    assert ns["quota"]["prod"] == {"cpu": 4.0, "memory_gib": 8.0, "storage_gib": 50.0,
                                   "tier": "prod", "monthly_cost": 249.0}
    team = app_client.get("/api/catalog/teams/payments", headers=headers).json()
    # payments-batch: 500m, 1Gi, 5Gi in dev (5 + 2 + 0.5) and stage (10 + 4 + 1)
    assert team["cost"]["monthly_total"] == 286.5
    assert {e: v["monthly_cost"] for e, v in team["cost"]["environments"].items()} == {
        "dev": 22.5, "prod": 249.0, "stage": 15.0}
    assert team["counts"] == {"application": 1, "namespace": 2}
    prod = app_client.get("/api/catalog/environments/prod", headers=headers).json()
    # payments-api 249 + search-index (8 CPU, 16Gi, 200Gi = 320 + 128 + 100) 548
    assert prod["cost"]["monthly_total"] == 797.0
    assert prod["cost"]["environments"]["prod"]["namespaces"] == 2
    # used 4+8 CPU of 64, 8+16 GiB of 256, 50+200 GiB of 4Ti
    assert prod["capacity"] == {
        "namespaces": 2,
        "cpu": {"used": 12.0, "declared": 64.0, "percent": 18.8, "over": False},
        "memory_gib": {"used": 24.0, "declared": 256.0, "percent": 9.4, "over": False},
        "storage_gib": {"used": 250.0, "declared": 4096.0, "percent": 6.1, "over": False},
    }
    stage = app_client.get("/api/catalog/environments/stage", headers=headers).json()
    assert stage["cost"]["monthly_total"] == 91.0  # 15 + (40 + 16 + 20)
    listed = app_client.get("/api/catalog/namespaces", headers=headers).json()
    assert {i["key"]: i["monthly_cost"] for i in listed["items"]} == {
        "namespace:payments/payments-api": 264.0, "namespace:payments/payments-batch": 22.5,
        "namespace:search/search-index": 624.0}


@pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
def test_detail_relations_timeline_and_live(app_client: TestClient, engine: Engine,
                                            headers: dict[str, str]) -> None:
    with Session(engine) as s:
        service.record_timeline(s, entity="namespace:payments/payments-api", event="pr.opened",
                                actor="dev", detail={"number": 7})
        service.record_timeline(s, entity="namespace:payments/payments-api",
                                event="job.finished", actor="reconciler",
                                detail={"unit": "argocd"}, commit=True)
    ns = app_client.get("/api/catalog/namespaces/payments/payments-api", headers=headers).json()
    assert [(e["event"], e["actor"]) for e in ns["timeline"]] == [
        ("job.finished", "reconciler"), ("pr.opened", "dev")]
    assert {(r["type"], r["target"]) for r in ns["relations"]["items"]} == {
        ("ownedBy", "team:payments"), ("runsIn", "environment:dev"),
        ("runsIn", "environment:prod"), ("hosts", "application:payments/checkout")}
    assert ns["live"]["connected"] is False and "not connected" in ns["live"]["message"]
    team = app_client.get("/api/catalog/teams/payments", headers=headers).json()
    assert {r["target"] for r in team["relations"]["items"] if r["type"] == "ownerOf"} == {
        "namespace:payments/payments-api", "namespace:payments/payments-batch",
        "application:payments/checkout"}
    app = app_client.get("/api/catalog/applications/payments/checkout", headers=headers).json()
    assert app["spec"]["environment"] == "prod" and app["owner"] == "payments"
    missing = app_client.get("/api/catalog/teams/nobody", headers=headers)
    assert missing.status_code == 404
    assert app_client.get("/api/catalog/teams").status_code == 401


@pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
def test_bad_list_parameters_name_the_field(app_client: TestClient,
                                            headers: dict[str, str]) -> None:
    for params, field in (({"limit": 0}, "limit"), ({"limit": 201}, "limit"),
                          ({"cursor": "not-a-cursor"}, "cursor"),
                          ({"status": "exploded"}, "status")):
        response = app_client.get("/api/catalog/namespaces", params=params, headers=headers)
        assert response.status_code == 422, params
        assert response.json()["error"]["field"] == field


@pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
def test_backstage_export(app_client: TestClient, headers: dict[str, str]) -> None:
    entities = app_client.get("/api/catalog/entities", headers=headers).json()
    by_ref = {f"{e['kind'].lower()}:default/{e['metadata']['name']}": e for e in entities}
    assert {e["kind"] for e in entities} == {"Group", "User", "Resource", "System", "Component"}
    assert all(e["apiVersion"] == "backstage.io/v1alpha1" for e in entities)
    group = by_ref["group:default/payments"]
    assert group["spec"]["type"] == "team" and group["spec"]["members"] == ["alice", "bob"]
    # Backstage computes relations from spec fields and refuses a root ``relations`` on input.
    assert all(set(e) == {"apiVersion", "kind", "metadata", "spec"} for e in entities)
    ns = by_ref["resource:default/payments-api"]
    assert ns["spec"] == {"type": "kubernetes-namespace", "owner": "group:default/payments",
                          "system": "caas", "dependsOn": ["resource:default/dev",
                                                          "resource:default/prod"]}
    assert by_ref["system:default/caas"]["spec"]["owner"] == "group:default/platform"
    assert "group:default/platform" in by_ref
    comp = by_ref["component:default/search-indexer"]
    assert comp["spec"]["dependsOn"] == ["resource:default/search-index"]
    assert by_ref["user:default/alice"]["spec"]["memberOf"] == ["group:default/payments",
                                                                 "group:default/search"]
    only = app_client.get("/api/catalog/entities", params={"filter": "kind=component"},
                          headers=headers).json()
    assert {e["metadata"]["name"] for e in only} == {"checkout", "search-indexer"}
    location = app_client.get("/api/catalog/backstage.yaml", headers=headers)
    assert location.status_code == 200
    assert location.headers["content-type"] == "text/plain; charset=utf-8"
    assert list(yaml.safe_load_all(location.text)) == entities
    assert app_client.get("/api/catalog/backstage.yaml").status_code == 401
    bad = app_client.get("/api/catalog/entities", params={"filter": "nonsense"},
                         headers=headers)
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "filter"


def test_a_process_computes_at_most_compute_threads_pages_at_once(
        app_client: TestClient, headers: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Twelve different cold pages asked at once: all answered, never more than
    COMPUTE_THREADS computed at the same moment (each holds a connection and its rows)."""
    import asyncio
    import threading
    import time

    import httpx

    from catalog import query, views

    running, most, lock = [0], [0], threading.Lock()
    real = query.list_entities

    def counting(*args: object, **kwargs: object) -> object:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        try:
            time.sleep(0.05)  # a slow page: the others arrive while it runs
            return real(*args, **kwargs)  # type: ignore[arg-type]
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(query, "list_entities", counting)

    async def main() -> list[int]:
        transport = httpx.ASGITransport(app=app_client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            responses = await asyncio.gather(*[
                client.get(f"/api/catalog/namespaces?limit={n}", headers=headers)
                for n in range(1, 13)])
        return [r.status_code for r in responses]

    assert asyncio.run(main()) == [200] * 12
    assert most[0] == views.COMPUTE_THREADS
