"""The generations' shared read (``portal.generations.shared``): every answer comes from a read
that started after the caller asked, so a write committed before a request arrives is seen by
it; concurrent callers share reads; a failed read fails its callers and the next one reads
again."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from portal import generations

POSTGRES_ONLY = pytest.mark.parametrize("db_backend", ["postgresql"], indirect=True)


def bump(engine: Engine) -> None:
    """A committed write, as another process or worker would make it."""
    with engine.begin() as conn:
        conn.execute(text("UPDATE caas_generations SET catalog = catalog + 1 WHERE id = 1"))


def counting(engine: Engine, hold: Callable[[int], None] = lambda _n: None) -> list[int]:
    """Wrap the engine's reader: count its reads (the list's length); ``hold(n)`` runs after
    read ``n`` (1-based) has read, before it returns."""
    reader = generations._reader(engine)
    original, calls = reader.read, []

    def read() -> generations.Generation:
        calls.append(len(calls) + 1)
        value = original()
        hold(len(calls))
        return value

    reader.read = read  # type: ignore[method-assign]
    return calls


def test_a_write_committed_before_the_call_is_seen(engine: Engine) -> None:
    before = asyncio.run(generations.shared(engine))
    assert before == generations.current(engine)
    bump(engine)
    assert asyncio.run(generations.shared(engine)).catalog == before.catalog + 1


@POSTGRES_ONLY
def test_a_caller_arriving_during_a_read_waits_for_the_next_one(engine: Engine) -> None:
    before = generations.current(engine)
    started, release = threading.Event(), threading.Event()

    def hold(n: int) -> None:
        if n == 1:  # the first read has its (old) value: the write commits now
            started.set()
            assert release.wait(10)

    calls = counting(engine, hold)

    async def scenario() -> tuple[generations.Generation, ...]:
        first = asyncio.ensure_future(generations.shared(engine))
        while not started.is_set():
            await asyncio.sleep(0.001)
        bump(engine)  # committed after the first read, before the others ask
        later = [asyncio.ensure_future(generations.shared(engine)) for _ in range(20)]
        await asyncio.sleep(0.01)
        release.set()
        return tuple(await asyncio.gather(first, *later))

    first, *later = asyncio.run(scenario())
    assert first.catalog == before.catalog
    # Sharing the read in flight would have answered them with the old value.
    assert {g.catalog for g in later} == {before.catalog + 1}
    assert len(calls) == 2  # the twenty shared one read


@POSTGRES_ONLY
def test_concurrent_callers_share_reads(engine: Engine) -> None:
    now = generations.current(engine)
    calls = counting(engine)

    async def scenario() -> list[generations.Generation]:
        return list(await asyncio.gather(*[generations.shared(engine) for _ in range(200)]))

    answers = asyncio.run(scenario())
    assert set(answers) == {now}
    # The first caller's read starts at once; the 199 others asked while it ran: one more.
    assert len(calls) == 2


@POSTGRES_ONLY
def test_a_failed_read_fails_its_callers_and_the_next_call_reads_again(engine: Engine) -> None:
    reader = generations._reader(engine)
    original = reader.read
    failing = [True]

    def read() -> generations.Generation:
        if failing[0]:
            raise OperationalError("SELECT", None, ConnectionError("database down"))
        return original()

    reader.read = read  # type: ignore[method-assign]

    async def scenario() -> list[generations.Generation | BaseException]:
        return list(await asyncio.gather(*[generations.shared(engine) for _ in range(5)],
                                         return_exceptions=True))

    assert all(isinstance(r, OperationalError) for r in asyncio.run(scenario()))
    failing[0] = False
    assert asyncio.run(generations.shared(engine)) == generations.current(engine)
