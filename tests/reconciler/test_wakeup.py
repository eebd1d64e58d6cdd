"""Waking idle workers (``reconciler.wakeup``): the PostgreSQL trigger's notifications, a worker
woken by a job another process queued (no poll interval waited), a lost listening connection
re-established, and the in-process wake-up on both databases."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlmodel import Session

from gitops.forges.local import LocalForge
from portal import db
from portal.settings import Settings
from reconciler import queue, wakeup
from reconciler.context import JobContext, Result
from reconciler.worker import Worker
from tests.conftest import make_settings
from tests.reconciler.conftest import jobs_of, push

IDLE_POLL_S = 120.0  # far longer than any wait below: only a wake-up can explain a quick pick-up


# NOTIFY/LISTEN is PostgreSQL's (SQLite workers share a process or poll): these tests take only
# the PostgreSQL parameter of the ``db_backend`` fixture.
postgres_only = pytest.mark.parametrize("db_backend", ["postgresql"], indirect=True)


@contextmanager
def listening(engine: Engine) -> Iterator[Any]:
    """A raw autocommit connection listening on the workers' channel."""
    conn = engine.raw_connection()
    driver: Any = conn.driver_connection
    driver.autocommit = True
    driver.execute(f"LISTEN {wakeup.CHANNEL}")
    try:
        yield driver
    finally:
        conn.invalidate()


def received(driver: Any, wait_s: float = 0.5) -> int:
    return sum(1 for _ in driver.notifies(timeout=wait_s))


def noop(_ctx: JobContext) -> Result:
    return Result()


@contextmanager
def idle_worker(settings: Settings, engine: Engine, forge: LocalForge,
                worker: Worker | None = None) -> Iterator[Worker]:
    worker = worker or Worker(settings, engine, forge, handlers={"catalog": noop})
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield worker
    finally:
        stop.set()
        wakeup.notify()
        thread.join(timeout=30)
        assert not thread.is_alive()


def enqueue_elsewhere(settings: Settings, forge: LocalForge) -> str:
    """A job queued through another engine, as another process would: this process's
    in-process wake-up is never called."""
    commit = push(forge, {"README.md": f"{time.time_ns()}\n"})[1]
    other = db.make_engine(settings)
    try:
        with Session(other) as session:
            queue.enqueue(session, commit=commit, jobs=[queue.NewJob(unit="catalog",
                                                                     kind="catalog")])
            session.commit()
    finally:
        other.dispose()
    return commit


def wait_done(engine: Engine, commit: str, within_s: float) -> None:
    started = time.monotonic()
    while time.monotonic() - started < within_s:
        job = jobs_of(engine, commit).get("catalog")
        if job is not None and job.state == "succeeded":
            return
        time.sleep(0.02)
    raise AssertionError(f"job of {commit[:12]} not done within {within_s} s")


@postgres_only
def test_a_job_queued_or_ending_notifies_a_claim_does_not(
        engine: Engine, forge: LocalForge, db_backend: str) -> None:
    commit = push(forge, {"README.md": "x\n"})[1]
    with listening(engine) as driver:
        with Session(engine) as session:
            queue.enqueue(session, commit=commit, jobs=[
                queue.NewJob(unit="a", kind="catalog"), queue.NewJob(unit="b", kind="catalog")])
            session.commit()
        assert received(driver) == 1  # one per transaction, however many jobs
        with Session(engine, expire_on_commit=False) as session:
            job = queue.claim(session, worker_id="w", lease_s=60, max_attempts=3)
        assert job is not None
        assert received(driver) == 0  # running: nothing new for an idle worker
        with Session(engine) as session:
            queue.finish(session, job=job, worker_id="w", max_attempts=3, backoff_s=1,
                         outcome=queue.Outcome(state=queue.JobState.succeeded))
            session.commit()
        assert received(driver) == 1  # its dependants and its environment are free


@postgres_only
def test_an_idle_worker_takes_a_job_queued_elsewhere_without_waiting_its_poll(
        tmp_path: Any, database_url: str, db_backend: str, forge: LocalForge) -> None:
    settings = make_settings(tmp_path, database_url, worker_poll_interval_s=IDLE_POLL_S)
    engine = db.make_engine(settings)
    worker = Worker(settings, engine, forge, handlers={"catalog": noop})
    with idle_worker(settings, engine, forge, worker):
        assert worker.listener.listening.wait(30)
        time.sleep(0.3)  # the worker found nothing and waits on its poll interval
        for _ in range(3):  # each well inside the poll interval: only NOTIFY woke it
            wait_done(engine, enqueue_elsewhere(settings, forge), within_s=20)
    engine.dispose()


@postgres_only
def test_a_lost_listening_connection_is_reopened(
        tmp_path: Any, database_url: str, db_backend: str, forge: LocalForge) -> None:
    settings = make_settings(tmp_path, database_url, worker_poll_interval_s=IDLE_POLL_S)
    engine = db.make_engine(settings)
    listener = wakeup.Listener(engine, check_s=0.2)
    woken = wakeup.Wakeup()
    listener.start()
    try:
        assert listener.listening.wait(30)
        with engine.connect() as conn:
            killed = conn.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE query LIKE 'LISTEN %' AND pid <> pg_backend_pid()")).all()
        assert killed and all(ok for (ok,) in killed)
        deadline = time.monotonic() + 30
        while listener.listening.is_set() and time.monotonic() < deadline:
            time.sleep(0.05)  # noticed the loss
        assert listener.listening.wait(30)  # and listens again
        woken.clear()
        enqueue_elsewhere(settings, forge)
        assert woken.wait(20)
    finally:
        listener.stop()
        engine.dispose()


def test_a_merge_recorded_in_this_process_wakes_its_idle_worker(
        tmp_path: Any, database_url: str, forge: LocalForge) -> None:
    """Both databases: the in-process wake-up (``caas demo``: API and worker in one process)."""
    from gitops.forges.base import MergeEvent
    from reconciler import service

    settings = make_settings(tmp_path, database_url, worker_poll_interval_s=IDLE_POLL_S)
    engine = db.make_engine(settings)
    worker = Worker(settings, engine, forge, handlers={
        "plan": lambda ctx: _plan_catalog(ctx), "catalog": noop})
    with idle_worker(settings, engine, forge, worker):
        time.sleep(0.3)
        before, commit = push(forge, {"README.md": "merged\n"})
        with Session(engine) as session:
            service.record_merge_event(session, event=MergeEvent(commit=commit, before=before))
        wait_done(engine, commit, within_s=20)
    engine.dispose()


def _plan_catalog(ctx: JobContext) -> Result:
    with Session(ctx.engine) as session:
        queue.enqueue(session, commit=ctx.job.commit, jobs=[queue.NewJob(unit="catalog",
                                                                         kind="catalog")])
        session.commit()
    wakeup.notify()
    return Result("planned")
