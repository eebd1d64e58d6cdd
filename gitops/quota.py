"""ResourceQuota totals: what a namespace may reserve, in exact integers.

``limits(docs, problems)`` and ``quota_total(content)`` return ``{"cpu": millicores,
"memory": bytes, "storage": bytes}`` for the resources the quotas bound (a resource no quota
bounds is absent). The reading follows the Kubernetes API server
(https://kubernetes.io/docs/concepts/policy/resource-quotas/):

- only ``kind: ResourceQuota`` documents count; ``spec.hard`` keys ``requests.cpu`` (or ``cpu``),
  ``requests.memory`` (or ``memory``) and ``requests.storage``;
- documents with the same ``metadata.name`` are one object: a later document (a second ``apply``
  of the file, or a kustomize patch of the same quota) replaces the values it sets;
- distinct quota objects are each enforced by quota admission, so a namespace can reserve at
  most the smallest hard limit set for a resource;
- quotas restricted by ``scopes`` or ``scopeSelector`` bound only some pods, never the namespace.

Quantities are parsed by ``gitops.quantity`` (CPU rounded up to whole millicores, bytes rounded
up), so sums over many namespaces stay exact. A quantity that is not one is reported in
``problems`` (``"<where>: spec.hard.<key>: <reason>"``) and left out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from gitops import yaml
from gitops.quantity import QuantityError, cpu_milli, to_bytes

RESOURCES = ("cpu", "memory", "storage")
KEYS: Mapping[str, tuple[str, ...]] = {"cpu": ("requests.cpu", "cpu"),
                                       "memory": ("requests.memory", "memory"),
                                       "storage": ("requests.storage",)}


def amount(resource: str, value: object) -> int:
    """One quantity in the unit ``limits`` uses for ``resource`` (millicores for ``cpu``, bytes
    otherwise); ``QuantityError`` for junk or a negative amount."""
    return cpu_milli(value) if resource == "cpu" else to_bytes(value)


def _map(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def limits(docs: Iterable[Mapping[str, Any]], *, problems: list[str] | None = None,
           where: str = "") -> dict[str, int]:
    """The namespace-wide hard limits of the ResourceQuota documents in ``docs``."""
    objects: dict[str, dict[str, int]] = {}
    for doc in docs:
        spec = _map(doc.get("spec"))
        if doc.get("kind") != "ResourceQuota" or spec.get("scopes") or spec.get("scopeSelector"):
            continue
        name = str(_map(doc.get("metadata")).get("name") or "")
        hard = _map(spec.get("hard"))
        values = objects.setdefault(name, {})
        for resource, aliases in KEYS.items():
            alias = next((a for a in aliases if a in hard), None)
            if alias is None:
                continue
            try:
                values[resource] = amount(resource, hard[alias])
            except QuantityError as exc:
                if problems is not None:
                    problems.append(f"{where}: spec.hard.{alias}: {exc}")
    total: dict[str, int] = {}
    for values in objects.values():
        for resource, bound in values.items():
            total[resource] = min(bound, total.get(resource, bound))
    return total


def quota_total(content: bytes | str, *, problems: list[str] | None = None,
                where: str = "") -> dict[str, int]:
    """``limits`` of the documents of one YAML file; unreadable YAML bounds nothing."""
    try:
        docs = yaml.load_all(content)
    except yaml.YamlError as exc:
        if problems is not None:
            problems.append(f"{where}: {exc}")
        return {}
    return limits((d for d in docs if isinstance(d, Mapping)), problems=problems, where=where)
