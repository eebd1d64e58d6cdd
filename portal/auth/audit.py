"""The audit log: append-only records of who did what, when, from where, and the outcome.

Only ``record`` writes; nothing in the code updates or deletes an audit row.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from portal.auth.models import AuditEvent
from portal.redact import redact_mapping

log = logging.getLogger("caas.audit")

OUTCOMES = ("success", "failure", "denied", "skipped")
CSV_COLUMNS = ["id", "at", "actor", "action", "target", "outcome", "ip", "detail"]


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    target: str = "",
    outcome: str = "success",
    ip: str = "",
    detail: dict[str, Any] | None = None,
    commit: bool = True,
) -> AuditEvent:
    """Append one event. ``commit=False`` lets the caller make it part of its own transaction."""
    detail = dict(detail or {})
    if outcome not in OUTCOMES:
        # Keep the filter vocabulary closed (success | failure | denied | skipped) without
        # losing words.
        detail.setdefault("outcome", outcome)
        outcome = "denied" if outcome in ("refused", "forbidden") else "failure"
    event = AuditEvent(
        actor=actor[:64], action=action[:64], target=target[:300], outcome=outcome,
        ip=ip[:64], detail=redact_mapping(detail),
    )
    session.add(event)
    if commit:
        session.commit()
    log.info("audit", extra={"actor": event.actor, "action": action, "target": event.target,
                             "outcome": outcome, "ip": ip})
    return event


def query(
    session: Session,
    *,
    actor: str | None = None,
    action: str | None = None,
    outcome: str | None = None,
    target: str | None = None,
    ip: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> Sequence[AuditEvent]:
    stmt = select(AuditEvent)
    if actor:
        stmt = stmt.where(AuditEvent.actor == actor)
    if action:
        stmt = stmt.where(col(AuditEvent.action).startswith(action))
    if outcome:
        stmt = stmt.where(AuditEvent.outcome == outcome)
    if target:
        stmt = stmt.where(col(AuditEvent.target).contains(target))
    if ip:
        stmt = stmt.where(AuditEvent.ip == ip)
    if since:
        stmt = stmt.where(col(AuditEvent.at) >= since)
    if until:
        stmt = stmt.where(col(AuditEvent.at) < until)
    if before_id:
        stmt = stmt.where(col(AuditEvent.id) < before_id)
    stmt = stmt.order_by(col(AuditEvent.id).desc()).limit(max(1, min(limit, 1000)))
    return session.exec(stmt).all()


def to_csv(events: Sequence[AuditEvent]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for e in events:
        writer.writerow([e.id, e.at.isoformat(), *(_cell(v) for v in (
            e.actor, e.action, e.target, e.outcome, e.ip,
            json.dumps(e.detail, sort_keys=True, default=str)))])
    return out.getvalue()


def _cell(value: str) -> str:
    """Neutralise spreadsheet formulas: actors and targets can be typed by anyone (a failed
    sign-in records the username as sent), and the export is opened in spreadsheets."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value
