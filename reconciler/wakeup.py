"""Waking idle workers when there is work, instead of leaving them to their poll interval.

- In one process: :func:`notify` wakes every idle worker of the process (a merge recorded by
  the API in ``caas demo``, the jobs a plan job just queued, a retried job).
- Across processes, on PostgreSQL: a trigger on ``reconciler_jobs`` sends
  ``NOTIFY caas_reconciler_jobs`` whenever a job is inserted or leaves ``running`` (queued
  again, or ended: its dependants and its environment are free) — delivered at commit, folded to
  one per transaction (migration ``reconciler_notify_0001``), so no write path can forget it.
  Each worker holds one ``LISTEN`` connection (:class:`Listener`, a thread) that turns the
  notifications into :func:`notify`.
- The poll interval (``worker_poll_interval_s``) stays the fallback: a job whose ``not_before``
  has come, SQLite across processes, a listening connection being re-established.

A worker clears its :class:`Wakeup` *before* it looks for a job and waits on it after finding
none, so a notification arriving in between is never lost.
"""

from __future__ import annotations

import logging
import threading
import weakref

from sqlalchemy import Engine, PoolProxiedConnection

log = logging.getLogger("caas.reconciler.wakeup")

CHANNEL = "caas_reconciler_jobs"
RECONNECT_S = (0.5, 30.0)  # first and longest wait before listening again after an error

_waiters: weakref.WeakSet[Wakeup] = weakref.WeakSet()
_waiters_lock = threading.Lock()


class Wakeup:
    """One idle worker's alarm: set by :func:`notify`, by its :class:`Listener`, or to stop."""

    def __init__(self) -> None:
        self._event = threading.Event()
        with _waiters_lock:
            _waiters.add(self)

    def set(self) -> None:
        self._event.set()

    def clear(self) -> None:
        self._event.clear()

    def wait(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds; True when woken (not cleared here)."""
        return self._event.wait(timeout)


def notify() -> None:
    """Wake every idle worker of this process now."""
    with _waiters_lock:
        waiters = list(_waiters)
    for waiter in waiters:
        waiter.set()


class Listener:
    """``LISTEN caas_reconciler_jobs`` on a dedicated autocommit connection of ``engine``
    (PostgreSQL only: :meth:`start` does nothing on SQLite); every notification calls
    :func:`notify`. A lost connection is re-opened with a growing pause (``RECONNECT_S``) and
    wakes the workers once, as anything may have been missed meanwhile."""

    def __init__(self, engine: Engine, *, check_s: float = 1.0) -> None:
        self.engine = engine
        self.check_s = check_s  # how often the thread notices stop()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.listening = threading.Event()  # set while LISTEN is in effect (tests wait on it)

    def start(self) -> None:
        if self.engine.dialect.name != "postgresql" or self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="caas-worker-listen",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.check_s * 5)
            self._thread = None

    def _run(self) -> None:
        pause = RECONNECT_S[0]
        failing = False
        while not self._stop.is_set():
            conn: PoolProxiedConnection | None = None
            try:
                conn = self.engine.raw_connection()
                driver = conn.driver_connection
                driver.autocommit = True  # type: ignore[union-attr]
                driver.execute(f"LISTEN {CHANNEL}")  # type: ignore[union-attr]
                self.listening.set()
                if failing:
                    log.info("listening for reconciler jobs again")
                failing, pause = False, RECONNECT_S[0]
                notify()  # whatever was queued while not listening
                while not self._stop.is_set():
                    for _ in driver.notifies(timeout=self.check_s):  # type: ignore[union-attr]
                        notify()
            except Exception:
                self.listening.clear()
                if not failing:
                    log.warning("listening for reconciler jobs failed; polling every "
                                "CAAS_WORKER_POLL_INTERVAL_S until it is back", exc_info=True)
                failing = True
                self._stop.wait(pause)
                pause = min(pause * 2, RECONNECT_S[1])
            finally:
                self.listening.clear()
                if conn is not None:
                    try:
                        conn.invalidate()  # never back to the pool in autocommit + LISTEN
                    except Exception:
                        log.debug("closing the listening connection failed", exc_info=True)
