"""Server-side validation of template answers, and form fields, from one JSON Schema.

A template's ``spec.parameters`` (Backstage ``scaffolder.backstage.io/v1beta3``) is either one
JSON Schema object or a list of them (form pages). Both the portal's form and this validator read
it, so what the form offers and what the server accepts cannot drift apart.

Public API:

- ``ParameterContext`` — what the answers are checked against: the user's existing teams, the
  existing environments, reserved namespace names, quantity bounds, the string length cap.
- ``validate_answers(parameters, answers, *, context) -> dict[str, object]`` — normalised answers
  (defaults applied to ABSENT fields; an explicit ``null`` is checked like any value, so it is
  refused where the schema does not allow it) or ``ValidationFailed(message, field=...,
  rule=...)`` for the FIRST problem, fields checked in the order the form shows them.
- ``form_fields(parameters) -> list[FieldSpec]`` — the top-level fields, in form order.
- ``parameter_context(*, teams, environments, quota_bounds=None, reserved_namespaces="")`` and
  ``parse_quota_bounds(text)`` — a context from the settings ``CAAS_QUOTA_BOUNDS`` and
  ``CAAS_RESERVED_NAMESPACES``.

Besides standard JSON Schema (Draft 2020-12), each property may say what it means to the platform:

- ``ui:field: TeamPicker`` (or ``x-caas-rule: team``) — a team the user belongs to;
- ``ui:field: EnvironmentPicker`` (or ``x-caas-rule: environment``) — an existing environment;
  on an array, every item; as ``propertyNames`` of an object, every key;
- ``x-caas-rule: dns-label`` — a DNS-1123 label (lower-case ASCII, at most 63 characters);
- ``x-caas-rule: namespace`` — a DNS-1123 label that is not reserved (``default``, ``kube-*``,
  the platform's own namespaces);
- ``x-caas-rule: cpu | memory | storage`` — a Kubernetes quantity within
  ``context.quota_bounds[<rule>]``; ``x-caas-rule: quantity`` — any non-negative quantity.

A page may also declare derived values, computed from validated answers and checked like fields:
``x-caas-derived: {namespace: {value: "{team}-{name}", x-caas-rule: namespace}}``. They are
added to the returned answers (the renderer passes the returned answers as the cookiecutter
context) and may not be submitted.

Backstage ignores ``x-`` keys and the portal fills the two pickers, so the same schema registers
in Backstage unchanged. Whatever the schema says, every string is refused if it holds control or
invisible formatting characters, template markers (``{{``, ``{%``, ``{#``) or more than
``context.max_string_length`` characters: answers are data and must never look like code.
"""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jsonschema

from gitops.quantity import parse_quantity
from portal.errors import ValidationFailed
from scaffolder.checks.answer_rules import apply_rule, check_rules, check_strings, rule_of
from scaffolder.pattern_words import in_words

DEFAULT_PLATFORM_NAMESPACES = frozenset(
    {
        "argocd",
        "cert-manager",
        "external-dns",
        "ingress-nginx",
        "karpenter",
        "cilium",
        "gatekeeper-system",
        "monitoring",
        "opentelemetry",
        "keycloak",
        "caas-portal",
    }
)
DEFAULT_QUOTA_BOUNDS: Mapping[str, tuple[str, str]] = {
    "cpu": ("100m", "64"),
    "memory": ("128Mi", "256Gi"),
    "storage": ("1Gi", "10Ti"),
}
# The largest integer an answer may hold (int64, as Kubernetes and the YAML peers read it).
MAX_INTEGER = 2**63 - 1
# Whole answer documents above this size are refused before anything walks them.
MAX_ANSWERS_BYTES = 64 * 1024
# No template nests deeper than a few levels; deeper input is refused before any recursion.
MAX_DEPTH = 10


@dataclass(frozen=True)
class ParameterContext:
    """What answers are checked against; built per request from the catalog and settings."""

    teams: frozenset[str] = frozenset()
    environments: frozenset[str] = frozenset()
    reserved_namespaces: frozenset[str] = DEFAULT_PLATFORM_NAMESPACES
    quota_bounds: Mapping[str, tuple[str, str]] = field(
        default_factory=lambda: dict(DEFAULT_QUOTA_BOUNDS)
    )
    max_string_length: int = 1024


def parse_quota_bounds(text: str) -> dict[str, tuple[str, str]]:
    """``"cpu=100m..64,memory=128Mi..256Gi"`` → ``{"cpu": ("100m", "64"), ...}`` (the setting).

    ``ValueError`` names the entry that is not ``kind=min..max`` with quantities, min <= max.
    """
    bounds: dict[str, tuple[str, str]] = {}
    for entry in filter(None, (part.strip() for part in text.split(","))):
        kind, _, span = entry.partition("=")
        low, _, high = span.partition("..")
        try:
            if not kind.strip() or parse_quantity(low.strip()) > parse_quantity(high.strip()):
                raise ValueError("min is above max")
        except ValueError as exc:
            raise ValueError(f"quota bound {entry!r} is not kind=min..max ({exc})") from exc
        bounds[kind.strip()] = (low.strip(), high.strip())
    return bounds


def parameter_context(
    *,
    teams: frozenset[str],
    environments: frozenset[str],
    quota_bounds: str | None = None,
    reserved_namespaces: str = "",
) -> ParameterContext:
    """A context from the catalog's choices and the two settings (``quota_bounds``,
    ``reserved_namespaces``)."""
    extra = frozenset(n.strip() for n in reserved_namespaces.split(",") if n.strip())
    return ParameterContext(
        teams=teams,
        environments=environments,
        reserved_namespaces=DEFAULT_PLATFORM_NAMESPACES | extra,
        quota_bounds=(
            parse_quota_bounds(quota_bounds) if quota_bounds is not None else DEFAULT_QUOTA_BOUNDS
        ),
    )


@dataclass(frozen=True)
class FieldSpec:
    """One form field, as the UI needs it."""

    name: str
    title: str
    type: str
    description: str = ""
    default: object = None
    enum: tuple[object, ...] | None = None
    required: bool = False
    pattern: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    max_length: int | None = None
    ui_field: str | None = None
    ui_widget: str | None = None
    rule: str | None = None
    items: Mapping[str, Any] | None = None
    page: str = ""
    # The property's whole JSON Schema (row editors read ``propertyNames``,
    # ``additionalProperties`` and item ``properties`` from it).
    schema: Mapping[str, Any] = field(default_factory=dict, compare=False)


def merged_schema(parameters: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Fold the form pages into one object schema that refuses unknown fields."""
    pages: Sequence[Mapping[str, Any]] = (
        [parameters] if isinstance(parameters, Mapping) else list(parameters)
    )
    properties: dict[str, Any] = {}
    required: list[str] = []
    for page in pages:
        for name, prop in (page.get("properties") or {}).items():
            properties[name] = prop
        required.extend(r for r in page.get("required") or [] if r not in required)
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def derived_values(
    parameters: Mapping[str, Any] | Sequence[Mapping[str, Any]],
) -> dict[str, Mapping[str, Any]]:
    """The ``x-caas-derived`` declarations of every page, by name."""
    pages: Sequence[Mapping[str, Any]] = (
        [parameters] if isinstance(parameters, Mapping) else list(parameters)
    )
    derived: dict[str, Mapping[str, Any]] = {}
    for page in pages:
        derived.update(page.get("x-caas-derived") or {})
    return derived


def form_fields(parameters: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> list[FieldSpec]:
    """The top-level fields of every page, in the order the form shows them."""
    pages: Sequence[Mapping[str, Any]] = (
        [parameters] if isinstance(parameters, Mapping) else list(parameters)
    )
    fields: list[FieldSpec] = []
    for page in pages:
        required = set(page.get("required") or [])
        for name, prop in (page.get("properties") or {}).items():
            enum = prop.get("enum")
            fields.append(
                FieldSpec(
                    name=name,
                    title=str(prop.get("title") or name),
                    type=str(prop.get("type") or "string"),
                    description=str(prop.get("description") or ""),
                    default=copy.deepcopy(prop.get("default")),
                    enum=tuple(enum) if enum is not None else None,
                    required=name in required,
                    pattern=prop.get("pattern"),
                    minimum=prop.get("minimum"),
                    maximum=prop.get("maximum"),
                    max_length=prop.get("maxLength"),
                    ui_field=prop.get("ui:field"),
                    ui_widget=prop.get("ui:widget"),
                    rule=rule_of(prop),
                    items=prop.get("items"),
                    page=str(page.get("title") or ""),
                    schema=copy.deepcopy(dict(prop)),
                )
            )
    return fields


def validate_answers(
    parameters: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    answers: Mapping[str, object],
    *,
    context: ParameterContext,
) -> dict[str, object]:
    """The answers with defaults and derived values; ``ValidationFailed`` for the first problem."""
    if not isinstance(answers, Mapping):
        raise ValidationFailed("answers must be an object", field="answers", rule="type")
    if _depth(answers) > MAX_DEPTH:
        raise ValidationFailed(
            f"answers are nested deeper than {MAX_DEPTH} levels", field="answers", rule="max-depth"
        )
    try:
        size = len(json.dumps(answers))
    except (TypeError, ValueError) as exc:
        raise ValidationFailed(
            "answers must be plain JSON data", field="answers", rule="type"
        ) from exc
    if size > MAX_ANSWERS_BYTES:
        raise ValidationFailed(
            f"answers are too large ({size} bytes, limit {MAX_ANSWERS_BYTES})",
            field="answers",
            rule="max-size",
        )
    schema = merged_schema(parameters)
    properties: dict[str, Any] = schema["properties"]
    derived = derived_values(parameters)
    for name in answers:
        if name not in properties or name in derived:
            raise ValidationFailed(
                f"{_show(name)}: unknown field (additionalProperties is false)",
                field=str(name),
                rule="additionalProperties",
            )
    normalised: dict[str, object] = {}
    for name, prop in properties.items():
        if name in answers:
            # ``null`` is a value like any other: refused by the schema unless it allows it,
            # never silently replaced by the default.
            _refuse_non_finite(name, answers[name])
            normalised[name] = copy.deepcopy(answers[name])
        elif "default" in prop:
            normalised[name] = copy.deepcopy(prop["default"])

    errors = _schema_errors(schema, normalised)
    for name, prop in properties.items():
        if name not in normalised:
            if name in errors:
                raise errors[name]
            continue
        value = normalised[name]
        check_strings(name, value, prop, context)
        if name in errors:
            raise errors[name]
        check_rules(name, value, prop, context)
    for name, spec in derived.items():
        try:
            value = str(spec["value"]).format_map(normalised)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValidationFailed(
                f"{name}: cannot be derived from the answers ({exc})", field=name, rule="derived"
            ) from exc
        apply_rule(name, name, value, spec, context)
        normalised[name] = value
    return normalised


def _schema_errors(
    schema: Mapping[str, Any], answers: Mapping[str, object]
) -> dict[str, ValidationFailed]:
    """The first JSON Schema error per top-level field."""
    validator = jsonschema.Draft202012Validator(schema)
    found: dict[str, ValidationFailed] = {}
    for error in sorted(validator.iter_errors(answers), key=lambda e: list(map(str, e.path))):
        if error.validator == "required" and not error.path:
            match = re.match(r"^'(.+)' is a required property$", error.message)
            name = match.group(1) if match else "answers"
            found.setdefault(
                name, ValidationFailed(f"{name}: is required", field=name, rule="required")
            )
            continue
        if not error.path:
            continue
        name = str(error.path[0])
        rule = str(error.validator)
        where = ".".join(str(p) for p in error.path)
        found.setdefault(
            name, ValidationFailed(f"{where}: {_explain(error)} ({rule})", field=name, rule=rule)
        )
    return found


def _explain(error: jsonschema.ValidationError) -> str:
    """A short message that never echoes a long hostile value back."""
    rule = error.validator
    spec: Any = error.validator_value
    if rule == "pattern":
        schema = error.schema if isinstance(error.schema, Mapping) else {}
        limit = schema.get("maxLength")
        return in_words(str(spec), max_length=limit if isinstance(limit, int) else None)
    if rule == "enum":
        return "must be one of " + ", ".join(str(option) for option in list(spec))
    if rule == "maxLength":
        return f"must be at most {spec} characters"
    if rule == "minLength":
        return f"must be at least {spec} characters"
    if rule == "maximum":
        return f"must be at most {spec}"
    if rule == "minimum":
        return f"must be at least {spec}"
    if rule == "type":
        return f"must be of type {spec}"
    if rule == "maxItems":
        return f"must have at most {spec} items"
    if rule == "minItems":
        return f"must have at least {spec} items"
    if rule == "uniqueItems":
        return "must not repeat items"
    if rule == "additionalProperties":
        return "has unknown fields"
    message = str(error.message)
    return message if len(message) <= 200 else message[:200] + "…"


def _refuse_non_finite(name: str, value: object) -> None:
    """JSON has no NaN or infinity, but Python's parser reads ``NaN``, ``Infinity`` and
    ``1e309`` (as ``inf``); such a number is refused naming the field (RFC 8259 §6), and so is
    an integer beyond 64 bits (what JSON-reading peers, YAML and Kubernetes can hold)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValidationFailed(f"{name}: must be a finite number (finite)", field=name,
                               rule="finite")
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INTEGER:
        raise ValidationFailed(f"{name}: must be between -(2^63-1) and 2^63-1 (int64)",
                               field=name, rule="int64")
    if isinstance(value, Mapping):
        for item in value.values():
            _refuse_non_finite(name, item)
    elif isinstance(value, list | tuple):
        for item in value:
            _refuse_non_finite(name, item)


def _depth(value: object, level: int = 0) -> int:
    """Nesting depth, stopping as soon as it passes ``MAX_DEPTH`` (no deep recursion)."""
    if level > MAX_DEPTH:
        return level
    if isinstance(value, Mapping):
        return max((_depth(v, level + 1) for v in value.values()), default=level + 1)
    if isinstance(value, list | tuple):
        return max((_depth(v, level + 1) for v in value), default=level + 1)
    return level


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
