"""``--set key=value`` pairs of ``caas scaffold`` turned into answers."""

from __future__ import annotations

import json
from typing import Any

from portal.errors import ValidationFailed
from scaffolder.parameters import form_fields
from scaffolder.registry import Registry


def parse_values(*, registry: Registry, template: str, pairs: list[str]) -> dict[str, Any]:
    """``key=value`` pairs from the command line: strings stay strings, other schema types
    (numbers, booleans, arrays, objects) are read as JSON; the server validates as usual."""
    types = {f.name: f.type for f in form_fields(registry.get(template).parameters)}
    values: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ValidationFailed(f"--set {pair!r}: expected key=value", field="set")
        if types.get(key, "string") == "string":
            values[key] = raw
            continue
        try:
            values[key] = json.loads(raw)
        except json.JSONDecodeError:
            values[key] = [v for v in raw.split(",") if v] if types[key] == "array" else raw
    return values
