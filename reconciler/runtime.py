"""Running the reconciler: in-process for ``caas demo``, as its own process for ``caas worker``."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType

from sqlalchemy import Engine

from gitops.forges.factory import make_forge
from portal.settings import Settings
from reconciler import wakeup
from reconciler.drift_job import DriftJob
from reconciler.identity_resync import KeycloakResync
from reconciler.poller import Poller
from reconciler.worker import Worker

log = logging.getLogger("caas.reconciler")


def start_in_process(settings: Settings, engine: Engine) -> Callable[[], None]:
    """Start a worker thread and the main-branch poller; returns the function that stops both
    (the running job, if any, is finished first)."""
    forge = make_forge(settings, engine)
    stop = threading.Event()
    worker = Worker(settings, engine, forge)
    threads = [
        threading.Thread(target=worker.run, args=(stop,), name="caas-worker", daemon=True),
        threading.Thread(target=Poller(settings, engine, forge).run, args=(stop,),
                         name="caas-poller", daemon=True),
        threading.Thread(target=KeycloakResync(settings, forge).run, args=(stop,),
                         name="caas-keycloak-resync", daemon=True),
        threading.Thread(target=DriftJob(settings, engine, forge).run, args=(stop,),
                         name="caas-drift", daemon=True),
    ]
    for thread in threads:
        thread.start()
    log.info("reconciler started in-process", extra={"worker": worker.id})

    def stopper() -> None:
        stop.set()
        wakeup.notify()
        for thread in threads:
            thread.join(timeout=settings.worker_lease_s)

    return stopper


def run_worker(settings: Settings, engine: Engine, *, once: bool) -> None:
    """``caas worker``: work until SIGTERM/SIGINT (the current job finishes first), or with
    ``once`` until nothing is runnable."""
    forge = make_forge(settings, engine)
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %s: finishing the current job, then stopping", signum)
        stop.set()
        wakeup.notify()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    poller_thread = None
    if not once:
        poller_thread = threading.Thread(target=Poller(settings, engine, forge).run,
                                         args=(stop,), name="caas-poller", daemon=True)
        poller_thread.start()
        threading.Thread(target=KeycloakResync(settings, forge).run, args=(stop,),
                         name="caas-keycloak-resync", daemon=True).start()
        threading.Thread(target=DriftJob(settings, engine, forge).run, args=(stop,),
                         name="caas-drift", daemon=True).start()
    worker = Worker(settings, engine, forge)
    log.info("reconciler worker started", extra={"worker": worker.id})
    try:
        worker.run(stop, once=once)
    finally:
        stop.set()
        if poller_thread is not None:
            poller_thread.join(timeout=5)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
