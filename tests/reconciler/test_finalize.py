"""Every merge reaches a final state, whichever path ends its last job: finish, a dependant
failed at claim, a job dead at claim after its worker stopped heart-beating, and the sweep.
The worker's queue with the test's own handlers; SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from catalog import service as catalog_service
from catalog.models import Entity, TimelineEvent
from gitops.forges.base import MergeEvent
from gitops.forges.local import LocalForge
from gitops.git import seed_repository
from portal.db import utcnow
from portal.settings import Settings
from reconciler import queue, service
from reconciler.context import Handler, JobContext, Result
from reconciler.errors import PermanentError
from reconciler.models import EnvLock, Job, JobLog, JobState, MergeRecord, WorkerRecord
from reconciler.worker import Worker
from tests.conftest import REPO_ROOT
from tests.reconciler.conftest import drain, jobs_of, push

ENTITY = "environment:dev"


def skeleton(settings: Settings, engine: Engine) -> LocalForge:
    """The real skeleton on LocalForge, indexed: ``environment:dev`` exists in the catalog."""
    seed_repository(settings.resolved_gitops_repo, REPO_ROOT / "gitops-skeleton", branch="main")
    forge = LocalForge(settings, engine)
    with Session(engine) as session:
        catalog_service.reindex(session, forge=forge)
    return forge


def units(env: str, *names: str) -> list[queue.NewJob]:
    out, previous = [], None
    for name in names:
        unit = f"terraform:{env}/{name}"
        out.append(queue.NewJob(unit=unit, kind="terraform", environment=env,
                                depends_on=previous, entities=(f"environment:{env}",)))
        previous = unit
    return out


def planner(jobs: list[queue.NewJob]) -> Handler:
    def handler(ctx: JobContext) -> Result:
        with Session(ctx.engine) as session:
            queue.enqueue(session, commit=ctx.job.commit, jobs=jobs)
            service.mark_planned(session, commit=ctx.job.commit, paths=["envs/dev/infra.yaml"],
                                 entities=[ENTITY])
            session.commit()
        return Result("planned")

    return handler


def merge(forge: LocalForge, engine: Engine) -> str:
    before, commit = push(forge, {"envs/dev/infra.yaml": "name: dev\nprovider: local\n"})
    with Session(engine) as session:
        service.record_merge_event(session, event=MergeEvent(commit=commit, before=before))
    return commit


def merge_state(engine: Engine, commit: str) -> str:
    with Session(engine) as session:
        return session.exec(select(MergeRecord.state).where(MergeRecord.commit == commit)).one()


def entity_status(engine: Engine) -> str:
    with Session(engine) as session:
        return session.exec(select(Entity.status).where(Entity.key == ENTITY)).one()


def test_dependants_failed_at_claim_fail_the_merge_and_the_catalog_shows_it(
        settings: Settings, engine: Engine) -> None:
    forge = skeleton(settings, engine)

    def tf(ctx: JobContext) -> Result:
        if ctx.job.unit.endswith("/network"):
            raise PermanentError("bad CIDR")
        return Result()

    worker = Worker(settings, engine, forge, handlers={
        "plan": planner(units("dev", "backend", "network", "domain", "kubernetes")),
        "terraform": tf})
    commit = merge(forge, engine)
    drain(worker)
    jobs = jobs_of(engine, commit)
    assert {u: j.state for u, j in jobs.items()} == {
        "plan": "succeeded", "terraform:dev/backend": "succeeded",
        "terraform:dev/network": "failed", "terraform:dev/domain": "failed",
        "terraform:dev/kubernetes": "failed"}
    # the last job ended inside the claim step: the merge is final all the same
    assert jobs["terraform:dev/kubernetes"].message == \
        "upstream unit terraform:dev/domain did not succeed"
    assert merge_state(engine, commit) == "failed"
    assert entity_status(engine) == "failed"
    with Session(engine) as session:  # each job's end is on the entity's timeline
        events = session.exec(select(TimelineEvent.event, TimelineEvent.detail).where(
            TimelineEvent.entity == ENTITY).order_by(col(TimelineEvent.id))).all()
    ended = [(e, d["unit"]) for e, d in events if e != "job.started"]
    assert ended == [("job.succeeded", "terraform:dev/backend"),
                     ("job.failed", "terraform:dev/network"),
                     ("job.failed", "terraform:dev/domain"),
                     ("job.failed", "terraform:dev/kubernetes")]


def test_sweep_finalises_a_merge_whose_jobs_are_all_done(
        settings: Settings, engine: Engine) -> None:
    forge = skeleton(settings, engine)
    worker = Worker(settings, engine, forge, handlers={
        "plan": planner(units("dev", "backend")), "terraform": lambda ctx: Result()})
    commit = merge(forge, engine)
    drain(worker)
    assert merge_state(engine, commit) == "applied"
    # A merge left behind (e.g. by an older worker): every job done, the merge still planned.
    with Session(engine) as session:
        session.execute(update(MergeRecord).values(state="planned", finished_at=None))
        session.execute(update(Job).where(col(Job.unit) == "terraform:dev/backend")
                        .values(state="dead"))
        session.commit()
    open_commit = merge(forge, engine)  # a merge still being worked on is left alone
    assert worker.sweep() == [commit]
    assert worker.sweep() == []
    assert merge_state(engine, commit) == "failed"
    assert merge_state(engine, open_commit) == "recorded"
    assert entity_status(engine) == "failed"


def register(engine: Engine, *ids: str) -> None:
    for wid in ids:
        with Session(engine) as session:
            queue.register_worker(session, worker_id=wid, hostname="h", pid=1)


def silence(engine: Engine, worker_id: str, seconds: float) -> None:
    with Session(engine) as session:
        session.execute(update(WorkerRecord).where(col(WorkerRecord.id) == worker_id)
                        .values(last_seen_at=utcnow() - timedelta(seconds=seconds)))
        session.commit()


def test_a_job_whose_worker_stopped_beating_is_reclaimed_after_the_grace_not_the_lease(
        settings: Settings, engine: Engine) -> None:
    with Session(engine) as session:
        queue.enqueue(session, commit="b" * 40, jobs=units("dev", "backend"))
        session.commit()
    register(engine, "dead-worker", "new-worker")
    with Session(engine, expire_on_commit=False) as session:
        first = queue.claim(session, worker_id="dead-worker", lease_s=600, max_attempts=5,
                            grace_s=30)
    assert first is not None
    lease_end = first.lease_expires_at
    with Session(engine) as session:  # within the grace: still the dead worker's
        assert queue.claim(session, worker_id="new-worker", lease_s=600, max_attempts=5,
                           grace_s=30) is None
        # its heartbeat keeps it: a beat is a write of the worker's row and the lease
        assert queue.heartbeat(session, job=first, worker_id="dead-worker", lease_s=600)
    silence(engine, "dead-worker", 31)
    with Session(engine, expire_on_commit=False) as session:
        again = queue.claim(session, worker_id="new-worker", lease_s=600, max_attempts=5,
                            grace_s=30)
    assert again is not None and (again.id, again.attempts) == (first.id, 2)
    assert lease_end is not None and again.started_at is not None
    assert again.started_at < lease_end  # the lease had not run out
    with Session(engine) as session:
        assert session.get(EnvLock, "dev").owner == "new-worker"
        logs = session.exec(select(JobLog.message).where(JobLog.job_id == first.id)).all()
    assert any("reclaimed from worker dead-worker" in m for m in logs)


def test_a_worker_that_stopped_leaves_no_job_running(settings: Settings,
                                                     engine: Engine) -> None:
    with Session(engine) as session:
        queue.enqueue(session, commit="c" * 40, jobs=units("dev", "backend"))
        session.commit()
    register(engine, "gone", "next")
    with Session(engine) as session:
        assert queue.claim(session, worker_id="gone", lease_s=600, max_attempts=5,
                           grace_s=30) is not None
        queue.stop_worker(session, worker_id="gone")
    with Session(engine) as session:
        again = queue.claim(session, worker_id="next", lease_s=600, max_attempts=5,
                            grace_s=30)
        assert again is not None and again.attempts == 2


def test_dead_at_claim_after_the_last_attempt_finalises_the_merge(
        settings: Settings, engine: Engine) -> None:
    forge = skeleton(settings, engine)
    commit = merge(forge, engine)
    register(engine, "dead-worker", "new-worker")
    with Session(engine) as session:
        session.execute(update(Job).where(col(Job.commit) == commit)
                        .values(state=JobState.succeeded.value))
        queue.enqueue(session, commit=commit, jobs=units("dev", "backend"))
        service.mark_planned(session, commit=commit, paths=[], entities=[ENTITY])
        session.commit()
    with Session(engine) as session:
        assert queue.claim(session, worker_id="dead-worker", lease_s=600, max_attempts=1,
                           grace_s=30) is not None
    silence(engine, "dead-worker", 60)
    with Session(engine) as session:
        assert queue.claim(session, worker_id="new-worker", lease_s=600, max_attempts=1,
                           grace_s=30) is None
    job = jobs_of(engine, commit)["terraform:dev/backend"]
    assert (job.state, job.message) == ("dead", "worker dead-worker died on the last attempt")
    assert merge_state(engine, commit) == "failed"
    assert entity_status(engine) == "failed"
    with Session(engine) as session:
        assert session.get(EnvLock, "dev").job_id is None


def test_a_merge_with_a_skipped_job_is_committed_not_applied() -> None:
    from reconciler.finalize import entity_status, final_state

    assert final_state(["succeeded", "succeeded"]) == "applied"
    assert final_state(["succeeded", "skipped"]) == "committed"
    assert final_state(["skipped", "failed"]) == "failed"
    assert final_state(["succeeded", "dead"]) == "failed"
    jobs = [("argocd", "skipped", ["namespace:a/b"]), ("catalog", "succeeded", ["team:a"])]
    assert entity_status("namespace:a/b", "committed", jobs) == "committed"
    assert entity_status("team:a", "committed", jobs) == "applied"
    assert entity_status("environment:x", "committed", jobs) == "committed"  # no own job
    assert entity_status("environment:x", "applied", []) == "applied"
