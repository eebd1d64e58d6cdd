"""One worker: claim a job, run its handler under a renewed lease, record the outcome.

A worker killed at any point loses nothing: its lease expires and another worker claims the job
again; handlers are idempotent (Terraform applies are recorded per (environment, unit, commit)
and a re-run of a recorded apply is a no-op).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Mapping

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from catalog import service as catalog_service
from catalog.models import Entity
from portal.auth import audit
from portal.settings import Settings
from reconciler import queue, service
from reconciler.context import Handler, JobContext, Result
from reconciler.errors import PermanentError, TemporaryError
from reconciler.models import TERMINAL, Job, JobKind, JobState, MergeState
from scaffolder.forges.base import Forge

log = logging.getLogger("caas.reconciler.worker")
ACTOR = "reconciler"


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

    # ---- loop ----------------------------------------------------------------------------------

    def run(self, stop: threading.Event, *, once: bool = False) -> None:
        """Work until ``stop`` is set (or, with ``once``, until nothing is runnable)."""
        self._register()
        try:
            while not stop.is_set():
                if self.run_one():
                    continue
                if once:
                    break
                queue.wait_for_work(self.settings.worker_poll_interval_s)
        finally:
            with Session(self.engine) as session:
                queue.stop_worker(session, worker_id=self.id)

    def _register(self) -> None:
        if not self._registered:
            with Session(self.engine) as session:
                queue.register_worker(session, worker_id=self.id, hostname=socket.gethostname(),
                                      pid=os.getpid())
            self._registered = True

    def run_one(self) -> bool:
        """Claim and run one job; False when nothing was runnable."""
        self._register()
        with Session(self.engine, expire_on_commit=False) as session:
            job = queue.claim(session, worker_id=self.id, lease_s=self.settings.worker_lease_s,
                              max_attempts=self.settings.worker_max_attempts)
        if job is None:
            return False
        self.execute(job)
        return True

    # ---- one job -------------------------------------------------------------------------------

    def execute(self, job: Job) -> None:
        self._log(job, f"attempt {job.attempts} on worker {self.id}")
        self._timeline(job, "job.started", {"attempt": job.attempts})
        done = threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(job, done), daemon=True,
                                name=f"lease-{job.id}")
        beat.start()
        try:
            outcome = self._run_handler(job)
        finally:
            done.set()
            beat.join()
        self._finish(job, outcome)

    def _run_handler(self, job: Job) -> queue.Outcome:
        handler = self.handlers.get(job.kind)
        try:
            if handler is None:
                raise PermanentError(f"no handler for job kind {job.kind!r}")
            if job.kind not in (JobKind.plan.value, JobKind.plan_preview.value):
                self._check_on_main(job)
            ctx = JobContext(settings=self.settings, engine=self.engine, forge=self.forge,
                             job=job, worker_id=self.id, log=lambda m: self._log(job, m))
            result: Result = handler(ctx)
        except PermanentError as exc:
            self._log(job, f"failed: {exc.message}", level="error")
            return queue.Outcome(state=JobState.failed, message=exc.message)
        except TemporaryError as exc:
            self._log(job, f"temporary error: {exc.message}", level="warning")
            return queue.Outcome(state=JobState.failed, message=exc.message, temporary=True,
                                 delay=exc.delay)
        except Exception as exc:  # an unforeseen error is retried: a bug must not lose a job
            log.exception("job %s (%s) raised", job.id, job.unit)
            message = f"{type(exc).__name__}: {exc}"
            self._log(job, f"error: {message}", level="error")
            return queue.Outcome(state=JobState.failed, message=message, temporary=True)
        if result.message:
            self._log(job, result.message)
        return queue.Outcome(state=result.state, message=result.message, result=result.detail)

    def _check_on_main(self, job: Job) -> None:
        main = self.settings.main_branch
        if not self.forge.is_ancestor(job.commit, main):
            with Session(self.engine) as session:
                audit.record(session, actor=ACTOR, action="reconciler.job.refused",
                             target=f"{job.id} {job.unit}", outcome="denied",
                             detail={"commit": job.commit, "reason": f"not on {main}"})
            raise PermanentError(f"refused: commit {job.commit[:12]} is not reachable from "
                                 f"{main}; nothing was applied")

    def _heartbeat(self, job: Job, done: threading.Event) -> None:
        interval = max(1.0, self.settings.worker_lease_s / 3)
        while not done.wait(interval):
            try:
                with Session(self.engine) as session:
                    ours = queue.heartbeat(session, job=job, worker_id=self.id,
                                           lease_s=self.settings.worker_lease_s)
            except Exception:  # the database blinked; the next beat tries again
                log.warning("heartbeat of job %s failed", job.id, exc_info=True)
                continue
            if not ours:
                log.warning("job %s: lease lost to another worker", job.id)
                return

    def _finish(self, job: Job, outcome: queue.Outcome) -> None:
        finalized: tuple[str, list[str]] | None = None
        with Session(self.engine, expire_on_commit=False) as session:
            fresh = queue.finish(session, job=job, worker_id=self.id, outcome=outcome,
                                 max_attempts=self.settings.worker_max_attempts,
                                 backoff_s=self.settings.worker_backoff_s)
            if fresh is None:
                log.warning("job %s finished after its lease was lost; outcome dropped", job.id)
                return
            state = JobState(fresh.state)
            if state in TERMINAL:
                audit.record(session, actor=ACTOR, action=f"reconciler.job.{state.value}",
                             target=f"{fresh.id} {fresh.unit}",
                             outcome="success" if state in (JobState.succeeded,
                                                            JobState.skipped) else "failure",
                             detail={"commit": fresh.commit, "attempts": fresh.attempts,
                                     "message": fresh.message[:500]}, commit=False)
                finalized = service.finalize_merge(session, commit=fresh.commit)
            session.commit()
        if state in TERMINAL:
            self._log(job, f"{state.value} after {fresh.attempts} attempt(s)")
        else:
            self._log(job, f"retry {fresh.attempts + 1} not before "
                      f"{fresh.not_before.isoformat(timespec='seconds')}", level="warning")
        self._timeline(job, f"job.{state.value}", {"message": fresh.message[:300]})
        if finalized is not None:
            self._set_statuses(*finalized)

    # ---- bookkeeping ---------------------------------------------------------------------------

    def _log(self, job: Job, message: str, *, level: str = "info") -> None:
        try:
            with Session(self.engine) as session:
                queue.append_log(session, job_id=job.id or 0, message=message, level=level)
        except Exception:
            log.warning("could not persist a log line of job %s", job.id, exc_info=True)

    def _timeline(self, job: Job, event: str, detail: dict[str, object]) -> None:
        """Job start/finish on the timeline of the entities it touches (best effort: catalog
        bookkeeping never fails an apply, but a failure to write it is logged)."""
        if job.kind in (JobKind.plan.value, JobKind.plan_preview.value) or not job.entities:
            return
        try:
            with Session(self.engine) as session:
                for entity in job.entities:
                    catalog_service.record_timeline(
                        session, entity=entity, event=event, actor=ACTOR,
                        detail={"job": job.id, "unit": job.unit, "commit": job.commit[:12],
                                **detail})
                    if event == "job.started" and entity in _existing(session, [entity]):
                        catalog_service.set_status(session, entity=entity, status="applying")
                session.commit()
        except Exception:
            log.warning("catalog timeline of job %s not recorded", job.id, exc_info=True)

    def _set_statuses(self, state: str, entities: list[str]) -> None:
        status = "applied" if state == MergeState.applied.value else "failed"
        try:
            with Session(self.engine) as session:
                # An entity the merge removed stays removed: no placeholder for it.
                for entity in _existing(session, entities):
                    catalog_service.set_status(session, entity=entity, status=status)
                session.commit()
        except Exception:
            log.warning("catalog statuses not set (%s)", status, exc_info=True)


def _existing(session: Session, keys: list[str]) -> list[str]:
    if not keys:
        return []
    return sorted(session.exec(select(Entity.key).where(col(Entity.key).in_(keys))).all())
