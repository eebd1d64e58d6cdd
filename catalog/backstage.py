"""The catalog as Backstage entities (``backstage.io/v1alpha1``), shaped like the responses of
Backstage's catalog API (``GET /api/catalog/entities``): metadata, spec and the computed
``relations`` in both directions, so a Backstage instance can ingest it unchanged.

Mapping: team → Group (+ a User per owner/member), tenant namespace → Resource
(type ``kubernetes-namespace``), environment → Resource (type ``environment``), application →
Component, and one System ``caas`` that every tenant and application is part of.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from catalog.models import Entity, Kind
from portal.errors import ValidationFailed

API_VERSION = "backstage.io/v1alpha1"
SYSTEM = "caas"
PLATFORM_GROUP = "platform"
REVERSE = {"ownedBy": "ownerOf", "partOf": "hasPart", "dependsOn": "dependencyOf",
           "memberOf": "hasMember"}
_NS = uuid.UUID("6f0c1f56-7d0b-4c64-9d7e-0c5a7f3c2a11")


def ref(kind: str, name: str) -> str:
    return f"{kind.lower()}:default/{name}"


def _metadata(name: str, *, key: str, title: str = "", description: str = "",
              tags: list[str] | None = None, annotations: dict[str, str] | None = None
              ) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "default",
                            "uid": str(uuid.uuid5(_NS, key))}
    if title:
        meta["title"] = title
    if description:
        meta["description"] = description
    meta["annotations"] = {"caas.io/entity": key, **(annotations or {})}
    if tags:
        meta["tags"] = tags
    return meta


class _Graph:
    """Collects entities and adds each relation together with its reverse."""

    def __init__(self) -> None:
        self.entities: dict[str, dict[str, Any]] = {}
        self.relations: dict[str, set[tuple[str, str]]] = defaultdict(set)

    def add(self, kind: str, metadata: dict[str, Any], spec: dict[str, Any]) -> str:
        entity_ref = ref(kind, metadata["name"])
        self.entities[entity_ref] = {"apiVersion": API_VERSION, "kind": kind,
                                     "metadata": metadata, "spec": spec}
        return entity_ref

    def relate(self, source: str, rel: str, target: str) -> None:
        self.relations[source].add((rel, target))
        if rel in REVERSE:
            self.relations[target].add((REVERSE[rel], source))

    def export(self) -> list[dict[str, Any]]:
        out = []
        for entity_ref in sorted(self.entities):
            entity = self.entities[entity_ref]
            entity["relations"] = [
                {"type": rel, "targetRef": target,
                 "target": dict(zip(("kind", "namespace", "name"),
                                    _split_ref(target), strict=True))}
                for rel, target in sorted(self.relations.get(entity_ref, ()))
                if target in self.entities]
            out.append(entity)
        return out


def _split_ref(entity_ref: str) -> tuple[str, str, str]:
    kind, _, rest = entity_ref.partition(":")
    namespace, _, name = rest.partition("/")
    return kind, namespace, name


def resource_name(row: Entity) -> str:
    spec = row.spec or {}
    if row.kind == Kind.namespace:
        return str(spec.get("catalog_name") or spec.get("namespace") or row.name.split("/")[-1])
    if row.kind == Kind.application:
        team, _, app = row.name.partition("/")
        return str(spec.get("catalog_name") or f"{team}-{app}")
    return row.name


def build(rows: list[Entity]) -> list[dict[str, Any]]:
    graph = _Graph()
    on_main = [r for r in rows if r.on_main]
    by_key = {r.key: r for r in on_main}
    system = graph.add("System", _metadata(SYSTEM, key="system:caas", title="CaaS platform",
                                           description="Tenants and applications run by the "
                                           "Container-as-a-Service platform"),
                       {"owner": ref("Group", PLATFORM_GROUP)})
    graph.relate(system, "ownedBy", ref("Group", PLATFORM_GROUP))
    users: dict[str, set[str]] = defaultdict(set)
    for row in on_main:
        spec = row.spec or {}
        if row.kind == Kind.team:
            members = sorted(set(spec.get("members") or []) | set(spec.get("owners") or []))
            profile = {"displayName": row.title or row.name}
            if spec.get("email"):
                profile["email"] = spec["email"]
            group = graph.add("Group", _metadata(
                row.name, key=row.key, title=row.title, description=row.description,
                annotations={"caas.io/keycloak-group": str(spec.get("keycloak_group", "")),
                             "caas.io/cost-center": str(spec.get("cost_center", ""))}),
                {"type": "team", "profile": profile, "children": [], "members": members})
            for user in members:
                users[user].add(row.name)
                graph.relate(ref("User", user), "memberOf", group)
        elif row.kind == Kind.environment:
            graph.add("Resource", _metadata(
                row.name, key=row.key, title=row.title, description=row.description,
                tags=[t for t in (spec.get("tier"), spec.get("provider")) if t]),
                {"type": "environment", "owner": ref("Group", row.owner or PLATFORM_GROUP)})
    for row in on_main:
        spec = row.spec or {}
        owner = ref("Group", row.owner)
        if row.kind == Kind.namespace:
            envs = [ref("Resource", e) for e in sorted(spec.get("environments") or {})]
            res = graph.add("Resource", _metadata(
                resource_name(row), key=row.key, title=row.title, description=row.description,
                annotations={"backstage.io/kubernetes-namespace":
                             str(spec.get("namespace", ""))},
                tags=["namespace", "tenant"]),
                {"type": "kubernetes-namespace", "owner": owner, "system": SYSTEM,
                 "dependsOn": envs})
            graph.relate(res, "ownedBy", owner)
            graph.relate(res, "partOf", system)
            for env in envs:
                graph.relate(res, "dependsOn", env)
        elif row.kind == Kind.application:
            tenant = by_key.get(f"namespace:{spec.get('team') or row.owner}/"
                                f"{spec.get('tenant', '')}")
            depends = [ref("Resource", resource_name(tenant))] if tenant else []
            comp = graph.add("Component", _metadata(
                resource_name(row), key=row.key, title=row.title, description=row.description,
                annotations={"argocd/app-name": resource_name(row)}),
                {"type": spec.get("type") or "service",
                 "lifecycle": spec.get("lifecycle") or "production", "owner": owner,
                 "system": spec.get("system") or SYSTEM, "dependsOn": depends})
            graph.relate(comp, "ownedBy", owner)
            graph.relate(comp, "partOf", ref("System", spec.get("system") or SYSTEM))
            for dep in depends:
                graph.relate(comp, "dependsOn", dep)
    for user, teams in users.items():
        graph.add("User", _metadata(user, key=f"user:{user}"),
                  {"profile": {"displayName": user},
                   "memberOf": [ref("Group", t) for t in sorted(teams)]})
    return graph.export()


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
