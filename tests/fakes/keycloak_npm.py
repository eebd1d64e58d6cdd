"""The Keycloak Admin REST API as Keycloak's own admin client defines it (``tests/keycloak_npm``,
``@keycloak/keycloak-admin-client`` pinned by its lock file; Keycloak publishes no OpenAPI
document on npm, so the client's resource definitions are the reference).

``admin_routes() -> list[AdminRoute]`` reads every ``makeRequest``/``makeUpdateRequest`` of
``lib/resources/*.js``: method, path template (the resource's base path + the request's path),
the query keys it sends (``queryParamKeys``, or the fields of the payload type in the ``.d.ts``)
and the representation its body carries. ``check_request(method, raw_path, query, body)``
returns what is wrong with one request the fake received (``[]`` when a route admits it).
``python -m tests.fakes.keycloak_npm`` installs the package (CI).
"""

from __future__ import annotations

import functools
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.fakes.github_npm import ensure_installed

FOLDER = Path(__file__).resolve().parents[1] / "keycloak_npm"
_REQUEST = re.compile(r"^    (\w+) = this\.make(Update)?Request\(\{\n(.*?)\n    \}\);",
                      re.S | re.M)
_BASE = re.compile(r'super\(client, \{\s*path: (?:`([^`]+)`|"([^"]+)")')
# `${orgId ? "organizations/{orgId}/" : ""}`: the realm-level form (no organisation) is used.
_TEMPLATE_EXPR = re.compile(r"\$\{[^{}]*(?:\{[^{}]*\}[^{}]*)*\}")
_FIELD = re.compile(r"^\s*(\w+)\??:", re.M)


@dataclass(frozen=True)
class AdminRoute:
    resource: str
    name: str
    method: str
    template: str
    pattern: re.Pattern[str]
    query_keys: frozenset[str]
    body_fields: frozenset[str] | None  # None: no representation named


def _lib() -> Path:
    return ensure_installed(FOLDER) / "@keycloak/keycloak-admin-client/lib"


def _interfaces(text: str) -> dict[str, tuple[list[str], str]]:
    found = {}
    for match in re.finditer(r"interface (\w+)(?: extends ([\w, ]+))? \{(.*?)\n\}", text, re.S):
        bases = [b.strip() for b in (match.group(2) or "").split(",") if b.strip()]
        found[match.group(1)] = (bases, match.group(3))
    return found


def _fields(name: str, interfaces: dict[str, tuple[list[str], str]]) -> set[str]:
    if name not in interfaces:
        return set()
    # An index signature (``[key: string]: ...``) is ignored: only the named keys count.
    bases, body = interfaces[name]
    out = set(_FIELD.findall(body))
    for base in bases:
        out |= _fields(base, interfaces)
    return out


def _representation(name: str) -> frozenset[str] | None:
    file = _lib() / "defs" / f"{name[0].lower()}{name[1:]}.d.ts"
    if not file.exists():
        return None
    return frozenset(_FIELD.findall(file.read_text()))


def _signature(dts: str, name: str) -> str:
    match = re.search(rf"^    {name}: \((.*?)\) => Promise", dts, re.S | re.M)
    return match.group(1) if match else ""


@functools.cache
def admin_routes() -> list[AdminRoute]:
    routes = []
    for js in sorted((_lib() / "resources").glob("*.js")):
        text = js.read_text()
        base = _BASE.search(text)
        if base is None:
            continue
        dts = js.with_suffix(".d.ts").read_text() if js.with_suffix(".d.ts").exists() else ""
        interfaces = _interfaces(dts)
        for name, _update, body in _REQUEST.findall(text):
            method = re.search(r'method: "(\w+)"', body)
            path = re.search(r'path: "([^"]*)"', body)
            keys = re.search(r"queryParamKeys: \[(.*?)\]", body, re.S)
            template = posixpath.normpath(
                _TEMPLATE_EXPR.sub("", base.group(1) or base.group(2))
                + (path.group(1) if path else ""))
            pattern = re.compile("^" + re.sub(
                r"\\\{(\w+)\\\}", lambda m: "(.+)" if m.group(1) == "path" else "([^/]+)",
                re.escape(template)) + "$")
            signature = _signature(dts, name)
            if keys:
                query = set(re.findall(r'"(\w+)"', keys.group(1)))
            else:  # GET sends the payload's fields as the query
                query = set(_FIELD.findall(signature))
                for ref in re.findall(r"\b([A-Z]\w+Query)\b", signature):
                    query |= _fields(ref, interfaces)
            reps = re.findall(r"\b(\w+Representation)\b", signature)
            routes.append(AdminRoute(
                js.stem, name, method.group(1) if method else "GET", template, pattern,
                frozenset(query),
                _representation(reps[0]) if reps else None))
    return routes


def check_request(method: str, raw_path: str, query: dict[str, str], body: Any) -> list[str]:
    """Why no route of the admin client admits this request (``[]``: one does)."""
    candidates = [r for r in admin_routes() if r.method == method and r.pattern.match(raw_path)]
    if not candidates:
        return [f"{method} {raw_path}: no such endpoint in @keycloak/keycloak-admin-client"]
    problems: list[str] = []
    for route in candidates:
        wrong: list[str] = []
        extra = sorted(set(query) - route.query_keys)
        if extra:
            wrong.append(f"query {extra} not in {sorted(route.query_keys)}")
        if isinstance(body, dict) and route.body_fields is not None:
            unknown = sorted(set(body) - route.body_fields)
            if unknown:
                wrong.append(f"body fields {unknown} not in the representation")
        if not wrong:
            return []
        problems.append(f"{method} {raw_path} as {route.resource}.{route.name}: "
                        + "; ".join(wrong))
    return problems


if __name__ == "__main__":
    print(ensure_installed(FOLDER))
