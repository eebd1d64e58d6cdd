"""The job queue: enqueue, claim, heartbeat, finish.

Claiming is safe with several workers on one database:

- PostgreSQL: runnable jobs are read one at a time, oldest first, each locked as it is read
  (``SELECT … FOR UPDATE SKIP LOCKED``, runnability re-checked on the locked row), so two
  workers never take the same row, and a claim holds only the rows it looked at — never a whole
  page of candidates, which would leave the other workers finding nothing to do while it lasts.
  In the common case (the oldest unlocked job is runnable) a claim is that one read and one
  write.
- SQLite: the claim transaction starts with a write (the worker's heartbeat), which takes the
  database's single write lock before anything is read, so claims are serialised.

A job that holds an environment (Terraform units) also takes that environment's row in
``reconciler_env_locks`` with a conditional UPDATE: two applies never overlap on one
environment, and jobs of one environment run in id order (units of one commit were enqueued
upstream first; a later commit waits for the earlier one). A crashed worker's job (and its
environment lock) can be claimed again once its worker has not heart-beaten for the grace
(``worker_heartbeat_grace_s``; a running worker beats every third of it) or, for a worker that
never registered, once its lease expires.

A job terminated inside the claim (a dependant whose upstream failed, a job dead because its
worker died on the last attempt) finalises its merge in the same transaction
(``reconciler.finalize``).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import BindParameter, and_, bindparam, insert, or_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from portal import tracing
from portal.db import utcnow
from portal.redact import redact
from reconciler.finalize import finalize
from reconciler.models import DONE_OK, EnvLock, Job, JobLog, JobState, WorkerRecord

log = logging.getLogger("caas.reconciler.queue")

# How many queued rows one claim looks at before giving up; blocked jobs (waiting for their
# upstream or for their environment) are skipped over, not waited on.
CANDIDATES = 64
MAX_BACKOFF_S = 600.0
WAITING_SINCE = "waiting_since"  # Job.result key: when a waiting job began to wait (ISO 8601)

@dataclass(frozen=True)
class NewJob:
    """A job the planner wants; ``depends_on`` names a unit of the same commit."""

    unit: str
    kind: str
    environment: str | None = None
    depends_on: str | None = None
    payload: dict[str, Any] = field(default_factory=dict)
    entities: tuple[str, ...] = ()


def enqueue(session: Session, *, commit: str, jobs: list[NewJob],
            change_number: int | None = None) -> list[Job]:
    """Insert the jobs that do not exist yet for ``commit`` (idempotent; caller commits): one
    ``INSERT … ON CONFLICT DO NOTHING RETURNING`` for all of them, so a concurrent planner
    inserting the same (commit, unit) first is no error. Returns the jobs inserted here."""
    if not jobs:
        return []
    # The trace of the merge (or of the plan job) continues in the worker that runs it.
    carrier = tracing.inject()
    rows: list[dict[str, Any]] = []
    seen: dict[str, None] = {}
    for new in jobs:
        if new.unit in seen:
            continue
        seen[new.unit] = None
        payload = {**new.payload, tracing.CARRIER_KEY: carrier} if carrier else new.payload
        rows.append(Job(commit=commit, unit=new.unit, kind=new.kind, environment=new.environment,
                        depends_on=new.depends_on, payload=payload, entities=list(new.entities),
                        change_number=change_number).model_dump(exclude={"id"}))
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = (insert(Job).values(rows).on_conflict_do_nothing(index_elements=["commit", "unit"])
            .returning(Job))
    created = list(session.scalars(stmt).all())
    order = {unit: i for i, unit in enumerate(seen)}  # dicts keep the first-seen order
    return sorted(created, key=lambda job: order[job.unit])


def backoff(attempts: int, base: float) -> float:
    """Exponential: base, 2·base, 4·base, … capped."""
    return float(min(base * (2 ** max(0, attempts - 1)), MAX_BACKOFF_S))


# ---- workers ------------------------------------------------------------------------------------


def register_worker(session: Session, *, worker_id: str, hostname: str, pid: int) -> None:
    session.add(WorkerRecord(id=worker_id, hostname=hostname, pid=pid))
    session.commit()


def stop_worker(session: Session, *, worker_id: str) -> None:
    session.execute(update(WorkerRecord).where(col(WorkerRecord.id) == worker_id)
                    .values(stopped_at=utcnow()))
    session.commit()


def _touch_worker(session: Session, worker_id: str, now: datetime) -> None:
    session.execute(update(WorkerRecord).where(col(WorkerRecord.id) == worker_id)
                    .values(last_seen_at=now))


# ---- claim --------------------------------------------------------------------------------------


def claim(session: Session, *, worker_id: str, lease_s: float, max_attempts: int,
          grace_s: float | None = None, touch: bool = True,
          on_claim: Callable[[Session, Job], None] | None = None,
          on_end: Callable[[Session, Job], None] | None = None) -> Job | None:
    """Take the oldest runnable job, or None. Commits; ``on_claim`` (the job taken) and
    ``on_end`` (each job ended here: failed upstream, dead) add their own writes to the same
    transaction (the worker's catalog bookkeeping).

    A running job is runnable again when its lease expired or (with ``grace_s``) when its
    worker's last heartbeat is older than ``grace_s`` seconds or that worker has stopped.
    ``touch`` writes the worker's heartbeat first; on PostgreSQL a worker that beat recently
    may skip it (SQLite always writes first: see the module docstring).

    Round trips on PostgreSQL when the oldest unlocked candidate is runnable: one statement
    finds it, locks it and reads its upstream unit's state; one writes the claim."""
    now = utcnow()
    postgres = session.get_bind().dialect.name == "postgresql"
    if touch or not postgres:
        _touch_worker(session, worker_id, now)  # first statement writes: see the module docstring
    params: dict[str, Any] = {"now": now}
    if grace_s is not None:
        params["silent_since"] = now - timedelta(seconds=grace_s)
    expires = now + timedelta(seconds=lease_s)
    # Jobs of one environment run in id order: once one is blocked, the later ones are too.
    blocked_envs: set[str] = set()
    for job, upstream in _candidates(session, params, blocked_envs, postgres):
        if job.environment in blocked_envs:
            continue
        if job.state == JobState.running.value and job.attempts >= max_attempts:
            # Its worker died on the last attempt: no further attempt is allowed.
            _release_env(session, job)
            _terminate(job, JobState.dead,
                       f"worker {job.lease_owner} died on the last attempt", now)
            session.add(JobLog(job_id=job.id or 0, level="error", message=job.message))
            if on_end is not None:
                on_end(session, job)
            finalize(session, commit=job.commit)
            continue
        verdict = _upstream(job, upstream)
        if verdict == "blocked":
            if job.environment:
                blocked_envs.add(job.environment)
            continue
        if verdict == "failed":
            _terminate(job, JobState.failed, f"upstream unit {job.depends_on} did not succeed",
                       now)
            session.add(JobLog(job_id=job.id or 0, level="error", message=job.message))
            if on_end is not None:
                on_end(session, job)
            finalize(session, commit=job.commit)
            continue
        if job.environment and not _take_env(session, job, worker_id, now, expires):
            blocked_envs.add(job.environment)
            continue
        if job.state == JobState.running.value:
            session.add(JobLog(job_id=job.id or 0, level="warning", message=(
                f"reclaimed from worker {job.lease_owner} (no heartbeat within the grace or "
                "lease expired)")))
        job.state = JobState.running.value
        job.attempts += 1
        job.lease_owner = worker_id
        job.lease_expires_at = expires
        job.started_at = now
        job.finished_at = None
        session.add(job)
        if on_claim is not None:
            on_claim(session, job)
        session.commit()
        return job
    session.commit()
    return None


@functools.cache
def _candidate_query(*, grace: bool, postgres: bool, blocked: bool) -> Any:
    """The statement :func:`_candidates` runs, built once per shape (building it was a good
    part of a claim's CPU); its values are parameters: ``now``, ``silent_since`` (with
    ``grace``: a worker silent since then, or stopped, has abandoned its jobs), on PostgreSQL
    ``after`` (the last id looked at) and, with ``blocked``, ``blocked`` (the environments
    found blocked)."""
    now: BindParameter[Any] = bindparam("now")  # typed by the columns it is compared with
    abandoned = col(Job.lease_expires_at) < now
    if grace:
        silent = select(WorkerRecord.id).where(or_(
            col(WorkerRecord.last_seen_at) < bindparam("silent_since"),
            col(WorkerRecord.stopped_at).is_not(None)))
        abandoned = or_(abandoned, col(Job.lease_owner).in_(silent))
    runnable = or_(
        and_(col(Job.state) == JobState.queued.value, col(Job.not_before) <= now),
        and_(col(Job.state) == JobState.running.value, abandoned),
    )
    upstream = aliased(Job)
    upstream_state = (select(upstream.state)
                      .where(upstream.commit == Job.commit, upstream.unit == Job.depends_on)
                      .scalar_subquery())
    stmt = select(Job, upstream_state).where(runnable).order_by(col(Job.id))
    if not postgres:
        return stmt.limit(CANDIDATES)
    stmt = stmt.where(col(Job.id) > bindparam("after"))
    if blocked:
        stmt = stmt.where(or_(col(Job.environment).is_(None),
                              col(Job.environment).not_in(bindparam("blocked",
                                                                    expanding=True))))
    return (stmt.limit(1).with_for_update(skip_locked=True, of=Job)
            .execution_options(populate_existing=True))


def _candidates(session: Session, params: dict[str, Any], blocked_envs: set[str],
                postgres: bool) -> Iterator[tuple[Job, str | None]]:
    """Runnable jobs oldest first, each with its upstream unit's state (None: no upstream, or
    none of that name), at most ``CANDIDATES``.

    PostgreSQL: one at a time, each locked as it is read (``FOR UPDATE OF … SKIP LOCKED``,
    runnability evaluated on the locked row), so two workers never take the same row and a
    worker holds only the rows it has looked at, never a page it has not; environments found
    blocked (``blocked_envs``, filled by the caller) are left out of the next read. SQLite (one
    writer, already holding the lock): one read of the page."""
    grace = "silent_since" in params
    if not postgres:
        yield from session.execute(_candidate_query(grace=grace, postgres=False, blocked=False),
                                   params).all()
        return
    after = 0
    for _ in range(CANDIDATES):
        stmt = _candidate_query(grace=grace, postgres=True, blocked=bool(blocked_envs))
        values = {**params, "after": after}
        if blocked_envs:
            values["blocked"] = sorted(blocked_envs)
        row = session.execute(stmt, values).first()
        if row is None:
            return
        yield row
        after = row[0].id or 0


def _upstream(job: Job, state: str | None) -> str:
    """``ok``, ``blocked`` or ``failed`` from the state of the unit ``job`` depends on."""
    if not job.depends_on or state is None or state in DONE_OK:
        return "ok"
    if state in (JobState.failed.value, JobState.dead.value):
        return "failed"
    return "blocked"


def _take_env(session: Session, job: Job, worker_id: str, now: datetime,
              expires: datetime) -> bool:
    env = job.environment or ""
    earlier = session.exec(
        select(Job.id).where(Job.environment == env, col(Job.id) < (job.id or 0),
                             col(Job.state).in_([JobState.queued.value, JobState.running.value]))
        .limit(1)
    ).first()
    if earlier is not None:
        return False
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    session.execute(insert(EnvLock).values(environment=env).on_conflict_do_nothing())
    taken = session.execute(
        update(EnvLock)
        .where(col(EnvLock.environment) == env,
               or_(col(EnvLock.job_id).is_(None), col(EnvLock.expires_at) < now,
                   col(EnvLock.job_id) == job.id))
        .values(job_id=job.id, owner=worker_id, expires_at=expires)
    )
    return bool(getattr(taken, "rowcount", 0) == 1)


def _release_env(session: Session, job: Job) -> None:
    if job.environment:
        session.execute(update(EnvLock).where(col(EnvLock.environment) == job.environment,
                                              col(EnvLock.job_id) == job.id)
                        .values(job_id=None, owner=None, expires_at=None))


def _terminate(job: Job, state: JobState, message: str, now: datetime) -> None:
    job.state = state.value
    job.message = message
    job.lease_owner = None
    job.lease_expires_at = None
    job.finished_at = now


# ---- while running ------------------------------------------------------------------------------


def heartbeat(session: Session, *, job: Job, worker_id: str, lease_s: float) -> bool:
    """The worker's heartbeat and the job's lease, extended; False when the job is no longer
    ours (lease lost)."""
    now = utcnow()
    _touch_worker(session, worker_id, now)
    expires = now + timedelta(seconds=lease_s)
    res = session.execute(
        update(Job).where(col(Job.id) == job.id, col(Job.lease_owner) == worker_id,
                          col(Job.state) == JobState.running.value)
        .values(lease_expires_at=expires)
    )
    ours = bool(getattr(res, "rowcount", 0) == 1)
    if ours and job.environment:
        session.execute(update(EnvLock).where(col(EnvLock.environment) == job.environment,
                                              col(EnvLock.job_id) == job.id)
                        .values(expires_at=expires))
    session.commit()
    return ours


class LogLine(NamedTuple):
    """A job's log line before it is written (``message`` already redacted)."""

    at: datetime
    level: str
    message: str


def add_logs(session: Session, *, job_id: int, lines: Sequence[LogLine]) -> None:
    """Write buffered log lines in the caller's transaction: one INSERT for all of them, on the
    table (the ORM's bulk path costs more CPU than the rows)."""
    if lines:
        session.connection().execute(
            insert(JobLog.__table__),  # type: ignore[attr-defined]
            [{"job_id": job_id, "at": line.at, "level": line.level, "message": line.message}
             for line in lines])


@dataclass(frozen=True)
class Outcome:
    state: JobState  # succeeded | skipped | failed | (temporary →) queued/dead
    message: str = ""
    result: dict[str, Any] = field(default_factory=dict)
    temporary: bool = False
    delay: float | None = None
    # Waiting for something in progress (reconciler.errors.Waiting): queued again after
    # ``delay`` and the attempt it just made is given back.
    waiting: bool = False


def finish(session: Session, *, job: Job, worker_id: str, outcome: Outcome,
           max_attempts: int, backoff_s: float) -> Job | None:
    """Record the outcome (compare-and-swap on the lease). None when the lease was lost.

    Does not commit: the caller adds the merge's finalisation to the same transaction.
    """
    now = utcnow()
    values: dict[str, Any] = {"message": redact(outcome.message)[:4000],
                              "lease_owner": None, "lease_expires_at": None}
    if outcome.result:
        values["result"] = outcome.result
    if outcome.waiting:
        values |= {"state": JobState.queued.value, "attempts": max(0, job.attempts - 1),
                   "not_before": now + timedelta(seconds=outcome.delay or 0.0)}
    elif outcome.temporary and job.attempts < max_attempts:
        delay = outcome.delay if outcome.delay is not None else backoff(job.attempts, backoff_s)
        values |= {"state": JobState.queued.value,
                   "not_before": now + timedelta(seconds=delay)}
    elif outcome.temporary:
        values |= {"state": JobState.dead.value, "finished_at": now}
    else:
        values |= {"state": outcome.state.value, "finished_at": now}
    fresh = session.scalars(
        update(Job).where(col(Job.id) == job.id, col(Job.lease_owner) == worker_id,
                          col(Job.state) == JobState.running.value).values(**values)
        .returning(Job).execution_options(synchronize_session=False, populate_existing=True)
    ).first()
    if fresh is None:
        session.rollback()
        return None
    _release_env(session, job)
    return fresh


def requeue(session: Session, *, job: Job) -> None:
    """Put a failed or dead job back in the queue with fresh attempts (caller commits)."""
    job.state = JobState.queued.value
    job.attempts = 0
    job.not_before = utcnow()
    job.finished_at = None
    job.lease_owner = None
    job.lease_expires_at = None
    job.result = {k: v for k, v in (job.result or {}).items() if k != WAITING_SINCE}
    session.add(job)
