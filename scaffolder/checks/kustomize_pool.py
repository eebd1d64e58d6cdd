"""Warm ``kubectl kustomize`` processes: kubectl's start-up paid before a build is asked for.

A ``kubectl kustomize`` of a tenant overlay costs ~150-250 ms of CPU, little of it the build:
the Go runtime and kubectl's initialisation, then kustomize's OpenAPI schema, parsed the first
time a strategic-merge patch needs it. A *spare* pays both ahead of time. It is
``kubectl kustomize <spare-dir>`` over::

    <spare-dir>/kustomization.yaml       resources: [warm, hand]
    <spare-dir>/warm/                    a ConfigMap deleted by a strategic-merge patch: kustomize
                                         loads its OpenAPI schema; no object comes out of it
    <spare-dir>/hand/kustomization.yaml  a FIFO (os.mkfifo)

kubectl initialises, builds ``warm``, then blocks opening the FIFO. A build writes
``resources: [<overlay>]`` into it (the overlay's path relative to ``hand``: kustomize refuses
absolute roots) and closes it; kubectl builds the overlay and exits (~15 ms on a quiet machine).
The FIFO is removed as soon as it is written, so an overlay naming the spare's folders finds no
kustomization in ``hand`` (an error, never a hang).

Neither the wrapper nor ``warm`` adds a transformer to the overlay's objects, so the output is
the overlay's own (``tests/scaffolder/checks/test_kustomize_pool.py`` compares every template's
overlays with a direct ``kubectl kustomize``, byte for byte). kustomize's load restrictor
(``LoadRestrictionsRootOnly``) is unchanged: it applies to each kustomization's own folder, the
overlay's as in a direct build. Only a failing build's message differs (it is wrapped in
"accumulating resources from 'hand'"): ``scaffolder.checks.kustomize.build`` builds a failing
overlay again cold for kustomize's own message.

Public API:

- ``configure(size, *, kubectl) -> None`` — the number of spares kept for ``kubectl`` (0: none,
  every build cold), started now; spares beyond a smaller size are stopped. Without a call, the
  size is the setting ``CAAS_KUSTOMIZE_WARM`` (``portal.settings.Settings.kustomize_warm``),
  read on first use.
- ``run(kubectl, folder, *, timeout) -> tuple[int, str, str] | None`` — (exit status, stdout,
  stderr) of ``kubectl kustomize folder`` through a spare; ``None`` when no spare is ready (size
  0, a different ``kubectl``, the first use, a spare that died): the caller builds cold.
  ``subprocess.TimeoutExpired`` after ``timeout`` seconds (the spare is killed).
- ``close() -> None`` — stops every spare and removes its folder (also at interpreter exit).
- ``spare_pids(*, ready=False) -> list[int]`` — the process ids of the idle spares (``ready``:
  only those that have initialised and wait at their FIFO; Linux ``/proc/<pid>/wchan``).

Ownership: one pool per process. Spares are started by one long-lived daemon thread (the
parent-death signal, ``SIGKILL``, follows the thread that started the process:
``portal.parent_death``), lazily on first use and again after each use. After ``os.fork`` the
child forgets the parent's spares (they are the parent's children) and starts its own on its
first use. Folders left by a process that died without cleaning up (``kill -9``, ``os._exit``)
are removed by the next pool that starts (their names carry the owner's process id).
Thread-safe: builds run in server threads and in the worker's ``pr_checks`` jobs.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from portal import parent_death

FIFO = "hand/kustomization.yaml"
WRAPPER = "resources:\n- warm\n- hand\n"
WARM_UP = {  # built before the FIFO is opened: kustomize's OpenAPI schema loaded, nothing output
    "warm/kustomization.yaml": "resources: [configmap.yaml]\npatches:\n- patch: |-\n"
    "    $patch: delete\n    apiVersion: v1\n    kind: ConfigMap\n    metadata:\n"
    "      name: caas-warm-up\n",
    "warm/configmap.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: caas-warm-up\n",
}
PREFIX = "caas-kustomize-warm-"  # + the owning process id + "-": <tmp>/caas-kustomize-warm-<pid>-*
READY_POLL_S = 0.001  # how often a build looks whether its spare has reached the FIFO


@dataclass
class _Spare:
    proc: subprocess.Popen[str]
    folder: Path

    def ready(self) -> bool:
        """kubectl has initialised and blocks opening the FIFO (Linux: one of its threads waits
        in ``wait_for_partner``, the kernel's FIFO open); unknown elsewhere (False)."""
        tasks = Path(f"/proc/{self.proc.pid}/task")
        try:
            return any((t / "wchan").read_text() == "wait_for_partner" for t in tasks.iterdir())
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
        shutil.rmtree(self.folder, ignore_errors=True)


class _Pool:
    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self.lock = threading.Condition()
        self.size: int | None = None  # None: not configured yet (the setting, on first use)
        self.kubectl = ""
        self.spares: list[_Spare] = []
        self.starter: threading.Thread | None = None
        self.closed = False

    def after_fork_in_child(self) -> None:
        for spare in self.spares:  # the parent's processes: close our ends of their pipes only
            for stream in (spare.proc.stdout, spare.proc.stderr):
                if stream is not None:
                    stream.close()
        self._reset()

    def configure(self, size: int, kubectl: str) -> None:
        with self.lock:
            keep = max(0, size) if kubectl == self.kubectl else 0
            self.size, self.kubectl, self.closed = max(0, size), kubectl, False
            surplus = self.spares[keep:]
            del self.spares[keep:]
            if self.size:
                self._start_starter()
            self.lock.notify_all()
        for spare in surplus:
            spare.stop()
        if size > 0:
            _sweep()

    def take(self, kubectl: str) -> _Spare | None:
        with self.lock:
            if self.size is None:
                self.size, self.kubectl = _setting(), kubectl
            if self.size == 0 or kubectl != self.kubectl or self.closed:
                return None
            self._start_starter()
            # A ready spare first; else the one started first (still sooner than a cold start).
            ready = [s for s in self.spares if s.ready()]
            spare = (ready or self.spares)[0] if self.spares else None
            if spare is not None:
                self.spares.remove(spare)
            self.lock.notify_all()  # the starter replaces it
            return spare

    def _start_starter(self) -> None:
        if self.starter is None:  # under self.lock
            self.starter = threading.Thread(target=self._keep_warm, name="kustomize-warm",
                                            daemon=True)
            self.starter.start()

    def _keep_warm(self) -> None:
        """The starter thread: keeps ``size`` spares, for as long as the process lives."""
        _sweep()
        while True:
            with self.lock:
                while self.closed or len(self.spares) >= (self.size or 0):
                    self.lock.wait()
                kubectl = self.kubectl
            try:
                spare = _start(kubectl)
            except OSError:
                time.sleep(1.0)  # kubectl missing or no temp dir: builds go cold meanwhile
                continue
            with self.lock:
                if not self.closed and kubectl == self.kubectl \
                        and len(self.spares) < (self.size or 0):
                    self.spares.append(spare)
                    continue
            spare.stop()

    def close(self) -> None:
        with self.lock:
            spares, self.spares, self.closed = self.spares, [], True
            self.lock.notify_all()
        for spare in spares:
            spare.stop()


def _setting() -> int:
    from portal.settings import Settings

    return Settings().kustomize_warm


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _sweep() -> None:
    """Remove the folders of spares whose process died without cleaning up (``kill -9``, a
    forked child ending with ``os._exit``): their kubectl died with it (parent-death signal)."""
    for folder in Path(tempfile.gettempdir()).glob(f"{PREFIX}*"):
        pid = folder.name.removeprefix(PREFIX).split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _start(kubectl: str) -> _Spare:
    folder = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-"))
    try:
        (folder / "warm").mkdir()
        (folder / "hand").mkdir()
        (folder / "kustomization.yaml").write_text(WRAPPER)
        for name, text in WARM_UP.items():
            (folder / name).write_text(text)
        os.mkfifo(folder / FIFO, 0o600)
        proc = subprocess.Popen(
            [kubectl, "kustomize", str(folder)], stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            # As a direct build: no credentials or plugins from the caller's environment.
            env={"PATH": os.environ.get("PATH", ""), "HOME": str(folder)},
            preexec_fn=parent_death.preexec(signal.SIGKILL.value))
    except OSError:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return _Spare(proc, folder)


def _hand_over(spare: _Spare, wrapper: bytes, deadline: float) -> bool:
    """Write ``wrapper`` into the spare's FIFO once kubectl has opened it; False if it died."""
    fifo = spare.folder / FIFO
    while True:
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:  # ENXIO: kubectl is still starting
            if exc.errno != errno.ENXIO or spare.proc.poll() is not None:
                return False
            if time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(spare.proc.args, 0) from exc
            time.sleep(READY_POLL_S)
            continue
        try:
            os.write(fd, wrapper)  # a few hundred bytes: always fits the pipe's buffer
        finally:
            os.close(fd)
        fifo.unlink()
        return True


def run(kubectl: str, folder: Path, *, timeout: float) -> tuple[int, str, str] | None:
    """``kubectl kustomize folder`` through a spare (see the module docstring)."""
    spare = _POOL.take(kubectl)
    if spare is None:
        return None
    try:
        deadline = time.monotonic() + timeout
        relative = os.path.relpath(folder.resolve(), (spare.folder / FIFO).parent)
        wrapper = f"resources:\n- {json.dumps(relative)}\n".encode()
        if not _hand_over(spare, wrapper, deadline):
            return None
        try:
            out, err = spare.proc.communicate(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            raise subprocess.TimeoutExpired(spare.proc.args, timeout) from None
        return spare.proc.returncode, out, err
    finally:
        spare.stop()


def configure(size: int, *, kubectl: str) -> None:
    """Keep ``size`` spares of ``kubectl`` (0: every build cold)."""
    _POOL.configure(size, kubectl)


def close() -> None:
    """Stop every spare and remove its folder."""
    _POOL.close()


def spare_pids(*, ready: bool = False) -> list[int]:
    """The process ids of the idle spares (``ready``: only those waiting at the FIFO)."""
    with _POOL.lock:
        return [s.proc.pid for s in _POOL.spares if not ready or s.ready()]


_POOL = _Pool()
atexit.register(close)
os.register_at_fork(after_in_child=_POOL.after_fork_in_child)
