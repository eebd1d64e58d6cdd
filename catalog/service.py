"""The catalog's write side, as other packages call it.

- the scaffolder: ``set_status(..., "requested")`` when a PR opens, ``"merged"`` when it merges,
  ``"closed"`` when it is closed unmerged; ``record_timeline`` for PR events;
- the reconciler: ``index_commit`` after each merge, ``set_status`` applying/applied/failed and
  synced/out-of-sync/healthy/degraded, ``record_timeline`` for jobs;
- ``caas catalog reindex``: ``reindex``;
- request forms: ``form_choices`` (``catalog.choices``: what the choosers offer).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime

from sqlmodel import Session, col, select

from catalog import search
from catalog.choices import FormChoices, form_choices
from catalog.indexer import IndexResult, full_index, incremental_index
from catalog.models import Entity, Kind, Status, TimelineEvent
from gitops import layout
from gitops.gitreader import TreeSource
from portal.auth import git_members
from portal.db import utcnow
from portal.errors import ValidationFailed

__all__ = [
    "ENTITY_KEY_PATTERN",
    "FormChoices",
    "IndexResult",
    "entities_for_paths",
    "form_choices",
    "index_commit",
    "record_timeline",
    "reindex",
    "set_status",
    "sync_memberships",
    "validate_key",
]

ENTITY_KEY_PATTERN = (r"^(?:(team|environment):([A-Za-z0-9][A-Za-z0-9._-]{0,99})"
                      r"|(namespace|application):([A-Za-z0-9][A-Za-z0-9._-]{0,99})"
                      r"/([A-Za-z0-9][A-Za-z0-9._-]{0,99}))$")
_KEY = re.compile(ENTITY_KEY_PATTERN)
CLOSED = "closed"  # set_status value: the PR was closed without merging
SYNC = frozenset({"synced", "out-of-sync"})
HEALTH = frozenset({"healthy", "degraded", "progressing", "missing", "unknown"})
STATUSES = frozenset(s.value for s in Status) | {CLOSED} | SYNC | HEALTH
# Only the indexer decommissions (the entity's files left main): nobody sets it by hand.
SETTABLE = STATUSES - {Status.decommissioned.value}


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

    A ``decommissioned`` entity (the indexer's verdict: its files left main) keeps that status
    whatever its removal jobs report (their steps are on its timeline); only ``requested`` (a
    PR re-creating the name) moves it, and ``closed`` brings it back.
    """
    kind, name = validate_key(entity)
    if status not in SETTABLE:
        raise ValidationFailed(f"status {status!r} must be one of {', '.join(sorted(SETTABLE))}",
                               field="status", rule="enum")
    row = session.exec(select(Entity).where(Entity.key == entity)).first()
    if (row is not None and row.status == Status.decommissioned
            and status != Status.requested):
        if commit:
            session.commit()
        return
    if status == CLOSED:
        if row is not None and row.status == Status.requested:
            if row.previous_status == Status.decommissioned:
                row.status, row.previous_status = Status.decommissioned.value, ""
                session.add(row)
                search.delete_terms(session, [row.key])  # search hides decommissioned rows
            elif not row.on_main:
                session.delete(row)
                search.delete_terms(session, [row.key])
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
        if row.id is None or row.status == Status.decommissioned:  # findable (again)
            search.replace_terms(session, row)
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
    given (after a merge), every entity otherwise; then bring the memberships of the teams it
    touched in step with their team.yaml (:func:`sync_memberships`). Commits the session."""
    if changed is None:
        result = full_index(session, source=forge, commit=commit)
    else:
        result = incremental_index(session, source=forge, commit=commit,
                                   keys=entities_for_paths(changed))
    sync_memberships(session, result=result)
    return result


def reindex(session: Session, *, forge: TreeSource, ref: str = "main") -> IndexResult:
    """Rebuild the whole catalog from the head of ``ref`` (``caas catalog reindex``), and every
    team's memberships from its team.yaml."""
    result = full_index(session, source=forge, commit=forge.head(ref))
    sync_memberships(session, result=result)
    return result


def sync_memberships(session: Session, *, result: IndexResult) -> dict[str, list[str]]:
    """Team roles from git: for each team the index added or changed, its owners become
    reviewers and its members developers (``portal.auth.git_members.sync_team``); a removed team
    loses its memberships. A team.yaml declaring nobody leaves the memberships to
    ``caas team add``. A full index also forgets teams no longer on main. Commits; returns the
    changes per team."""
    keys = [k for k in result.added + result.changed if k.startswith("team:")]
    gone = {k.partition(":")[2] for k in result.removed if k.startswith("team:")}
    changes: dict[str, list[str]] = {}
    rows = [row for i in range(0, len(keys), 500) for row in session.exec(
        select(Entity).where(col(Entity.key).in_(keys[i:i + 500]))).all()]
    present: set[str] = set()
    for row in rows:
        if not row.on_main:
            continue
        present.add(row.name)
        owners = [str(o) for o in row.spec.get("owners", [])]
        members = [str(m) for m in row.spec.get("members", [])]
        if owners or members:
            changes[row.name] = git_members.sync_team(session, team=row.name, owners=owners,
                                                      members=members, commit=result.commit)
        else:
            gone_rows = git_members.team_declared(session, team=row.name)
            if gone_rows:  # declared before, declares nobody now: `caas team add` takes over
                git_members.forget_declarations(session, team=row.name)
    if result.full:
        gone |= git_members.declared_teams(session) - present
    for team in sorted(gone):
        changes[team] = git_members.forget_team(session, team=team, commit=result.commit)
    session.commit()
    return changes
