"""Read models for the home page: my changes with their catalog state, and recent activity
across my teams (the catalog's timeline events of entities my teams own)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import or_, select
from sqlmodel import Session, col

from catalog.models import Entity, TimelineEvent
from portal.db import aware
from scaffolder.changeset import entity_for
from scaffolder.models import ChangePublic

ACTIVITY_LIMIT = 20


def entity_statuses(session: Session, keys: Iterable[str]) -> dict[str, str]:
    wanted = sorted({k for k in keys if k})
    if not wanted:
        return {}
    rows = session.execute(select(col(Entity.key), col(Entity.status))
                           .where(col(Entity.key).in_(wanted))).all()
    return dict(rows)


def my_requests(session: Session, changes: list[ChangePublic], username: str,
                limit: int = 10) -> list[dict[str, Any]]:
    """My most recent changes and where each one is: PR state, then the catalog's state."""
    mine = [c for c in changes if c.author == username][:limit]
    keys = {c.id: entity_for(c.unit_key) for c in mine}
    statuses = entity_statuses(session, keys.values())
    return [{"change": c, "entity": keys[c.id],
             "state": statuses.get(keys[c.id]) or c.status} for c in mine]


def team_activity(session: Session, teams: Iterable[str], limit: int = ACTIVITY_LIMIT
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
