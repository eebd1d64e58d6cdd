"""The catalog as Backstage entities (``backstage.io/v1alpha1``) that a Backstage instance
ingests unchanged: every entity passes catalog-model's kind validators and the catalog's default
entity policies (``SchemaValidEntityPolicy``, ``DefaultNamespaceEntityPolicy``,
``NoForeignRootFieldsEntityPolicy``, ``FieldFormatEntityPolicy``; tests/backstage runs them).

Relations are not written: Backstage computes ``relations`` (a root field it refuses on input)
from the spec fields its ``BuiltinKindsEntityProcessor`` reads — ``spec.owner`` (ownedBy/ownerOf),
``spec.system`` (partOf/hasPart), ``spec.dependsOn`` (dependsOn/dependencyOf), Group
``spec.members``/``spec.children``/``spec.parent`` and User ``spec.memberOf``
(memberOf/hasMember, childOf/parentOf). Every entity ref in those fields resolves inside the
export: the ``platform`` Group (owner of the ``caas`` System) is always present, owners that no
team defines get a Group marked ``caas.io/implied: "true"``, and ``dependsOn`` names only
exported entities.

Mapping: team → Group (+ a User per owner/member), tenant namespace → Resource
(type ``kubernetes-namespace``), environment → Resource (type ``environment``), application →
Component, and one System ``caas`` that every tenant and application is part of.
``to_yaml`` writes the multi-document YAML a Backstage ``url`` Location reads
(``GET /api/catalog/backstage.yaml``).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from catalog.models import Entity, Kind
from gitops import yaml
from portal.errors import ValidationFailed

API_VERSION = "backstage.io/v1alpha1"
SYSTEM = "caas"
PLATFORM_GROUP = "platform"


def ref(kind: str, name: str) -> str:
    return f"{kind.lower()}:default/{name}"


def _metadata(name: str, *, key: str, title: str = "", description: str = "",
              tags: list[str] | None = None, annotations: dict[str, str] | None = None
              ) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "default"}
    if title:
        meta["title"] = title
    if description:
        meta["description"] = description
    meta["annotations"] = {"caas.io/entity": key, **(annotations or {})}
    if tags:
        meta["tags"] = tags
    return meta


class _Export:
    """Entities by ref, in a stable order."""

    def __init__(self) -> None:
        self.entities: dict[str, dict[str, Any]] = {}

    def add(self, kind: str, metadata: dict[str, Any], spec: dict[str, Any]) -> str:
        entity_ref = ref(kind, metadata["name"])
        self.entities[entity_ref] = {"apiVersion": API_VERSION, "kind": kind,
                                     "metadata": metadata, "spec": spec}
        return entity_ref

    def ensure_group(self, name: str) -> str:
        """A Group the export refers to; implied (and marked) when no team defines it."""
        group = ref("Group", name)
        if group not in self.entities:
            self.add("Group", _metadata(
                name, key=f"team:{name}", annotations={"caas.io/implied": "true"},
                description="Referred to by the platform; not defined under teams/ yet."),
                {"type": "team", "children": []})
        return group

    def export(self) -> list[dict[str, Any]]:
        return [self.entities[r] for r in sorted(self.entities)]


def resource_name(row: Entity) -> str:
    spec = row.spec or {}
    if row.kind == Kind.namespace:
        return str(spec.get("catalog_name") or spec.get("namespace") or row.name.split("/")[-1])
    if row.kind == Kind.application:
        team, _, app = row.name.partition("/")
        return str(spec.get("catalog_name") or f"{team}-{app}")
    return row.name


def _teams(out: _Export, rows: list[Entity]) -> dict[str, set[str]]:
    users: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        spec = row.spec or {}
        if row.kind != Kind.team:
            continue
        owners = list(spec.get("owners") or [])
        members = owners + [m for m in spec.get("members") or [] if m not in owners]
        profile = {"displayName": row.title or row.name}
        if spec.get("email"):
            profile["email"] = spec["email"]
        out.add("Group", _metadata(
            row.name, key=row.key, title=row.title, description=row.description,
            annotations={"caas.io/keycloak-group": str(spec.get("keycloak_group", "")),
                         "caas.io/cost-center": str(spec.get("cost_center", ""))}),
            {"type": "team", "profile": profile, "children": [], "members": members})
        for user in members:
            users[user].add(row.name)
    return users


def build(rows: list[Entity]) -> list[dict[str, Any]]:
    """Policy-valid entities for the rows on main (shapes: Backstage's descriptor format)."""
    out = _Export()
    on_main = [r for r in rows if r.on_main]
    by_key = {r.key: r for r in on_main}
    users = _teams(out, on_main)
    out.add("System", _metadata(SYSTEM, key="system:caas", title="CaaS platform",
                                description="Tenants and applications run by the "
                                "Container-as-a-Service platform"),
            {"owner": out.ensure_group(PLATFORM_GROUP)})
    for row in on_main:
        spec = row.spec or {}
        if row.kind == Kind.environment:
            out.add("Resource", _metadata(
                row.name, key=row.key, title=row.title, description=row.description,
                tags=[t for t in (spec.get("tier"), spec.get("provider")) if t]),
                {"type": "environment",
                 "owner": out.ensure_group(row.owner or PLATFORM_GROUP)})
    environments = set(out.entities)
    for row in on_main:
        spec = row.spec or {}
        if row.kind == Kind.namespace:
            envs = [ref("Resource", e) for e in sorted(spec.get("environments") or {})]
            out.add("Resource", _metadata(
                resource_name(row), key=row.key, title=row.title, description=row.description,
                annotations={"backstage.io/kubernetes-namespace":
                             str(spec.get("namespace", ""))},
                tags=["namespace", "tenant"]),
                {"type": "kubernetes-namespace", "owner": out.ensure_group(row.owner),
                 "system": SYSTEM, "dependsOn": [e for e in envs if e in environments]})
    for row in on_main:
        spec = row.spec or {}
        if row.kind == Kind.application:
            tenant = by_key.get(f"namespace:{spec.get('team') or row.owner}/"
                                f"{spec.get('tenant', '')}")
            depends = [ref("Resource", resource_name(tenant))] if tenant else []
            system = str(spec.get("system") or SYSTEM)
            out.add("Component", _metadata(
                resource_name(row), key=row.key, title=row.title, description=row.description,
                annotations={"argocd/app-name": resource_name(row)}),
                {"type": spec.get("type") or "service",
                 "lifecycle": spec.get("lifecycle") or "production",
                 "owner": out.ensure_group(row.owner),
                 "system": system if ref("System", system) in out.entities else SYSTEM,
                 "dependsOn": [d for d in depends if d in out.entities]})
    for user, teams in users.items():
        out.add("User", _metadata(user, key=f"user:{user}"),
                {"profile": {"displayName": user},
                 "memberOf": [ref("Group", t) for t in sorted(teams)]})
    return out.export()


def to_yaml(entities: list[dict[str, Any]]) -> str:
    """Multi-document YAML (``---`` between entities), as a Backstage ``url`` Location reads."""
    return yaml.dump_all(entities, sort_keys=False)


FILTER_FIELDS = ("kind", "metadata.name", "metadata.namespace", "spec.type", "spec.owner")
_CONDITION = r"\s*(?:" + "|".join(f.replace(".", r"\.") for f in FILTER_FIELDS) + r")\s*=[^,]*"
FILTER_PATTERN = rf"^{_CONDITION}(?:,{_CONDITION})*$"
"""One ``filter=`` value: ``<field>=<value>`` conditions joined by commas (the API declares it)."""


def _parse_filters(filters: list[str]) -> list[dict[str, str]]:
    """Backstage's ``filter=kind=component,spec.type=service`` (AND within, OR across)."""
    parsed = []
    for text in filters:
        conditions: dict[str, str] = {}
        for part in text.split(","):
            name, sep, value = part.partition("=")
            if not sep or name.strip() not in FILTER_FIELDS:
                raise ValidationFailed(
                    f"filter {part!r} must be <field>=<value> with field kind, metadata.name, "
                    "metadata.namespace, spec.type or spec.owner", field="filter", rule="filter")
            conditions[name.strip()] = value.strip().lower()
        parsed.append(conditions)
    return parsed


def _matches(entity: dict[str, Any], conditions: dict[str, str]) -> bool:
    for name, value in conditions.items():
        head, _, field = name.partition(".")
        actual = entity.get(head) if not field else (entity.get(head) or {}).get(field)
        if str(actual or "").lower() != value:
            return False
    return True


def export(session: Session, *, filters: list[str] | None = None, offset: int = 0,
           limit: int | None = None) -> list[dict[str, Any]]:
    parsed = _parse_filters(filters or [])
    if offset < 0:
        raise ValidationFailed("offset must be 0 or more", field="offset", rule="range")
    if limit is not None and limit < 1:
        raise ValidationFailed("limit must be 1 or more", field="limit", rule="range")
    rows = list(session.execute(select(Entity).where(col(Entity.on_main))
                                .order_by(col(Entity.key))).scalars())
    entities = build(rows)
    if parsed:
        entities = [e for e in entities if any(_matches(e, c) for c in parsed)]
    end = None if limit is None else offset + limit
    return entities[offset:end]
