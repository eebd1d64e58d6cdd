"""Read model for the home page: my changes with their catalog state. Recent activity across
my teams comes straight from ``catalog.query.team_activity``."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from catalog.query import entity_statuses
from gitops.layout import key_for_unit
from scaffolder.models import ChangePublic


def my_requests(session: Session, changes: list[ChangePublic], username: str,
                limit: int = 10) -> list[dict[str, Any]]:
    """My most recent changes and where each one is: PR state, then the catalog's state."""
    mine = [c for c in changes if c.author == username][:limit]
    keys = {c.id: key_for_unit(c.unit_key) for c in mine}
    statuses = entity_statuses(session, keys.values())
    return [{"change": c, "entity": keys[c.id],
             "state": statuses.get(keys[c.id]) or c.status} for c in mine]
