"""One entity in full: relations both ways, quota, cost, capacity and its timeline."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session, col

from catalog.cost import PriceSheet
from catalog.models import Entity, Kind, Relation, Status, TimelineEvent
from catalog.query import (
    cost_rollup,
    get_row,
    namespace_cost,
    placement_sums,
    quota_view,
    tiers,
)
from portal.db import aware

MAX_INCOMING = 200  # an environment hosts thousands of tenants: the list API pages those
TIMELINE = 100
REVERSE = {"ownedBy": "ownerOf", "runsIn": "hosts", "deployedTo": "hosts"}


def _relations(session: Session, key: str) -> dict[str, Any]:
    outgoing = session.execute(select(col(Relation.type), col(Relation.target)).where(
        col(Relation.source) == key).order_by(col(Relation.type), col(Relation.target))).all()
    incoming = session.execute(select(col(Relation.type), col(Relation.source)).where(
        col(Relation.target) == key).order_by(col(Relation.type), col(Relation.source))
        .limit(MAX_INCOMING + 1)).all()
    counts = dict(session.execute(select(col(Relation.type), func.count()).where(
        col(Relation.target) == key).group_by(col(Relation.type))).all())
    items = [{"type": t, "target": target} for t, target in outgoing]
    items += [{"type": REVERSE.get(t, f"{t}-of"), "target": source}
              for t, source in incoming[:MAX_INCOMING]]
    return {"items": items, "incoming_counts": {REVERSE.get(t, t): int(n)
                                                for t, n in counts.items()},
            "truncated": len(incoming) > MAX_INCOMING}


def _timeline(session: Session, key: str) -> list[dict[str, Any]]:
    rows = session.execute(select(TimelineEvent).where(col(TimelineEvent.entity) == key)
                           .order_by(col(TimelineEvent.at).desc(), col(TimelineEvent.id).desc())
                           .limit(TIMELINE)).scalars().all()
    return [{"event": e.event, "actor": e.actor, "at": aware(e.at).isoformat(),
             "detail": e.detail} for e in rows]


def capacity(session: Session, env: Entity) -> dict[str, Any]:
    """Sum of the tenants' quotas in ``env`` against the capacity its infra.yaml declares."""
    used = placement_sums(session, env=env.name).get(
        env.name, {"namespaces": 0, "cpu_milli": 0, "memory_bytes": 0, "storage_bytes": 0})
    declared = (env.spec or {}).get("capacity") or {}
    out: dict[str, Any] = {"namespaces": used["namespaces"]}
    for name, unit in (("cpu_milli", "cpu"), ("memory_bytes", "memory_gib"),
                       ("storage_bytes", "storage_gib")):
        u = quota_view({name: used[name]})[unit]
        d = quota_view({name: int(declared.get(name, 0))})[unit]
        out[unit] = {"used": u, "declared": d,
                     "percent": round(100 * u / d, 1) if d else None,
                     "over": bool(d) and u > d}
    return out


def entity_detail(session: Session, *, key: str, prices: PriceSheet,
                  live: dict[str, Any] | None = None) -> dict[str, Any]:
    row = get_row(session, key)
    spec = row.spec or {}
    detail: dict[str, Any] = {
        "key": row.key, "kind": row.kind, "name": row.name, "title": row.title,
        "owner": row.owner, "description": row.description, "status": row.status,
        "previous_status": row.previous_status, "sync": row.sync, "health": row.health,
        "on_main": row.on_main, "flagged": row.flagged, "orphaned": row.orphaned,
        "problems": row.problems, "path": row.path, "commit": row.commit, "spec": spec,
        "created_at": aware(row.created_at).isoformat(),
        "updated_at": aware(row.updated_at).isoformat(),
        "decommissioned_at": (aware(row.decommissioned_at).isoformat()
                              if row.decommissioned_at else None),
        "relations": _relations(session, key), "timeline": _timeline(session, key),
        "live": live if live is not None else {"connected": False, "message": "not connected"},
    }
    env_tiers = tiers(session)
    if row.kind == Kind.namespace:
        total, per_env = namespace_cost(spec, env_tiers, prices)
        detail["quota"] = {env: {**quota_view(q), "tier": env_tiers.get(env, ""),
                                 "monthly_cost": per_env[env]}
                           for env, q in sorted((spec.get("environments") or {}).items())}
        detail["cost"] = {"currency": prices.currency, "monthly_total": total,
                          "environments": per_env}
    elif row.kind == Kind.team:
        detail["cost"] = cost_rollup(placement_sums(session, owner=row.name), env_tiers, prices)
        detail["counts"] = dict(session.execute(
            select(col(Entity.kind), func.count()).where(
                col(Entity.owner) == row.name, col(Entity.kind) != Kind.team,
                col(Entity.status) != Status.decommissioned.value)
            .group_by(col(Entity.kind))).all())
    elif row.kind == Kind.environment:
        detail["cost"] = cost_rollup(placement_sums(session, env=row.name), env_tiers, prices)
        detail["capacity"] = capacity(session, row)
        tier = str(spec.get("tier", ""))
        price = prices.for_tier(tier)
        detail["prices"] = None if price is None else {
            "tier": tier, "cpu": price.cpu, "memory_gib": price.memory_gib,
            "storage_gib": price.storage_gib, "currency": prices.currency}
    return detail
