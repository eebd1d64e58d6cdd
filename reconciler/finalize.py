"""A merge's final state: ``applied`` when every job of its commit succeeded (or was skipped),
``failed`` otherwise — and the catalog shows it on the merge's entities.

Every path that ends a merge's last job calls ``finalize`` in the transaction that ends the job:
a job finishing or failing (``worker._finish``), a dependant failed at claim because its upstream
unit did not succeed, a job found dead at claim (its worker died on the last attempt)
(``queue.claim``). ``sweep`` is the safety net a worker runs periodically: any merge still
``recorded``/``planned`` whose jobs are all terminal is finalised.
"""

from __future__ import annotations

import logging

from sqlalchemy import exists
from sqlmodel import Session, col, select

from catalog import service as catalog_service
from catalog.models import Entity
from portal.db import utcnow
from reconciler.models import DONE_OK, TERMINAL, Job, MergeRecord, MergeState

log = logging.getLogger("caas.reconciler.finalize")
_TERMINAL = [s.value for s in TERMINAL]
SWEEP_BATCH = 200


def finalize(session: Session, *, commit: str) -> str | None:
    """When every job of ``commit`` is terminal: the merge becomes ``applied`` or ``failed`` (also
    when its plan job failed, so nothing was planned) and its existing entities take that status.

    The merge row is locked first (PostgreSQL ``FOR UPDATE``; SQLite serialises writers) so two
    workers ending the last two jobs at once cannot both miss the moment. Does not commit.
    Returns the new state when it changed, else None.
    """
    stmt = select(MergeRecord).where(MergeRecord.commit == commit)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    record = session.exec(stmt).first()
    if record is None or record.state == MergeState.refused.value:
        return None
    states = session.exec(select(Job.state).where(Job.commit == commit)).all()
    if not states or any(s not in _TERMINAL for s in states):
        return None
    final = (MergeState.applied if all(s in DONE_OK for s in states) else MergeState.failed).value
    if record.state == final:
        return None
    record.state, record.finished_at = final, utcnow()
    session.add(record)
    _catalog_status(session, list(record.entities), final)
    return final


def _catalog_status(session: Session, entities: list[str], state: str) -> None:
    """``applied``/``failed`` on the merge's entities that exist (an entity the merge removed
    stays removed). In a savepoint: catalog bookkeeping never undoes the merge's state."""
    if not entities:
        return
    status = "applied" if state == MergeState.applied.value else "failed"
    try:
        with session.begin_nested():
            for entity in session.exec(select(Entity.key).where(
                    col(Entity.key).in_(entities)).order_by(col(Entity.key))).all():
                catalog_service.set_status(session, entity=entity, status=status)
    except Exception:
        log.warning("catalog status of a finalised merge failed", exc_info=True)


def sweep(session: Session) -> list[str]:
    """Finalise every ``recorded``/``planned`` merge whose jobs are all terminal; commits.
    Returns the commits finalised (normally none: every path finalises on its own)."""
    open_job = exists().where(col(Job.commit) == col(MergeRecord.commit),
                              col(Job.state).not_in(_TERMINAL))
    any_job = exists().where(col(Job.commit) == col(MergeRecord.commit))
    commits = session.exec(
        select(MergeRecord.commit).where(
            col(MergeRecord.state).in_([MergeState.recorded.value, MergeState.planned.value]),
            any_job, ~open_job).order_by(col(MergeRecord.id)).limit(SWEEP_BATCH)).all()
    done = [commit for commit in commits if finalize(session, commit=commit) is not None]
    session.commit()
    if done:
        log.warning("sweep finalised %d merge(s) no job had finalised: %s", len(done),
                    ", ".join(c[:12] for c in done))
    return done

