"""``--set key=value`` pairs of ``caas scaffold`` turned into answers."""

from __future__ import annotations

import json
from typing import Any

from portal.errors import ValidationFailed
from scaffolder import string_forms
from scaffolder.parameters import form_fields
from scaffolder.registry import Registry


def parse_values(*, registry: Registry, template: str, pairs: list[str]) -> dict[str, Any]:
    """``key=value`` pairs from the command line: strings stay strings, other schema types
    (numbers, booleans, arrays, objects) are read as JSON, else lists and maps in their string
    form (``owners=alice,bob``, ``environment_quotas=prod:8:16Gi``: ``scaffolder.string_forms``,
    the same strings the plain cookiecutter CLI takes); the server validates as usual."""
    found = registry.get(template)
    fields = {f.name: f for f in form_fields(found.parameters)}
    types = {name: f.type for name, f in fields.items()}
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
            continue
        except json.JSONDecodeError:
            pass
        expression = found.fetch_values.get(key)
        try:
            spelled = (string_forms.parse(expression, raw, fields[key].schema)
                       if expression is not None and key in fields else None)
        except string_forms.DuplicateKey as exc:
            raise ValidationFailed(f"{key}: {exc}", field=key, rule="unique-keys") from None
        if spelled is not None:
            values[key] = spelled
        else:
            values[key] = [v for v in raw.split(",") if v] if types[key] == "array" else raw
    return values
