"""The catalog's read side: filtered, keyset-paginated lists and detail views.

Lists order by the unique entity key and continue after the last key of the previous page (an
opaque cursor), so every entity appears exactly once across pages whatever is written meanwhile,
and each page is one index range scan on both databases.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, or_, select
from sqlmodel import Session, col

from catalog import substring
from catalog.cost import PriceSheet
from catalog.models import (
    Entity,
    EntityPage,
    EntitySummary,
    Kind,
    Placement,
    Relation,
    Status,
    TimelineEvent,
)
from catalog.service import STATUSES
from portal.db import aware
from portal.errors import NotFound, ValidationFailed

MAX_LIMIT = 200
# What ``status=`` filters by: an entity status, or flagged (drift) / orphaned.
STATUS_FILTERS = tuple(sorted(STATUSES | {"flagged", "orphaned"}))
SUMMARY_COLUMNS = (
    col(Entity.key), col(Entity.kind), col(Entity.name), col(Entity.title), col(Entity.owner),
    col(Entity.description), col(Entity.status), col(Entity.sync), col(Entity.health),
    col(Entity.on_main), col(Entity.flagged), col(Entity.orphaned), col(Entity.problems),
    col(Entity.spec),
)


def encode_cursor(key: str) -> str:
    return base64.urlsafe_b64encode(f"v1:{key}".encode()).decode().rstrip("=")


# What ``encode_cursor`` produces: base64url without padding of ``v1:<key>`` ("v1:" → "djE6").
CURSOR_PATTERN = r"^djE6(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-]{2,3})?$"
CURSOR_MAX_LENGTH = 534  # at most 400 bytes of "v1:<key>" (the check below), base64url


def decode_cursor(cursor: str) -> str:
    try:
        # A key the index never held only moves the page start: no need to refuse it.
        # PostgreSQL text cannot hold NUL; no entity key contains one.
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode(
            errors="replace").replace("\x00", "")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raw = ""
    if not raw.startswith("v1:") or len(raw) > 400:
        raise ValidationFailed("cursor is not one this API returned (use next_cursor as is)",
                               field="cursor", rule="opaque-cursor")
    return raw[3:]


def _env_filter(kind: Kind, env: str) -> ColumnElement[bool]:
    """Entities that run in ``env``: its tenants, the teams owning them, apps deployed there."""
    if kind == Kind.environment:
        return col(Entity.name) == env
    if kind == Kind.namespace:
        return exists().where(and_(col(Placement.namespace) == col(Entity.key),
                                   col(Placement.environment) == env))
    if kind == Kind.team:
        return exists().where(and_(col(Placement.owner) == col(Entity.name),
                                   col(Placement.environment) == env))
    return exists().where(and_(col(Relation.source) == col(Entity.key),
                               col(Relation.type) == "deployedTo",
                               col(Relation.target) == f"environment:{env}"))


def tiers(session: Session) -> dict[str, str]:
    """Environment name → tier (a handful of rows; prices depend on it)."""
    rows = session.execute(select(col(Entity.name), col(Entity.spec)).where(
        col(Entity.kind) == Kind.environment)).all()
    return {name: str((spec or {}).get("tier", "")) for name, spec in rows}


def namespace_cost(spec: dict[str, Any], env_tiers: dict[str, str],
                   prices: PriceSheet) -> tuple[float | None, dict[str, float | None]]:
    """Monthly cost of a tenant: total and per environment (None where the tier has no price)."""
    per_env: dict[str, float | None] = {}
    for env, quota in (spec.get("environments") or {}).items():
        per_env[env] = prices.monthly(env_tiers.get(env, ""), **quota)
    known = [v for v in per_env.values() if v is not None]
    total = round(sum(known), 2) if known or not per_env else None
    return total, per_env


def list_entities(session: Session, *, kind: Kind, prices: PriceSheet, q: str | None = None,
                  owner: str | None = None, env: str | None = None, status: str | None = None,
                  limit: int = 50, cursor: str | None = None) -> EntityPage:
    """One page of ``kind``; decommissioned entities only with ``status="decommissioned"``."""
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationFailed(f"limit must be between 1 and {MAX_LIMIT}", field="limit",
                               rule="range")
    if status is not None and status not in STATUS_FILTERS:
        raise ValidationFailed(f"status must be one of {', '.join(STATUS_FILTERS)}",
                               field="status", rule="enum")
    if q is not None and len(q) > 200:
        raise ValidationFailed("q must be at most 200 characters", field="q", rule="length")
    if any(value and "\x00" in value for value in (q, owner, env)):
        # No entity holds NUL (PostgreSQL text cannot): nothing matches, on both databases.
        return EntityPage(items=[], limit=limit, next_cursor=None)
    by_id = substring.candidates(session, q) if q else None
    of_kind = col(Entity.kind) == kind
    # Rows named by the trigram index come by rowid: likely() tells SQLite's planner that the
    # kind picks most rows, so the kind index does not drive the plan instead.
    stmt = select(*SUMMARY_COLUMNS).where(of_kind if by_id is None else func.likely(of_kind))
    if by_id is not None:
        stmt = stmt.where(col(Entity.id).in_(by_id))
    if cursor:
        stmt = stmt.where(col(Entity.key) > decode_cursor(cursor))
    if q:
        stmt = stmt.where(substring.scan(q))  # the rule itself, after any index
    if owner:
        stmt = stmt.where(col(Entity.owner) == owner.split(":", 1)[-1].split("/")[-1])
    if env:
        stmt = stmt.where(_env_filter(kind, env))
    if status == "flagged":
        stmt = stmt.where(col(Entity.flagged))
    elif status == "orphaned":
        stmt = stmt.where(col(Entity.orphaned))
    elif status in ("synced", "out-of-sync"):
        stmt = stmt.where(col(Entity.sync) == status)
    elif status:
        stmt = stmt.where(col(Entity.status) == status)
    if status != Status.decommissioned:  # gone from main: shown only when asked for
        stmt = stmt.where(col(Entity.status) != Status.decommissioned.value)
    rows = session.execute(stmt.order_by(col(Entity.key)).limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    env_tiers = tiers(session) if kind == Kind.namespace else {}
    items = []
    for r in rows:
        spec = r.spec or {}
        # model_construct: the values come from our own columns; validating 50 rows per
        # request would cost more than the query.
        item = EntitySummary.model_construct(
            key=r.key, kind=r.kind, name=r.name, title=r.title, owner=r.owner,
            description=r.description, status=r.status, sync=r.sync, health=r.health,
            on_main=r.on_main, flagged=r.flagged, orphaned=r.orphaned, problems=r.problems or [],
            tier=str(spec.get("tier", "")), environments=[], monthly_cost=None)
        if kind == Kind.namespace:
            item.environments = sorted(spec.get("environments") or {})
            item.monthly_cost = namespace_cost(spec, env_tiers, prices)[0]
        elif kind == Kind.application and spec.get("environment"):
            item.environments = [str(spec["environment"])]
        items.append(item)
    return EntityPage(items=items, limit=limit,
                      next_cursor=encode_cursor(rows[-1].key) if more else None)


def get_row(session: Session, key: str) -> Entity:
    row: Entity | None = session.execute(
        select(Entity).where(col(Entity.key) == key)).scalars().first()
    if row is None:
        raise NotFound(f"no catalog entity {key}", field="key")
    return row


def quota_view(q: dict[str, int]) -> dict[str, Any]:
    return {"cpu": q.get("cpu_milli", 0) / 1000,
            "memory_gib": round(q.get("memory_bytes", 0) / 2 ** 30, 3),
            "storage_gib": round(q.get("storage_bytes", 0) / 2 ** 30, 3)}


def placement_sums(session: Session, *, owner: str | None = None,
                   env: str | None = None) -> dict[str, dict[str, int]]:
    """Quota sums per environment, over a team's tenants or one environment's tenants."""
    stmt = select(col(Placement.environment), func.count(),
                  func.sum(col(Placement.cpu_milli)), func.sum(col(Placement.memory_bytes)),
                  func.sum(col(Placement.storage_bytes))).group_by(col(Placement.environment))
    if owner is not None:
        stmt = stmt.where(col(Placement.owner) == owner)
    if env is not None:
        stmt = stmt.where(col(Placement.environment) == env)
    return {e: {"namespaces": int(n), "cpu_milli": int(c or 0), "memory_bytes": int(m or 0),
                "storage_bytes": int(s or 0)}
            for e, n, c, m, s in session.execute(stmt).all()}


def cost_rollup(sums: dict[str, dict[str, int]], env_tiers: dict[str, str],
                prices: PriceSheet) -> dict[str, Any]:
    """Per-environment quota and cost plus the total; cost is linear, so summing quotas first
    and pricing the sums equals summing the tenants' costs."""
    per_env: dict[str, Any] = {}
    total = 0.0
    for env, s in sorted(sums.items()):
        tier = env_tiers.get(env, "")
        cost = prices.monthly(tier, cpu_milli=s["cpu_milli"], memory_bytes=s["memory_bytes"],
                              storage_bytes=s["storage_bytes"])
        per_env[env] = {"tier": tier, "namespaces": s["namespaces"],
                        "requests": quota_view(s), "monthly_cost": cost}
        total += cost or 0.0
    return {"currency": prices.currency, "monthly_total": round(total, 2),
            "environments": per_env}


def entity_statuses(session: Session, keys: Iterable[str]) -> dict[str, str]:
    wanted = sorted({k for k in keys if k})
    if not wanted:
        return {}
    rows = session.execute(select(col(Entity.key), col(Entity.status))
                           .where(col(Entity.key).in_(wanted))).all()
    return dict(rows)


ACTIVITY_LIMIT = 20


def team_activity(session: Session, *, teams: Iterable[str], limit: int = ACTIVITY_LIMIT
                  ) -> list[dict[str, Any]]:
    """The newest timeline events of my teams and of everything they own."""
    names = sorted(set(teams))
    if not names:
        return []
    owned = select(col(Entity.key)).where(or_(col(Entity.owner).in_(names),
                                               col(Entity.key).in_([f"team:{t}" for t in names])))
    rows = session.execute(
        select(TimelineEvent).where(col(TimelineEvent.entity).in_(owned))
        .order_by(col(TimelineEvent.at).desc(), col(TimelineEvent.id).desc()).limit(limit)
    ).scalars().all()
    return [{"entity": e.entity, "event": e.event, "actor": e.actor,
             "at": aware(e.at).isoformat(), "detail": e.detail} for e in rows]
