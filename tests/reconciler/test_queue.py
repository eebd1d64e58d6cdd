"""The queue and the worker with small handlers of the test's own (no Terraform here): order,
environment lock, backoff, dead, permanent failure, retry, refusal off main, lease expiry,
two workers sharing one database. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import Engine, update
from sqlmodel import Session, select

from gitops.forges.base import MergeEvent
from gitops.forges.local import LocalForge
from portal.auth.models import AuditEvent
from portal.auth.principal import SYSTEM
from portal.db import aware, utcnow
from portal.settings import Settings
from reconciler import queue, service
from reconciler.context import Handler, JobContext, Result
from reconciler.errors import PermanentError, TemporaryError
from reconciler.jobs import plan as real_plan
from reconciler.models import EnvLock, Job, JobLog, JobState, MergeRecord
from reconciler.worker import Worker
from tests.reconciler.conftest import drain, jobs_of, push


def units_plan(units: list[queue.NewJob]) -> Handler:
    """A plan handler that queues fixed units (what the planner would derive)."""

    def handler(ctx: JobContext) -> Result:
        with Session(ctx.engine) as session:
            queue.enqueue(session, commit=ctx.job.commit, jobs=units)
            service.mark_planned(session, commit=ctx.job.commit, paths=[], entities=[])
            session.commit()
        return Result("planned")

    return handler


def tf_units(env: str, *names: str) -> list[queue.NewJob]:
    out, previous = [], None
    for name in names:
        unit = f"terraform:{env}/{name}"
        out.append(queue.NewJob(unit=unit, kind="terraform", environment=env,
                                depends_on=previous))
        previous = unit
    return out


def merge(forge: LocalForge, engine: Engine, files: dict[str, str | None]) -> str:
    before, commit = push(forge, files)
    with Session(engine) as session:
        service.record_merge_event(session, event=MergeEvent(commit=commit, before=before))
    return commit


def test_record_merge_event_is_idempotent(forge: LocalForge, engine: Engine) -> None:
    before, commit = push(forge, {"teams/a/team.yaml": "name: a\n"})
    for source in ("local", "webhook", "poller"):
        with Session(engine) as session:
            service.record_merge_event(session, event=MergeEvent(commit=commit, before=before,
                                                                 source=source))
    with Session(engine) as session:
        merges = session.exec(select(MergeRecord)).all()
        assert [(m.commit, m.source, m.state) for m in merges] == [(commit, "local", "recorded")]
        assert list(jobs_of(engine, commit)) == ["plan"]
        assert session.exec(select(AuditEvent).where(
            AuditEvent.action == "reconciler.merge")).one().target == commit


def test_enqueue_inserts_only_new_units_in_the_order_given(forge: LocalForge,
                                                          engine: Engine) -> None:
    """One INSERT for a plan's jobs: ids follow the order given (units of one environment run
    in id order), a unit named twice is inserted once, a unit already queued is left alone."""
    commit = push(forge, {"README.md": "enqueue\n"})[1]
    units = [queue.NewJob(unit="catalog", kind="catalog"),
             *tf_units("dev", "backend", "network", "domain"),
             queue.NewJob(unit="argocd", kind="argocd")]
    with Session(engine, expire_on_commit=False) as session:
        first = queue.enqueue(session, commit=commit, jobs=[*units, units[2]])
        session.commit()
        again = queue.enqueue(session, commit=commit,
                              jobs=[queue.NewJob(unit="keycloak", kind="keycloak"), *units])
        session.commit()
    assert [j.unit for j in first] == [u.unit for u in units]
    ids = [j.id or 0 for j in first]
    assert ids == sorted(ids)
    assert [j.unit for j in again] == ["keycloak"]
    stored = jobs_of(engine, commit)
    assert sorted(stored) == sorted([u.unit for u in units] + ["keycloak"])
    assert stored["terraform:dev/network"].depends_on == "terraform:dev/backend"
    assert stored["terraform:dev/network"].id == first[2].id  # the first insert's row stays


def test_units_run_in_order_and_merge_is_applied(forge: LocalForge, engine: Engine,
                                                 settings: Settings) -> None:
    ran: list[str] = []

    def record(ctx: JobContext) -> Result:
        ran.append(ctx.job.unit)
        return Result(f"ran {ctx.job.unit}")

    units = [queue.NewJob(unit="catalog", kind="catalog"),
             *tf_units("dev", "backend", "network", "domain"),
             queue.NewJob(unit="keycloak", kind="keycloak")]
    worker = Worker(settings, engine, forge, handlers={
        "plan": units_plan(units), "catalog": record, "terraform": record,
        "keycloak": lambda ctx: Result.skipped("skipped: not configured")})
    commit = merge(forge, engine, {"envs/dev/infra.yaml": "provider: local\n"})
    drain(worker)
    assert ran == ["catalog", "terraform:dev/backend", "terraform:dev/network",
                   "terraform:dev/domain"]
    jobs = jobs_of(engine, commit)
    assert {u: j.state for u, j in jobs.items()} == {
        "plan": "succeeded", "catalog": "succeeded", "terraform:dev/backend": "succeeded",
        "terraform:dev/network": "succeeded", "terraform:dev/domain": "succeeded",
        "keycloak": "skipped"}
    assert jobs["keycloak"].message == "skipped: not configured"
    with Session(engine) as session:
        # keycloak skipped: the merge is on main, not all of it deployed
        assert session.exec(select(MergeRecord.state)).one() == "committed"
        assert session.get(EnvLock, "dev").job_id is None  # released
        lines = session.exec(select(JobLog.message).where(
            JobLog.job_id == jobs["terraform:dev/network"].id)).all()
    assert lines[0].startswith("attempt 1 on worker") and "ran terraform:dev/network" in lines


def test_temporary_errors_back_off_then_dead(forge: LocalForge, engine: Engine,
                                             settings: Settings) -> None:
    settings = settings.model_copy(update={"worker_max_attempts": 3, "worker_backoff_s": 0.05})
    calls: list[float] = []

    def flaky(ctx: JobContext) -> Result:
        calls.append(time.monotonic())
        raise TemporaryError("state locked")

    worker = Worker(settings, engine, forge, handlers={
        "plan": units_plan([queue.NewJob(unit="catalog", kind="catalog")]), "catalog": flaky})
    commit = merge(forge, engine, {"README.md": "x\n"})
    drain(worker)
    job = jobs_of(engine, commit)["catalog"]
    assert (job.state, job.attempts, job.message) == ("dead", 3, "state locked")
    assert len(calls) == 3
    # exponential: the second gap is about twice the first (0.05 s then 0.1 s at least)
    assert calls[1] - calls[0] >= 0.05 and calls[2] - calls[1] >= 0.1
    with Session(engine) as session:
        assert session.exec(select(MergeRecord.state)).one() == "failed"
        audit = session.exec(select(AuditEvent).where(
            AuditEvent.action == "reconciler.job.dead")).one()
        assert audit.outcome == "failure"


def test_permanent_error_holds_dependants_and_retry_resumes(
        forge: LocalForge, engine: Engine, settings: Settings) -> None:
    broken = {"on": True}
    ran: list[str] = []

    def tf(ctx: JobContext) -> Result:
        if ctx.job.unit.endswith("/network") and broken["on"]:
            raise PermanentError("bad CIDR")
        ran.append(ctx.job.unit)
        return Result()

    worker = Worker(settings, engine, forge, handlers={
        "plan": units_plan(tf_units("dev", "backend", "network", "domain")), "terraform": tf})
    commit = merge(forge, engine, {"envs/dev/infra.yaml": "a: 1\n"})
    drain(worker)
    jobs = jobs_of(engine, commit)
    assert jobs["terraform:dev/network"].state == "failed"
    assert jobs["terraform:dev/domain"].state == "failed"
    assert "upstream unit terraform:dev/network" in jobs["terraform:dev/domain"].message
    assert ran == ["terraform:dev/backend"]

    broken["on"] = False
    with Session(engine) as session:
        service.retry_job(session, job_id=jobs["terraform:dev/network"].id or 0,
                          principal=SYSTEM)
    drain(worker)
    jobs = jobs_of(engine, commit)
    assert jobs["terraform:dev/domain"].state == "succeeded"
    assert ran == ["terraform:dev/backend", "terraform:dev/network", "terraform:dev/domain"]
    with Session(engine) as session:
        assert session.exec(select(MergeRecord.state)).one() == "applied"


def test_commit_not_on_main_is_refused(forge: LocalForge, engine: Engine,
                                       settings: Settings) -> None:
    ran: list[str] = []

    def record(ctx: JobContext) -> Result:
        ran.append(ctx.job.unit)
        return Result()

    _, side = push(forge, {"teams/x/team.yaml": "name: x\n"}, branch="feature")
    with Session(engine) as session:
        service.record_merge_event(session, event=MergeEvent(commit=side, before=None,
                                                             source="webhook"))
        # and a job queued for it behind the planner's back
        queue.enqueue(session, commit=side, jobs=[queue.NewJob(unit="catalog", kind="catalog")])
        session.commit()
    worker = Worker(settings, engine, forge, handlers={"plan": real_plan, "catalog": record})
    drain(worker)
    jobs = jobs_of(engine, side)
    assert set(jobs) == {"plan", "catalog"}  # nothing else was planned
    assert jobs["plan"].state == "failed" and "not reachable from main" in jobs["plan"].message
    assert jobs["catalog"].state == "failed" and "refused" in jobs["catalog"].message
    assert ran == []
    with Session(engine) as session:
        merge_row = session.exec(select(MergeRecord)).one()
        assert merge_row.state == "refused" and "not reachable" in merge_row.reason
        denied = session.exec(select(AuditEvent.action).where(
            AuditEvent.outcome == "denied")).all()
    assert sorted(denied) == ["reconciler.job.refused", "reconciler.merge.refused"]


def test_expired_lease_is_claimed_again(forge: LocalForge, engine: Engine,
                                        settings: Settings) -> None:
    with Session(engine) as session:
        queue.enqueue(session, commit="a" * 40, jobs=tf_units("dev", "backend"))
        session.commit()
    for wid in ("dead-worker", "new-worker"):
        with Session(engine) as session:
            queue.register_worker(session, worker_id=wid, hostname="h", pid=1)
    with Session(engine, expire_on_commit=False) as session:
        first = queue.claim(session, worker_id="dead-worker", lease_s=60, max_attempts=5)
    assert first is not None and first.attempts == 1
    with Session(engine, expire_on_commit=False) as session:  # lease still valid: nothing
        assert queue.claim(session, worker_id="new-worker", lease_s=60, max_attempts=5) is None
        past = utcnow() - timedelta(seconds=1)
        session.execute(update(Job).values(lease_expires_at=past))
        session.execute(update(EnvLock).values(expires_at=past))
        session.commit()
    with Session(engine, expire_on_commit=False) as session:
        again = queue.claim(session, worker_id="new-worker", lease_s=60, max_attempts=5)
    assert again is not None and (again.id, again.attempts) == (first.id, 2)
    with Session(engine) as session:
        assert session.get(EnvLock, "dev").owner == "new-worker"
        # the dead worker's late outcome is dropped: the lease is not its own any more
        assert queue.finish(session, job=first, worker_id="dead-worker",
                            outcome=queue.Outcome(state=JobState.succeeded),
                            max_attempts=5, backoff_s=1) is None


@pytest.mark.parametrize("workers", [2])
def test_two_workers_never_run_one_job_twice_nor_overlap_an_environment(
        forge: LocalForge, engine: Engine, settings: Settings, workers: int) -> None:
    runs: Counter[int] = Counter()
    active: Counter[str] = Counter()
    overlaps: list[str] = []
    lock = threading.Lock()

    def work(ctx: JobContext) -> Result:
        env = ctx.job.environment or ""
        with lock:
            runs[ctx.job.id or 0] += 1
            active[env] += 1
            if env and active[env] > 1:
                overlaps.append(env)
        time.sleep(0.005)
        with lock:
            active[env] -= 1
        return Result()

    commits = [push(forge, {"README.md": f"{i}\n"})[1] for i in range(10)]
    with Session(engine) as session:
        for commit in commits:
            queue.enqueue(session, commit=commit, jobs=[
                queue.NewJob(unit="catalog", kind="catalog"),
                *tf_units("dev", "backend", "network"), *tf_units("prod", "backend")])
        session.commit()
    handlers: dict[str, Handler] = {"catalog": work, "terraform": work}
    pool = [Worker(settings, engine, forge, handlers=handlers, worker_id=f"w{i}")
            for i in range(workers)]
    threads = [threading.Thread(target=drain, args=(w, 2000)) for w in pool]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with Session(engine) as session:
        states = Counter(session.exec(select(Job.state)).all())
    assert states == Counter({"succeeded": 40})
    assert len(runs) == 40 and set(runs.values()) == {1}
    assert overlaps == []


def test_failed_plan_fails_the_merge_and_retry_reopens_it(
        forge: LocalForge, engine: Engine, settings: Settings) -> None:
    broken = {"on": True}
    inner = units_plan([queue.NewJob(unit="catalog", kind="catalog")])

    def plan(ctx: JobContext) -> Result:
        if broken["on"]:
            raise PermanentError("forge said no")
        return inner(ctx)

    worker = Worker(settings, engine, forge, handlers={"plan": plan,
                                                       "catalog": lambda ctx: Result()})
    commit = merge(forge, engine, {"README.md": "y\n"})
    drain(worker)
    with Session(engine) as session:
        assert session.exec(select(MergeRecord.state)).one() == "failed"
        service.retry_job(session, job_id=jobs_of(engine, commit)["plan"].id or 0,
                          principal=SYSTEM)
        assert session.exec(select(MergeRecord.state)).one() == "recorded"
    broken["on"] = False
    drain(worker)
    with Session(engine) as session:
        assert session.exec(select(MergeRecord.state)).one() == "applied"


def test_a_rate_limited_forge_call_is_retried_at_the_reset(
        forge: LocalForge, engine: Engine, settings: Settings) -> None:
    from gitops.forges.base import RateLimited

    def limited(ctx: JobContext) -> Result:
        raise RateLimited("GitHub's rate limit asks to wait 3600 s", retry_after_s=3600)

    worker = Worker(settings, engine, forge, handlers={
        "plan": units_plan([queue.NewJob(unit="catalog", kind="catalog")]), "catalog": limited})
    commit = merge(forge, engine, {"README.md": "x\n"})
    started = utcnow()
    for _ in range(5):  # the plan job, the catalog job; then nothing is due for an hour
        worker.run_one()
    job = jobs_of(engine, commit)["catalog"]
    assert (job.state, job.attempts) == ("queued", 1)  # not dead, not retried in a loop
    wait = (aware(job.not_before) - started).total_seconds()
    assert 3590 <= wait <= 3700


def test_a_claim_in_progress_holds_only_the_job_it_takes(
        forge: LocalForge, engine: Engine, settings: Settings, db_backend: str) -> None:
    """PostgreSQL: while one worker's claim transaction is still open (inside ``on_claim``),
    another worker takes the next job at once instead of finding every candidate locked."""
    if db_backend != "postgresql":
        pytest.skip("SQLite serialises claims on its single write lock (queue docstring)")
    commits = [push(forge, {"README.md": f"{i}\n"})[1] for i in range(3)]
    with Session(engine) as session:
        for commit in commits:
            queue.enqueue(session, commit=commit, jobs=[queue.NewJob(unit="catalog",
                                                                     kind="catalog")])
        session.commit()
    inside, release = threading.Event(), threading.Event()
    first: list[int] = []

    def hold(session: Session, job: Job) -> None:
        first.append(job.id or 0)
        inside.set()
        assert release.wait(30)

    def claim_and_hold() -> None:
        with Session(engine, expire_on_commit=False) as session:
            queue.claim(session, worker_id="a", lease_s=60, max_attempts=3, on_claim=hold)

    holder = threading.Thread(target=claim_and_hold)
    holder.start()
    try:
        assert inside.wait(30)
        with Session(engine, expire_on_commit=False) as session:
            other = queue.claim(session, worker_id="b", lease_s=60, max_attempts=3)
    finally:
        release.set()
        holder.join()
    assert other is not None and other.id != first[0]
    with Session(engine) as session:
        owners = dict(session.exec(select(Job.id, Job.lease_owner)).all())
    assert owners[first[0]] == "a" and owners[other.id] == "b"
    assert Counter(owners.values()) == Counter(["a", "b", None])
