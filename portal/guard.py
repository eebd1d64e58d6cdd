"""The outermost request guard, as pure ASGI middleware (no ``BaseHTTPMiddleware``).

For every HTTP request it:

- reads the request body BEFORE the application parses it, counting bytes as they arrive
  (``Content-Length`` and chunked transfer alike) and answering 413 as soon as the count passes
  ``max_body_bytes``; the 413 names the value that crossed the limit (``answers.description``)
  when the body is JSON or a form, else ``body``;
- refuses text PostgreSQL cannot hold: a NUL character (U+0000) in the path, a query
  parameter, a form field or a JSON string is a 422 naming the parameter (a JSON value by its
  key), rule ``no-control-characters``, before any view runs (psycopg refuses such a string
  with an error of its own: a 500, on every route that compares or stores text, sign-in
  included). Built by ``fallback`` (an error page or JSON);
- answers an exception that escaped the application with a 500 of its own, so that a 500 goes
  through the same header path as every other response;
- sets ``x-request-id`` (the caller's, when it is a short token, else a new one) and the security
  headers on EVERY response, 413 and 500 included;
- counts the request in the Prometheus metrics and logs it.

The body is held in memory up to the limit (1 MiB by default) and replayed to the application;
later ``receive`` calls (a disconnect during a Server-Sent Events stream) go to the server.
"""

from __future__ import annotations

import io
import logging
import re
import time
import uuid
from collections.abc import Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

import ijson
from starlette.datastructures import MutableHeaders
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from portal.errors import PayloadTooLarge, ValidationFailed
from portal.metrics import Metrics

log = logging.getLogger("caas.http")

MAX_BODY_BYTES = 1_048_576
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "content-security-policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'"
    ),
}
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_QUIET = frozenset({"/healthz", "/readyz", "/metrics"})

# Builds the response for a request whose handler raised (a 500) or that the guard refuses (a
# CaasError's own status), as JSON or an error page.
Fallback = Callable[[Scope, Exception], Response]


class BodyTooLarge(Exception):
    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field


class Guard:
    """``Guard(app, metrics=..., fallback=..., max_body_bytes=...)``: see the module docstring."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics, fallback: Fallback,
                 max_body_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.metrics = metrics
        self.fallback = fallback
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        given = _header(scope, b"x-request-id")
        request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex[:16]
        state: dict[str, Any] = {"status": 500, "started": False}

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"], state["started"] = message["status"], True
                headers = MutableHeaders(scope=message)
                headers["x-request-id"] = request_id
                for name, value in SECURITY_HEADERS.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        try:
            body, replay = await self._read_body(scope, receive)
            nul = nul_field(scope, body)
            if nul is not None:
                refused = ValidationFailed(
                    f"{nul}: must not contain the NUL character (U+0000) "
                    "(no-control-characters)", field=nul, rule="no-control-characters")
                await self.fallback(scope, refused)(scope, replay, send_with_headers)
                return
        except BodyTooLarge as exc:
            err = PayloadTooLarge(
                f"{exc.field}: the request body is over {self.max_body_bytes} bytes",
                field=exc.field, rule="maxBytes")
            response: Response = JSONResponse({"error": err.to_dict()}, status_code=err.status,
                                              headers={"connection": "close"})
            await response(scope, receive, send_with_headers)
        else:
            try:
                await self.app(scope, replay, send_with_headers)
            except Exception as exc:
                log.exception("unhandled error", extra={"path": scope.get("path", ""),
                                                        "request_id": request_id})
                if state["started"]:  # nothing can be sent any more; the server drops it
                    return
                await self.fallback(scope, exc)(scope, replay, send_with_headers)
        finally:
            self._observe(scope, state["status"], request_id, time.perf_counter() - start)

    async def _read_body(self, scope: Scope, receive: Receive) -> tuple[bytes, Receive]:
        """The whole body, read up to the limit, and a ``receive`` that replays it.

        A ``Content-Length`` over the limit is not trusted to name the value: at most the limit
        plus one chunk is read either way, then refused.
        """
        chunks: list[bytes] = []
        body = b""
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                pending: list[Message] = [message]
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            chunks.append(chunk)
            if size > self.max_body_bytes:
                raise BodyTooLarge(_field_at_cut(scope, b"".join(chunks)[:self.max_body_bytes]))
            if not message.get("more_body", False):
                body = b"".join(chunks)
                pending = [{"type": "http.request", "body": body, "more_body": False}]
                break

        async def replay() -> Message:
            if pending:
                return pending.pop(0)
            return await receive()

        return body, replay

    def _observe(self, scope: Scope, status: int, request_id: str, seconds: float) -> None:
        route = scope.get("route")
        # Label by route template, never by raw path: ids would explode the label set.
        name = getattr(route, "path", "unmatched")
        method = str(scope.get("method", ""))
        self.metrics.observe(method, name, status, seconds)
        path = str(scope.get("path", ""))
        if path not in _QUIET:
            client = scope.get("client")
            log.info("request", extra={"method": method, "path": path, "status": status,
                                       "request_id": request_id,
                                       "ip": client[0] if client else ""})


def _header(scope: MutableMapping[str, Any], name: bytes) -> str:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1")
    return ""


def _field_at_cut(scope: Scope, prefix: bytes) -> str:
    """Which value was being read when the body crossed the limit: a dotted path for JSON
    (``answers.description``; array items are their array), the key for a form, else ``body``."""
    content_type = _header(scope, b"content-type").split(";")[0].strip().lower()
    if content_type == "application/x-www-form-urlencoded":
        pairs = parse_qsl(prefix.decode("latin-1"), keep_blank_values=True)
        return pairs[-1][0][:100] if pairs else "body"
    if content_type != "application/json" and not content_type.endswith("+json"):
        return "body"
    where = ""
    try:
        for path, event, value in ijson.parse(io.BytesIO(prefix)):
            where = f"{path}.{value}" if event == "map_key" and path else (
                str(value) if event == "map_key" else path)
    except ijson.JSONError:
        pass  # the cut itself: ``where`` is the value it fell in
    parts = [p for p in where.split(".") if p and p != "item"]
    return ".".join(parts)[:200] or "body"


NUL_FREE = "^[^\\u0000]*$"
"""The rule as a JSON Schema pattern (ECMA-262): what the API document states for free text."""


def document_nul_rule(schema: Any) -> None:
    """State the guard's rule in an OpenAPI document, in place: every string schema without a
    ``pattern``, ``format``, ``enum`` or ``const`` of its own gets ``pattern: NUL_FREE`` (the
    patterns the API has already exclude NUL), and every map (``additionalProperties``) the
    same rule for its keys (``propertyNames``), so a client, and a schema-driven test, know
    that such text is refused."""
    if isinstance(schema, dict):
        if schema.get("type") == "string" and not {"pattern", "format", "enum",
                                                    "const"} & schema.keys():
            schema["pattern"] = NUL_FREE
        if schema.get("type") == "object" and "additionalProperties" in schema:
            schema.setdefault("propertyNames", {"pattern": NUL_FREE})
        for value in schema.values():
            document_nul_rule(value)
    elif isinstance(schema, list):
        for item in schema:
            document_nul_rule(item)


def nul_field(scope: Scope, body: bytes) -> str | None:
    """The first parameter carrying a NUL character (U+0000): ``path``, a query parameter's
    name, a form field's name, or a JSON value's key (``body`` at the top level); None when
    there is none. Cheap when there is none: byte searches before any parsing."""
    if "\x00" in str(scope.get("path", "")):
        return "path"
    query: bytes = scope.get("query_string", b"")
    found = _form_field(query)
    if found is not None:
        return found
    if not body:
        return None
    content_type = _header(scope, b"content-type").split(";")[0].strip().lower()
    if content_type == "application/x-www-form-urlencoded":
        return _form_field(body)
    if (content_type == "application/json" or content_type.endswith("+json")) \
            and b"\\u0000" in body:
        try:
            for path, event, value in ijson.parse(io.BytesIO(body)):
                if event == "map_key" and "\x00" in value:
                    return value.replace("\x00", "")[:100] or "body"
                if event == "string" and "\x00" in value:
                    parts = [p for p in path.split(".") if p and p != "item"]
                    return parts[-1][:100] if parts else "body"
        except ijson.JSONError:
            return None  # not JSON: the view says so
    return None


def _form_field(raw: bytes) -> str | None:
    """The first ``name=value`` pair of a query string or form body holding a NUL."""
    if b"\x00" not in raw and b"%00" not in raw:
        return None
    for name, value in parse_qsl(raw.decode("latin-1"), keep_blank_values=True):
        if "\x00" in name or "\x00" in value:
            return name.replace("\x00", "")[:100] or "query"
    return None
