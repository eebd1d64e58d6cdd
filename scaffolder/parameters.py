"""Server-side validation of template answers, and form fields, from one JSON Schema.

A template's ``spec.parameters`` (Backstage ``scaffolder.backstage.io/v1beta3``) is either one
JSON Schema object or a list of them (form pages). Both the portal's form and this validator read
it, so what the form offers and what the server accepts cannot drift apart.

Public API:

- ``ParameterContext`` — what the answers are checked against: the user's existing teams, the
  existing environments, reserved namespace names, quantity bounds, the string length cap.
- ``validate_answers(parameters, answers, *, context) -> dict[str, object]`` — normalised answers
  (defaults applied) or ``ValidationFailed(message, field=..., rule=...)`` for the FIRST problem,
  fields checked in the order the form shows them.
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
import re
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jsonschema

from portal.errors import ValidationFailed
from scaffolder.quantity import parse_quantity

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_LABEL_MAX = 63
ALWAYS_RESERVED = frozenset({"default", "kube"})
RESERVED_PREFIXES = ("kube-",)
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
_TEMPLATE_MARKERS = ("{{", "{%", "{#", "${{")
# Whole answer documents above this size are refused before anything walks them.
MAX_ANSWERS_BYTES = 64 * 1024
# No template nests deeper than a few levels; deeper input is refused before any recursion.
MAX_DEPTH = 10
_PICKER_RULES = {"TeamPicker": "team", "EnvironmentPicker": "environment"}
_MULTILINE_WIDGETS = {"textarea"}


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
                    rule=_rule_of(prop),
                    items=prop.get("items"),
                    page=str(page.get("title") or ""),
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
        if name in answers and answers[name] is not None:
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
        _check_strings(name, value, prop, context)
        if name in errors:
            raise errors[name]
        _check_rules(name, value, prop, context)
    for name, spec in derived.items():
        try:
            value = str(spec["value"]).format_map(normalised)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValidationFailed(
                f"{name}: cannot be derived from the answers ({exc})", field=name, rule="derived"
            ) from exc
        _apply_rule(name, name, value, spec, context)
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
        return f"must match the pattern {spec}"
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


def _rule_of(prop: Mapping[str, Any]) -> str | None:
    rule = prop.get("x-caas-rule")
    if rule is not None:
        return str(rule)
    return _PICKER_RULES.get(str(prop.get("ui:field")))


def _walk_strings(value: object, path: str) -> Iterator[tuple[str, str]]:
    """Every string in ``value`` (object keys included) with where it sits."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield f"{path}.{key}", str(key)
            yield from _walk_strings(item, f"{path}.{key}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _walk_strings(item, f"{path}[{index}]")


def _check_strings(
    name: str, value: object, prop: Mapping[str, Any], context: ParameterContext
) -> None:
    multiline = prop.get("ui:widget") in _MULTILINE_WIDGETS
    for where, text in _walk_strings(value, name):
        if len(text) > context.max_string_length:
            raise ValidationFailed(
                f"{where}: must be at most {context.max_string_length} characters (max-length)",
                field=name,
                rule="max-length",
            )
        for marker in _TEMPLATE_MARKERS:
            if marker in text:
                raise ValidationFailed(
                    f"{where}: must not contain the template marker {marker!r} (no-template)",
                    field=name,
                    rule="no-template",
                )
        for char in text:
            allowed = multiline and char in "\n\t"
            category = unicodedata.category(char)
            if not allowed and (
                category in {"Cc", "Cf", "Cs", "Co", "Cn"} or char in "\u2028\u2029"
            ):
                raise ValidationFailed(
                    f"{where}: must not contain control or invisible characters "
                    f"(U+{ord(char):04X}) (no-control-characters)",
                    field=name,
                    rule="no-control-characters",
                )


def _check_rules(
    name: str, value: object, prop: Mapping[str, Any], context: ParameterContext
) -> None:
    """Apply the platform rules (``x-caas-rule`` / pickers) through arrays and objects."""
    _apply_rule(name, name, value, prop, context)
    if isinstance(value, list):
        items = prop.get("items")
        for index, item in enumerate(value):
            # A picker on the array itself (Backstage style) applies to every item.
            if _rule_of(prop) is not None:
                _apply_rule(name, f"{name}[{index}]", item, prop, context)
            if isinstance(items, Mapping):
                _check_rules_nested(name, f"{name}[{index}]", item, items, context)
    elif isinstance(value, Mapping):
        _check_object(name, name, value, prop, context)


def _check_rules_nested(
    field_name: str, where: str, value: object, prop: Mapping[str, Any], context: ParameterContext
) -> None:
    _apply_rule(field_name, where, value, prop, context)
    if isinstance(value, Mapping):
        _check_object(field_name, where, value, prop, context)
    elif isinstance(value, list) and isinstance(prop.get("items"), Mapping):
        for index, item in enumerate(value):
            _check_rules_nested(field_name, f"{where}[{index}]", item, prop["items"], context)


def _check_object(
    field_name: str,
    where: str,
    value: Mapping[str, object],
    prop: Mapping[str, Any],
    context: ParameterContext,
) -> None:
    names = prop.get("propertyNames")
    properties = prop.get("properties") or {}
    extra = prop.get("additionalProperties")
    for key, item in value.items():
        if isinstance(names, Mapping):
            _apply_rule(field_name, f"{where} key {key}", key, names, context)
        sub = properties.get(key, extra if isinstance(extra, Mapping) else None)
        if isinstance(sub, Mapping):
            _check_rules_nested(field_name, f"{where}.{key}", item, sub, context)


def _apply_rule(
    field_name: str, where: str, value: object, prop: Mapping[str, Any], context: ParameterContext
) -> None:
    rule = _rule_of(prop)
    if rule is None or isinstance(value, list | Mapping):
        return
    if rule in {"dns-label", "namespace", "team", "environment"}:
        _check_dns_label(field_name, where, value, rule)
        text = str(value)
        if rule == "namespace":
            reserved = ALWAYS_RESERVED | context.reserved_namespaces
            if text in reserved or text.startswith(RESERVED_PREFIXES):
                raise ValidationFailed(
                    f"{where}: {text!r} is a reserved namespace name (reserved-name)",
                    field=field_name,
                    rule="reserved-name",
                )
        elif rule == "team" and text not in context.teams:
            raise ValidationFailed(
                f"{where}: {text!r} is not an existing team you belong to (team)",
                field=field_name,
                rule="team",
            )
        elif rule == "environment" and text not in context.environments:
            raise ValidationFailed(
                f"{where}: {text!r} is not an existing environment (environment)",
                field=field_name,
                rule="environment",
            )
        return
    if rule in {"cpu", "memory", "storage", "quantity"}:
        _check_quantity(field_name, where, value, rule, context)
        return
    raise ValidationFailed(
        f"{where}: the template uses an unknown rule {rule!r}", field=field_name, rule="schema"
    )


def _check_dns_label(field_name: str, where: str, value: object, rule: str) -> None:
    if not isinstance(value, str):
        raise ValidationFailed(f"{where}: must be a string (type)", field=field_name, rule="type")
    if not value.isascii():
        raise ValidationFailed(
            f"{where}: must be plain ASCII, no look-alike characters (dns-1123)",
            field=field_name,
            rule="dns-1123",
        )
    if len(value) > DNS_LABEL_MAX:
        raise ValidationFailed(
            f"{where}: must be at most {DNS_LABEL_MAX} characters (dns-1123)",
            field=field_name,
            rule="dns-1123",
        )
    if not DNS_LABEL.fullmatch(value):
        raise ValidationFailed(
            f"{where}: must be a DNS-1123 label: lower-case letters, digits and '-', "
            "starting and ending with a letter or digit (dns-1123)",
            field=field_name,
            rule="dns-1123",
        )


def _check_quantity(
    field_name: str, where: str, value: object, rule: str, context: ParameterContext
) -> None:
    try:
        amount = parse_quantity(value)
    except ValueError as exc:
        raise ValidationFailed(
            f"{where}: must be a Kubernetes quantity such as 500m, 2 or 4Gi (quantity)",
            field=field_name,
            rule="quantity",
        ) from exc
    if amount < 0:
        raise ValidationFailed(
            f"{where}: must not be negative (quantity)", field=field_name, rule="quantity"
        )
    bounds = context.quota_bounds.get(rule)
    if bounds is None:
        return
    low, high = bounds
    if amount < parse_quantity(low) or amount > parse_quantity(high):
        raise ValidationFailed(
            f"{where}: {value} is outside the allowed {rule} range {low}..{high} (quantity-bounds)",
            field=field_name,
            rule="quantity-bounds",
        )
