"""The platform's rules for answers, beyond JSON Schema (used by ``scaffolder.parameters``).

Public functions (``context`` is anything shaped like ``scaffolder.parameters.ParameterContext``):

- ``rule_of(prop) -> str | None`` — the rule a schema property declares (``x-caas-rule``, or a
  ``ui:field`` picker: ``TeamPicker`` → ``team``, ``EnvironmentPicker`` → ``environment``).
- ``check_strings(name, value, prop, context)`` — every string in the value (keys too): length
  cap, no template markers, no control (C0, C1), surrogate, private-use, unassigned or invisible
  formatting character, no line or paragraph separator (``ui:widget: textarea`` allows newlines
  and tabs; the joiners ZWJ/ZWNJ are allowed). Every string that passes is printable for YAML
  (YAML 1.2 §5.1 c-printable), so templates can write it into a double-quoted scalar.
- ``check_rules(name, value, prop, context)`` — ``dns-label``, ``namespace`` (plus reserved
  names), ``new-team`` (a namespace-safe name that ``portal.groups.check_team_name``
  accepts: no reserved group suffix), ``team``, ``environment``, ``cpu``/``memory``/``storage``
  (quantity within bounds), ``quantity``, applied through arrays, ``propertyNames`` and
  nested objects.
- ``apply_rule(field, where, value, prop, context)`` — one rule on one scalar.

Each raises ``ValidationFailed`` naming the top-level field and the rule.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator, Mapping
from typing import Any, Protocol

from gitops.names import DNS_LABEL_MAX, is_dns_label
from gitops.quantity import parse_quantity
from portal.errors import ValidationFailed
from portal.groups import check_team_name

ALWAYS_RESERVED = frozenset({"default", "kube"})
RESERVED_PREFIXES = ("kube-",)
_TEMPLATE_MARKERS = ("{{", "{%", "{#", "${{")
_PICKER_RULES = {"TeamPicker": "team", "EnvironmentPicker": "environment"}
_MULTILINE_WIDGETS = {"textarea"}
_JOINERS = "\u200c\u200d"


class RuleContext(Protocol):
    """What the rules read; ``ParameterContext`` provides it."""

    @property
    def teams(self) -> frozenset[str]: ...
    @property
    def environments(self) -> frozenset[str]: ...
    @property
    def reserved_namespaces(self) -> frozenset[str]: ...
    @property
    def quota_bounds(self) -> Mapping[str, tuple[str, str]]: ...
    @property
    def max_string_length(self) -> int: ...


def rule_of(prop: Mapping[str, Any]) -> str | None:
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


def check_strings(name: str, value: object, prop: Mapping[str, Any], context: RuleContext) -> None:
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
            # Joiners are format characters that scripts and emoji sequences need (Persian
            # ZWNJ, 👩‍💻's ZWJ); they are printable for YAML and render nothing else.
            allowed = (multiline and char in "\n\t") or char in _JOINERS
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


def check_rules(name: str, value: object, prop: Mapping[str, Any], context: RuleContext) -> None:
    """Apply the platform rules (``x-caas-rule`` / pickers) through arrays and objects."""
    apply_rule(name, name, value, prop, context)
    if isinstance(value, list):
        items = prop.get("items")
        for index, item in enumerate(value):
            # A picker on the array itself (Backstage style) applies to every item.
            if rule_of(prop) is not None:
                apply_rule(name, f"{name}[{index}]", item, prop, context)
            if isinstance(items, Mapping):
                _check_rules_nested(name, f"{name}[{index}]", item, items, context)
    elif isinstance(value, Mapping):
        _check_object(name, name, value, prop, context)


def _check_rules_nested(
    field_name: str, where: str, value: object, prop: Mapping[str, Any], context: RuleContext
) -> None:
    apply_rule(field_name, where, value, prop, context)
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
    context: RuleContext,
) -> None:
    names = prop.get("propertyNames")
    properties = prop.get("properties") or {}
    extra = prop.get("additionalProperties")
    for key, item in value.items():
        if isinstance(names, Mapping):
            apply_rule(field_name, f"{where} key {key}", key, names, context)
        sub = properties.get(key, extra if isinstance(extra, Mapping) else None)
        if isinstance(sub, Mapping):
            _check_rules_nested(field_name, f"{where}.{key}", item, sub, context)


def apply_rule(
    field_name: str, where: str, value: object, prop: Mapping[str, Any], context: RuleContext
) -> None:
    rule = rule_of(prop)
    if rule is None or isinstance(value, list | Mapping):
        return
    if rule in {"dns-label", "namespace", "new-team", "team", "environment"}:
        _check_dns_label(field_name, where, value, rule)
        text = str(value)
        if rule == "new-team":  # a team's groups are derived from its name: the group rule
            check_team_name(text, field=field_name)
        if rule in {"namespace", "new-team"}:
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
    if not is_dns_label(value):
        raise ValidationFailed(
            f"{where}: must be a DNS-1123 label: lower-case letters, digits and '-', "
            "starting and ending with a letter or digit (dns-1123)",
            field=field_name,
            rule="dns-1123",
        )


def _check_quantity(
    field_name: str, where: str, value: object, rule: str, context: RuleContext
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
