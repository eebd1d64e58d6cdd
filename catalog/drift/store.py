"""Findings kept between runs, so pages, badges and metrics read rows instead of checking.

``save(session, result, commit=..., entities=None)`` makes the stored findings of one side
equal to ``result``: a difference found again keeps its row (``first_seen`` and a fix note
stay), a new one is added, one no longer found is deleted. ``entities`` limits that to some
entities (a re-check after a fix). A side that could not look (not connected, not
configured, failed) keeps no findings: what it said before is no longer known. Idempotent:
saving the same result twice leaves the same rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from sqlalchemy import delete
from sqlmodel import Session, col, select

from catalog.drift.models import (
    DriftFinding,
    DriftSideState,
    DriftUnit,
    Finding,
    SideResult,
    UnitCache,
)
from portal.db import utcnow

CHUNK = 500


def _kind(entity: str) -> str:
    return entity.partition(":")[0]


def save(session: Session, result: SideResult, *, commit: str,
         entities: Iterable[str] | None = None, now: datetime | None = None) -> None:
    """Store one side's result (see the module docstring); commits."""
    apply(session, result, commit=commit, entities=entities, now=now)
    session.commit()


def apply(session: Session, result: SideResult, *, commit: str,
          entities: Iterable[str] | None = None, now: datetime | None = None) -> None:
    """``save`` without the commit: a run writes all its sides in one transaction."""
    now = now or utcnow()
    side = result.side.value
    scope = set(entities) if entities is not None else None
    query = select(DriftFinding).where(DriftFinding.side == side)
    existing = {(r.entity, r.subject): r for r in session.exec(query).all()
                if scope is None or r.entity in scope}
    found: dict[tuple[str, str], Finding] = {}
    if result.status == "checked":
        for f in result.findings:
            if scope is None or f.entity in scope:
                found.setdefault((f.entity, f.subject), f)
    for key, row in existing.items():
        if key not in found:
            session.delete(row)
    for key, f in found.items():
        row = existing.get(key) or DriftFinding(entity=f.entity, kind=_kind(f.entity),
                                                side=side, subject=f.subject, first_seen=now)
        if row.id is not None and (row.what != f.what or row.detail != f.detail):
            row.fix_note = ""  # a different difference: an earlier fix note no longer applies
        row.team, row.state, row.what, row.detail = f.team, f.state.value, f.what, f.detail
        row.fix, row.fix_target, row.last_seen = f.fix.value, f.fix_target, now
        session.add(row)
    state = session.get(DriftSideState, side) or DriftSideState(side=side)
    if scope is None:
        state.status, state.commit, state.checked = result.status, commit, result.checked
        state.seconds, state.checked_at = result.seconds, now
        session.add(state)


def load_cache(session: Session) -> dict[str, UnitCache]:
    """The git side's per-unit cache: folder → ``UnitCache``."""
    return {u.unit: UnitCache(fingerprint=u.fingerprint, template_version=u.template_version,
                              findings=list(u.findings), render_key=u.render_key,
                              rendered=dict(u.rendered or {}))
            for u in session.exec(select(DriftUnit)).all()}


def save_cache(session: Session, old: Mapping[str, UnitCache],
               new: Mapping[str, UnitCache], *, commit: bool = True) -> None:
    """Write only the entries that changed; drop units no longer on main. Commits unless
    ``commit`` is False (a run writes it with its findings)."""
    gone = sorted(set(old) - set(new))
    for i in range(0, len(gone), CHUNK):
        session.execute(delete(DriftUnit).where(col(DriftUnit.unit).in_(gone[i:i + CHUNK])))
    for unit, entry in new.items():
        if old.get(unit) == entry:
            continue
        row = (session.get(DriftUnit, unit) if unit in old else None) or DriftUnit(
            unit=unit, fingerprint="")
        row.fingerprint, row.template_version = entry.fingerprint, entry.template_version
        row.findings, row.render_key = entry.findings, entry.render_key
        row.rendered = entry.rendered
        session.add(row)
    if commit:
        session.commit()
