"""One worker: claim a job, run its handler under a renewed lease, record the outcome.

A worker killed at any point loses nothing: it stops heart-beating, and once the grace
(``worker_heartbeat_grace_s``) has passed another worker claims its job again; handlers are
idempotent (Terraform applies are recorded per (environment, unit, commit) and a re-run of a
recorded apply is a no-op). Its terraform was interrupted when it died (``reconciler.tfproc``);
on start a worker reaps what dead predecessors left in the Terraform working directories, and
every ``worker_sweep_interval_s`` it finalises merges whose jobs are all done
(``reconciler.finalize.sweep``).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, col, select

from catalog import service as catalog_service
from catalog.models import Entity, Status
from gitops.forges.base import Forge, RateLimited
from portal import tracing
from portal.auth import audit
from portal.db import aware, utcnow
from portal.redact import redact
from portal.settings import Settings
from reconciler import finalize, queue, tfproc, wakeup
from reconciler.clients import Clients
from reconciler.context import Handler, JobContext, Result
from reconciler.errors import PermanentError, TemporaryError, Waiting
from reconciler.models import PRE_MERGE, TERMINAL, Job, JobState

log = logging.getLogger("caas.reconciler.worker")
FLUSH_S = 0.5  # how often a running job's log lines reach the database (and the SSE stream)
ACTOR = "reconciler"
APPLYING = Status.applying.value  # the catalog status of an entity whose job runs


class Worker:
    def __init__(self, settings: Settings, engine: Engine, forge: Forge, *,
                 handlers: Mapping[str, Handler] | None = None,
                 worker_id: str | None = None) -> None:
        if handlers is None:
            from reconciler.jobs import handlers as default_handlers

            handlers = default_handlers()
        self.settings, self.engine, self.forge = settings, engine, forge
        self.handlers = dict(handlers)
        self.id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._registered = False
        self._next_sweep = 0.0
        self._last_beat = 0.0  # time.monotonic() of the worker's last heartbeat write
        self._conn: Connection | None = None  # the queue's own connection (_queue_session)
        self.wakeup = wakeup.Wakeup()
        self.clients = Clients()  # adapter clients kept from job to job (reconciler.clients)
        self.listener = wakeup.Listener(engine)

    # ---- loop ----------------------------------------------------------------------------------

    def run(self, stop: threading.Event, *, once: bool = False) -> None:
        """Work until ``stop`` is set (or, with ``once``, until nothing is runnable). Idle, it
        waits for a wake-up (``reconciler.wakeup``: a job queued in this process or, on
        PostgreSQL, in any) or at most ``worker_poll_interval_s``."""
        self._register()
        if not once:
            self.listener.start()
        try:
            while not stop.is_set():
                self.wakeup.clear()  # before looking: a job queued from now on wakes the wait
                try:
                    self._sweep_when_due()
                    if self.run_one():
                        continue
                except Exception:
                    # The database or the forge is down: keep the worker alive and try again;
                    # a job caught mid-way keeps its lease and is claimed again when it expires.
                    log.exception("worker %s: claiming or finishing a job failed", self.id)
                    if once:
                        raise
                    stop.wait(max(1.0, self.settings.worker_poll_interval_s))
                    continue
                if once:
                    break
                self.wakeup.wait(self.settings.worker_poll_interval_s)
        finally:
            self.listener.stop()
            self._close_connection()
            with Session(self.engine) as session:
                queue.stop_worker(session, worker_id=self.id)

    def _register(self) -> None:
        if not self._registered:
            with Session(self.engine) as session:
                queue.register_worker(session, worker_id=self.id, hostname=socket.gethostname(),
                                      pid=os.getpid())
            self._registered = True
            root = (self.settings.data_dir / "terraform").resolve()
            if root.is_dir():
                tfproc.reap_orphans(root, log=lambda line: log.warning("%s", redact(line)))

    def _sweep_when_due(self) -> None:
        if time.monotonic() >= self._next_sweep:
            self.sweep()

    def sweep(self) -> list[str]:
        """Finalise merges whose jobs are all terminal (``reconciler.finalize.sweep``)."""
        self._next_sweep = time.monotonic() + self.settings.worker_sweep_interval_s
        with Session(self.engine) as session:
            return finalize.sweep(session)

    def run_one(self) -> bool:
        """Claim and run one job; False when nothing was runnable."""
        self._register()
        touch = time.monotonic() - self._last_beat >= self._beat_every()
        with self._queue_session() as session:
            job = queue.claim(session, worker_id=self.id, lease_s=self.settings.worker_lease_s,
                              max_attempts=self.settings.worker_max_attempts,
                              grace_s=self.settings.worker_heartbeat_grace_s, touch=touch,
                              on_claim=self._started, on_end=self._ended)
        if touch:
            self._last_beat = time.monotonic()
        if job is None:
            return False
        self.execute(job)
        return True

    # ---- one job -------------------------------------------------------------------------------

    def execute(self, job: Job) -> None:
        buffer = LogBuffer()
        buffer.add(f"attempt {job.attempts} on worker {self.id}")
        done = threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(job, buffer, done), daemon=True,
                                name=f"lease-{job.id}")
        beat.start()
        try:
            with tracing.span(f"reconciler.{job.kind}", parent=job.payload.get(tracing.CARRIER_KEY),
                              unit=job.unit, change_number=job.change_number, commit=job.commit,
                              environment=job.environment, attempt=job.attempts):
                outcome = self._run_handler(job, buffer)
        finally:
            done.set()
            beat.join()
        self._finish(job, outcome, buffer)

    def _run_handler(self, job: Job, buffer: LogBuffer) -> queue.Outcome:
        handler = self.handlers.get(job.kind)
        try:
            if handler is None:
                raise PermanentError(f"no handler for job kind {job.kind!r}")
            if job.kind not in PRE_MERGE:
                self._check_on_main(job)
            ctx = JobContext(settings=self.settings, engine=self.engine, forge=self.forge,
                             job=job, worker_id=self.id, log=buffer.add, clients=self.clients)
            try:
                result: Result = handler(ctx)
            except BaseException:
                # The next attempt starts from fresh clients (a broken connection or a client
                # left half-way is not carried over); the outcome is decided below.
                self.clients.clear()
                raise
        except PermanentError as exc:
            buffer.add(f"failed: {exc.message}", "error")
            return queue.Outcome(state=JobState.failed, message=exc.message)
        except Waiting as exc:
            return self._waiting(job, exc, buffer)
        except RateLimited as exc:  # the forge said when: no earlier retry helps
            buffer.add(f"temporary error: {exc.message}", "warning")
            return queue.Outcome(state=JobState.failed, message=exc.message, temporary=True,
                                 delay=exc.retry_after_s)
        except TemporaryError as exc:
            buffer.add(f"temporary error: {exc.message}", "warning")
            return queue.Outcome(state=JobState.failed, message=exc.message, temporary=True,
                                 delay=exc.delay)
        except Exception as exc:  # an unforeseen error is retried: a bug must not lose a job
            log.exception("job %s (%s) raised", job.id, job.unit)
            message = f"{type(exc).__name__}: {exc}"
            buffer.add(f"error: {message}", "error")
            return queue.Outcome(state=JobState.failed, message=message, temporary=True)
        if result.message:
            buffer.add(result.message)
        return queue.Outcome(state=result.state, message=result.message, result=result.detail)

    def _waiting(self, job: Job, exc: Waiting, buffer: LogBuffer) -> queue.Outcome:
        """Poll again in ``worker_wait_poll_s`` without spending an attempt, until
        ``worker_wait_deadline_s`` after the wait began (kept in the job's result); then the
        job fails, naming what it waited for."""
        now = utcnow()
        raw = (job.result or {}).get(queue.WAITING_SINCE)
        since = aware(datetime.fromisoformat(raw)) if isinstance(raw, str) else now
        waited = (now - since).total_seconds()
        kept = {queue.WAITING_SINCE: since.isoformat()}
        if waited >= self.settings.worker_wait_deadline_s:
            message = (f"{exc.message}; gave up after waiting {round(waited)} s "
                       "(CAAS_WORKER_WAIT_DEADLINE_S)")
            buffer.add(f"failed: {message}", "error")
            return queue.Outcome(state=JobState.failed, message=message, result=kept)
        buffer.add(f"waiting ({round(waited)} s so far): {exc.message}")
        return queue.Outcome(state=JobState.queued, message=f"waiting: {exc.message}",
                             waiting=True, delay=self.settings.worker_wait_poll_s, result=kept)

    def _check_on_main(self, job: Job) -> None:
        main = self.settings.main_branch
        if not self.forge.is_ancestor(job.commit, main):
            with Session(self.engine) as session:
                audit.record(session, actor=ACTOR, action="reconciler.job.refused",
                             target=f"{job.id} {job.unit}", outcome="denied",
                             detail={"commit": job.commit, "reason": f"not on {main}"})
            raise PermanentError(f"refused: commit {job.commit[:12]} is not reachable from "
                                 f"{main}; nothing was applied")

    def _heartbeat(self, job: Job, buffer: LogBuffer, done: threading.Event) -> None:
        """Flush the log every FLUSH_S (the SSE stream follows it); beat (the worker's heartbeat
        and the job's lease) every third of the heartbeat grace or of the lease, the shorter."""
        every = self._beat_every()
        last_beat = self._last_beat  # the claim may have skipped its beat: count from the last
        ours = True
        while not done.wait(FLUSH_S):
            beat = ours and time.monotonic() - last_beat >= every
            if not beat and not buffer.pending():
                continue
            try:
                with Session(self.engine) as session:
                    queue.add_logs(session, job_id=job.id or 0, lines=buffer.drain())
                    if beat:
                        ours = queue.heartbeat(session, job=job, worker_id=self.id,
                                               lease_s=self.settings.worker_lease_s)
                        last_beat = self._last_beat = time.monotonic()
                        if not ours:
                            log.warning("job %s: lease lost to another worker", job.id)
                    session.commit()
            except Exception:  # the database blinked; the next round tries again
                log.warning("heartbeat of job %s failed", job.id, exc_info=True)

    @contextmanager
    def _queue_session(self) -> Iterator[Session]:
        """A session on the worker's own connection, kept from job to job for the queue's
        transactions (claim, finish): they pay no pool check-out — on PostgreSQL a pre-ping
        round trip each. A connection that raised is closed; the next use checks out a fresh
        one (pre-pinged)."""
        if self._conn is None:
            self._conn = self.engine.connect()
        try:
            with Session(bind=self._conn, expire_on_commit=False) as session:
                yield session
        except BaseException:
            self._close_connection()
            raise

    def _close_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:
                log.debug("closing worker %s's connection failed", self.id, exc_info=True)

    def _beat_every(self) -> float:
        """Seconds between heartbeats: a third of the grace or of the lease, the shorter."""
        return max(FLUSH_S, min(self.settings.worker_lease_s,
                                self.settings.worker_heartbeat_grace_s) / 3)

    def _finish(self, job: Job, outcome: queue.Outcome, buffer: LogBuffer) -> None:
        """Outcome, log, audit, the merge's final state and the catalog: one transaction, on
        the worker's own connection; once more on a fresh connection when that one was lost
        (the database restarted while the job ran), so the outcome is not left to the lease."""
        lines = buffer.drain()
        for attempt in (1, 2):
            try:
                self._finish_once(job, outcome, LogBuffer(lines))
                return
            except DBAPIError as exc:
                if attempt == 2 or not exc.connection_invalidated:
                    raise
                log.warning("job %s: the database connection was lost while finishing it; "
                            "once more on a fresh one", job.id)

    def _finish_once(self, job: Job, outcome: queue.Outcome, buffer: LogBuffer) -> None:
        with self._queue_session() as session:
            fresh = queue.finish(session, job=job, worker_id=self.id, outcome=outcome,
                                 max_attempts=self.settings.worker_max_attempts,
                                 backoff_s=self.settings.worker_backoff_s)
            if fresh is None:
                log.warning("job %s finished after its lease was lost; outcome dropped", job.id)
                buffer.add("finished after the lease was lost: outcome dropped", "warning")
                queue.add_logs(session, job_id=job.id or 0, lines=buffer.drain())
                session.commit()
                return
            state = JobState(fresh.state)
            if state in TERMINAL:
                buffer.add(f"{state.value} after {fresh.attempts} attempt(s)")
                audit.record(session, actor=ACTOR, action=f"reconciler.job.{state.value}",
                             target=f"{fresh.id} {fresh.unit}",
                             outcome={JobState.succeeded: "success",
                                      JobState.skipped: "skipped"}.get(state, "failure"),
                             detail={"commit": fresh.commit, "attempts": fresh.attempts,
                                     "message": fresh.message[:500]}, commit=False)
            elif outcome.waiting:
                buffer.add("looks again at "
                           f"{aware(fresh.not_before).isoformat(timespec='seconds')} "
                           f"(attempts spent: {fresh.attempts})")
            else:
                buffer.add(f"retry {fresh.attempts + 1} not before "
                           f"{aware(fresh.not_before).isoformat(timespec='seconds')}", "warning")
            queue.add_logs(session, job_id=job.id or 0, lines=buffer.drain())
            if not outcome.waiting:
                self._catalog(session, job, f"job.{state.value}",
                              {"message": fresh.message[:300]})
            elif not _was_waiting(job):  # once on the timeline, not at every look
                self._catalog(session, job, "job.waiting", {"message": fresh.message[:300]})
            if state in TERMINAL:
                finalize.finalize(session, commit=fresh.commit)
            session.commit()

    # ---- bookkeeping ---------------------------------------------------------------------------

    def _started(self, session: Session, job: Job) -> None:
        if not _was_waiting(job):  # a waiting job's next look is not a new start
            self._catalog(session, job, "job.started", {"attempt": job.attempts})

    def _ended(self, session: Session, job: Job) -> None:
        """A job ended inside the claim (its upstream failed, or it is dead)."""
        self._catalog(session, job, f"job.{job.state}", {"message": job.message[:300]})

    def _catalog(self, session: Session, job: Job, event: str,
                 detail: dict[str, object]) -> None:
        """The job on its entities' timelines; ``applying`` when it starts (``applied`` or
        ``failed`` when the whole merge is done: ``reconciler.finalize``). In a savepoint:
        catalog bookkeeping never undoes a job's outcome, and a failure to write it is
        logged. A job with nothing to write (a plan job, no entities) opens no savepoint: two
        round trips saved, twice per job."""
        if job.kind in PRE_MERGE or not job.entities:
            return
        try:
            with session.begin_nested():
                statuses = (_statuses(session, job.entities) if event == "job.started"
                            else {})
                for entity in job.entities:
                    catalog_service.record_timeline(
                        session, entity=entity, event=event, actor=ACTOR,
                        detail={"job": job.id, "unit": job.unit, "commit": job.commit[:12],
                                **detail})
                    # An existing entity, not already applying (an earlier job of the
                    # merge said so): writing the same status again would only move the
                    # catalog's generation and empty every server's list cache.
                    if statuses.get(entity, APPLYING) != APPLYING:
                        catalog_service.set_status(session, entity=entity, status=APPLYING)
        except Exception:
            log.warning("catalog bookkeeping of job %s failed", job.id, exc_info=True)


class LogBuffer:
    """A job's log lines (``queue.LogLine``: plain tuples, rows only when written), collected
    from the handler's thread and written in batches."""

    def __init__(self, lines: list[queue.LogLine] | None = None) -> None:
        self._lines = list(lines or [])
        self._lock = threading.Lock()

    def add(self, message: str, level: str = "info") -> None:
        line = queue.LogLine(utcnow(), level, redact(message)[:20000])
        with self._lock:
            self._lines.append(line)

    def pending(self) -> bool:
        with self._lock:
            return bool(self._lines)

    def drain(self) -> list[queue.LogLine]:
        with self._lock:
            lines, self._lines = self._lines, []
        return lines


def _was_waiting(job: Job) -> bool:
    return bool((job.result or {}).get(queue.WAITING_SINCE))


def _statuses(session: Session, keys: list[str]) -> dict[str, str]:
    """The catalog status of each of ``keys`` that exists."""
    if not keys:
        return {}
    return dict(session.exec(select(Entity.key, Entity.status).where(
        col(Entity.key).in_(keys))).all())
