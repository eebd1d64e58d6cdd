"""The OpenAPI document is true to the server (the cheap half; schemathesis is the other):
bounded integers, documented errors and content types, timezone-aware timestamps."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from fastapi.testclient import TestClient

from portal.params import MAX_ID
from tests.conftest import UserFactory

PUBLIC = {("get", "/healthz"), ("get", "/readyz"), ("get", "/api/openapi.json"),
          ("post", "/api/auth/login"), ("post", "/api/webhooks/github")}


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method, path, op) for path, ops in spec["paths"].items()
            for method, op in ops.items()]


def _integer_schemas(schema: dict[str, Any]) -> list[dict[str, Any]]:
    options = schema.get("anyOf", [schema])
    return [s for s in options if s.get("type") == "integer"]


def test_every_integer_parameter_is_bounded(app_client: TestClient) -> None:
    spec = app_client.get("/api/openapi.json").json()
    checked = 0
    for method, path, op in _operations(spec):
        for param in op.get("parameters", []):
            for schema in _integer_schemas(param.get("schema", {})):
                where = (method, path, param["name"])
                assert "maximum" in schema and schema["maximum"] <= MAX_ID, where
                assert "minimum" in schema, where
                checked += 1
    assert checked >= 15


def test_every_operation_documents_its_errors(app_client: TestClient) -> None:
    spec = app_client.get("/api/openapi.json").json()
    for method, path, op in _operations(spec):
        documented = set(op["responses"])
        if (method, path) not in PUBLIC:
            assert "401" in documented, (method, path)
        if op.get("parameters") or op.get("requestBody"):
            assert "422" in documented, (method, path)
        if op.get("requestBody"):
            assert {"400", "413"} & documented, (method, path)
        if path.endswith("/events"):
            assert "text/event-stream" in op["responses"]["200"]["content"], path


def test_no_page_is_in_the_api_document(app_client: TestClient) -> None:
    spec = app_client.get("/api/openapi.json").json()
    assert all(path.startswith("/api/") or path in {"/healthz", "/readyz"}
               for path in spec["paths"]), sorted(spec["paths"])


def test_timestamps_carry_their_offset(app_client: TestClient, make_user: UserFactory,
                                       auth_headers: Callable[[str], dict[str, str]]) -> None:
    make_user("root", admin=True)
    headers = auth_headers("root")
    tokens = app_client.get("/api/auth/tokens", headers=headers).json()
    audit = app_client.get("/api/audit", headers=headers).json()
    stamps = [t["created_at"] for t in tokens] + [e["at"] for e in audit]
    assert stamps
    for stamp in stamps:
        assert datetime.fromisoformat(stamp).utcoffset() is not None, stamp
