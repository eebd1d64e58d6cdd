"""A merge's final state, in the catalog's vocabulary: ``applied`` when every job of its commit
succeeded, ``committed`` (on main, not deployed) when they all ended well but one was skipped
because its integration is not connected (no cluster for ArgoCD, no Keycloak), ``failed``
otherwise — and the catalog shows, per entity, what its own jobs did, by the same rules.

Every path that ends a merge's last job calls ``finalize`` in the transaction that ends the job:
a job finishing or failing (``worker._finish``), a dependant failed at claim because its upstream
unit did not succeed, a job found dead at claim (its worker died on the last attempt)
(``queue.claim``). ``sweep`` is the safety net a worker runs periodically: any merge still
``recorded``/``planned`` whose jobs are all terminal is finalised.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy import exists
from sqlmodel import Session, col, select

from catalog import service as catalog_service
from catalog.models import Entity
from portal.db import utcnow
from reconciler.models import (
    DONE_OK,
    PRE_MERGE,
    TERMINAL,
    Job,
    JobKind,
    JobState,
    MergeRecord,
    MergeState,
)

log = logging.getLogger("caas.reconciler.finalize")
_TERMINAL = [s.value for s in TERMINAL]
SWEEP_BATCH = 200


_OPEN_PR = (JobKind.plan_preview.value, JobKind.pr_checks.value)


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
    # An open PR's jobs (plan preview, checks) may share a sha with a fast-forward merge.
    jobs = session.exec(select(Job.kind, Job.state, Job.entities).where(
        Job.commit == commit, col(Job.kind).not_in(_OPEN_PR))).all()
    states = [state for _kind, state, _entities in jobs]
    if not states or any(s not in _TERMINAL for s in states):
        return None
    final = final_state(states)
    if record.state == final:
        return None
    record.state, record.finished_at = final, utcnow()
    session.add(record)
    _catalog_status(session, list(record.entities), final,
                    [(str(k), str(s), list(e or [])) for k, s, e in jobs])
    return final


def final_state(states: Sequence[str]) -> str:
    """The final state of a merge from its jobs' terminal states (the catalog's vocabulary:
    ``applied`` only when every job succeeded)."""
    if any(s not in DONE_OK for s in states):
        return MergeState.failed.value
    if any(s == JobState.skipped.value for s in states):
        return MergeState.committed.value
    return MergeState.applied.value


def entity_status(entity: str, merge_state: str,
                  jobs: list[tuple[str, str, list[str]]]) -> str:
    """The catalog status of ``entity`` once its merge is final: from the jobs that name it
    (``(kind, state, entities)``; plan jobs apply nothing): ``failed`` if one failed or died,
    ``committed`` if one was skipped, ``applied`` if all succeeded; the merge's state when no
    job names it."""
    own = [s for kind, s, entities in jobs if entity in entities
           and kind not in PRE_MERGE]
    if not own:
        return merge_state if merge_state in (MergeState.applied.value,
                                              MergeState.committed.value) else "failed"
    if any(s in (JobState.failed.value, JobState.dead.value) for s in own):
        return "failed"
    if any(s == JobState.skipped.value for s in own):
        return "committed"
    return "applied"


def _catalog_status(session: Session, entities: list[str], state: str,
                    jobs: list[tuple[str, str, list[str]]]) -> None:
    """Each existing entity of the merge gets :func:`entity_status` (an entity the merge removed
    stays removed). In a savepoint: catalog bookkeeping never undoes the merge's state."""
    if not entities:
        return
    try:
        with session.begin_nested():
            for entity in session.exec(select(Entity.key).where(
                    col(Entity.key).in_(entities)).order_by(col(Entity.key))).all():
                catalog_service.set_status(session, entity=entity,
                                           status=entity_status(entity, state, jobs))
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

