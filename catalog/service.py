"""The catalog's write side, as other packages call it.

- the scaffolder: ``set_status(..., "requested")`` when a PR opens, ``"merged"`` when it merges,
  ``"closed"`` when it is closed unmerged; ``record_timeline`` for PR events;
- the reconciler: ``index_commit`` after each merge, ``set_status`` applying/applied/failed and
  synced/out-of-sync/healthy/degraded, ``record_timeline`` for jobs;
- ``caas catalog reindex``: ``reindex``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime

from sqlmodel import Session, select

from catalog.indexer import IndexResult, full_index, incremental_index
from catalog.models import Entity, Kind, Status, TimelineEvent
from gitops import layout
from gitops.gitreader import TreeSource
from portal.db import utcnow
from portal.errors import ValidationFailed

__all__ = ["IndexResult", "entities_for_paths", "index_commit", "record_timeline", "reindex",
           "set_status", "validate_key"]

_KEY = re.compile(r"^(?:(team|environment):([A-Za-z0-9][A-Za-z0-9._-]{0,99})"
                  r"|(namespace|application):([A-Za-z0-9][A-Za-z0-9._-]{0,99})"
                  r"/([A-Za-z0-9][A-Za-z0-9._-]{0,99}))$")
CLOSED = "closed"  # set_status value: the PR was closed without merging
SYNC = frozenset({"synced", "out-of-sync"})
HEALTH = frozenset({"healthy", "degraded", "progressing", "missing", "unknown"})
STATUSES = frozenset(s.value for s in Status) | {CLOSED} | SYNC | HEALTH


def validate_key(entity: str) -> tuple[str, str]:
    """``namespace:payments/api`` → (``namespace``, ``payments/api``), or ValidationFailed."""
    match = _KEY.match(entity)
    if not match:
        raise ValidationFailed(
            f"entity {entity!r} must be team:<team>, environment:<env>, "
            "namespace:<team>/<namespace> or application:<team>/<app>",
            field="entity", rule="entity-key")
    kind = match.group(1) or match.group(3)
    name = match.group(2) or f"{match.group(4)}/{match.group(5)}"
    return kind, name


def entities_for_paths(paths: Iterable[str]) -> set[str]:
    """The entity keys that GitOps paths belong to (other paths map to nothing)."""
    return layout.keys_for_paths(paths)


def record_timeline(session: Session, *, entity: str, event: str, actor: str,
                    detail: dict[str, object] | None = None, at: datetime | None = None,
                    commit: bool = False) -> None:
    """Append one event (``pr.opened``, ``checks.failed``, ``job.finished``, …) to an entity's
    timeline. The entity need not exist yet: a PR's events precede its first index."""
    validate_key(entity)
    if not event or len(event) > 64:
        raise ValidationFailed("event must be 1-64 characters", field="event", rule="length")
    if len(actor) > 100:
        raise ValidationFailed("actor must be at most 100 characters", field="actor",
                               rule="length")
    session.add(TimelineEvent(entity=entity, event=event, actor=actor, detail=dict(detail or {}),
                              at=at or utcnow()))
    if commit:
        session.commit()
    else:
        session.flush()


def set_status(session: Session, *, entity: str, status: str, commit: bool = False) -> None:
    """Move an entity along requested → merged → applying → applied | failed.

    ``requested`` on an entity that is not on ``main`` yet creates a placeholder row, so the
    catalog shows what is on its way. ``closed`` (the PR was closed unmerged) drops
    ``requested``: a placeholder disappears, an existing entity goes back to its previous status.
    ArgoCD's ``synced``/``out-of-sync`` and ``healthy``/``degraded``/… set the sync and health
    columns of an existing entity and leave the lifecycle status alone.
    """
    kind, name = validate_key(entity)
    if status not in STATUSES:
        raise ValidationFailed(f"status {status!r} must be one of {', '.join(sorted(STATUSES))}",
                               field="status", rule="enum")
    row = session.exec(select(Entity).where(Entity.key == entity)).first()
    if status == CLOSED:
        if row is not None and row.status == Status.requested:
            if not row.on_main:
                session.delete(row)
            else:
                row.status, row.previous_status = row.previous_status, ""
                row.updated_at = utcnow()
                session.add(row)
    elif status in SYNC or status in HEALTH:
        if row is not None:
            if status in SYNC:
                row.sync = status
            else:
                row.health = status
            row.updated_at = utcnow()
            session.add(row)
    else:
        if row is None:
            owner = name.split("/", 1)[0] if kind in (Kind.namespace, Kind.application) else (
                name if kind == Kind.team else "")
            row = Entity(key=entity, kind=kind, name=name, owner=owner, title=name,
                         search=f"{name} {owner}".lower(), on_main=False)
        if status == Status.requested and row.status != Status.requested:
            row.previous_status = row.status
        row.status = status
        row.updated_at = utcnow()
        session.add(row)
    if commit:
        session.commit()
    else:
        session.flush()


def index_commit(session: Session, *, forge: TreeSource, commit: str,
                 changed: list[str] | None = None) -> IndexResult:
    """Index ``commit`` of the GitOps repository: only the entities of ``changed`` paths when
    given (after a merge), every entity otherwise. Commits the session."""
    if changed is None:
        return full_index(session, source=forge, commit=commit)
    return incremental_index(session, source=forge, commit=commit,
                             keys=entities_for_paths(changed))


def reindex(session: Session, *, forge: TreeSource, ref: str = "main") -> IndexResult:
    """Rebuild the whole catalog from the head of ``ref`` (``caas catalog reindex``)."""
    return full_index(session, source=forge, commit=forge.head(ref))
