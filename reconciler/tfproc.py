"""Terraform processes tied to the worker's lifetime.

- Every ``terraform`` runs in its own session (process group): a signal to the worker's group
  (Ctrl-C in a terminal, ``kill`` of the group) never reaches it half-way through a provisioner.
- Its parent-death signal (Linux ``prctl(PR_SET_PDEATHSIG)``, man 2 prctl) is ``SIGINT``: when
  the worker dies, even by ``kill -9`` of its PID alone, Terraform receives one interrupt and stops
  gracefully — it stops its operation, writes its state and releases the state lock
  (https://developer.hashicorp.com/terraform/cli/commands/apply: "Terraform will attempt to
  gracefully stop ... on interrupt"). It is never sent a second one (which makes Terraform exit at
  once, without saving): the signal is re-sent each time a child is re-parented, and a child of
  the multi-threaded worker is re-parented thread by thread as a ``kill -9`` ends them, so
  Terraform runs under a single-threaded guard (``reconciler.interrupt_once``) that forwards
  one interrupt and ignores the rest. The signal follows the *thread* that started the
  process: run Terraform from a thread that lives as long as the worker. Its ``SIGINT``
  disposition is reset to the default first: a worker started in the background of a
  non-interactive shell (``caas worker &``, ``nohup``) inherits ``SIGINT`` ignored, and an
  ignored signal cannot be trapped by a shell wrapper (POSIX sh, "trap": "Signals that were
  ignored on entry to a non-interactive shell cannot be trapped or reset").
- Its output goes to a file in the working directory (``.caas-terraform.out``) that the worker
  follows, never to a pipe: a pipe dies with the worker, and Terraform writing its "Interrupt
  received" to a broken pipe would itself die of ``SIGPIPE`` before saving its state.
- While it runs, the working directory holds ``.caas-terraform.json`` (its PID, its start time,
  the worker's PID, the host). A successor finds it: a still-running predecessor is *waited for*
  (``settle``), never killed; one that is gone leaves only stale files, which are removed
  (its pid file and Terraform's ``.terraform.tfstate.lock.info``; the local backend's lock
  itself is an ``fcntl`` lock the kernel released with the process).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from portal import parent_death
from reconciler.tfdiag import Diagnostic, parse_line

GUARD = str(Path(__file__).with_name("interrupt_once.py"))
PIDFILE = ".caas-terraform.json"
OUTPUT = ".caas-terraform.out"
LOCK_INFO = ".terraform.tfstate.lock.info"
POLL_S = 0.5
FOLLOW_S = 0.05
Log = Callable[[str], None]


def spawn(cmd: list[str], *, env: dict[str, str], **kwargs: Any) -> subprocess.Popen[str]:
    """Start ``cmd`` in its own session, interrupted exactly once (SIGINT) when the calling
    thread's process dies or ``interrupt`` is called, through the single-threaded guard
    ``reconciler.interrupt_once`` (the returned process is the guard; its exit status is the
    command's, 128 + N for a command killed by signal N)."""
    return subprocess.Popen([sys.executable, "-I", GUARD, *cmd], env=env, text=True,
                            stdin=subprocess.DEVNULL,
                            start_new_session=True,
                            preexec_fn=parent_death.preexec(signal.SIGINT.value, reset=True),
                            **kwargs)


def interrupt(proc: subprocess.Popen[str]) -> None:
    """One graceful interrupt (Terraform saves its state and releases its lock)."""
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGINT)


def kill_group(proc: subprocess.Popen[str]) -> None:
    """Last resort for a process that ignored its interrupt: the whole group."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


# ---- who runs terraform in a working directory --------------------------------------------------


@dataclass(frozen=True)
class Owner:
    """The terraform process running in a working directory, and the worker that started it."""

    pid: int
    start: str  # the process's start time (/proc/<pid>/stat field 22): PIDs are reused
    host: str
    worker_pid: int
    command: str

    def running(self) -> bool:
        return self.host == socket.gethostname() and _start_time(self.pid) == self.start

    def worker_running(self) -> bool:
        return self.host == socket.gethostname() and _start_time(self.worker_pid) is not None


def _start_time(pid: int) -> str | None:
    """Start time of a live (not zombie) process, None when there is none."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    if len(fields) < 20 or fields[0] in ("Z", "X"):
        return None
    return fields[19]


def read_owner(work: Path) -> Owner | None:
    try:
        raw = json.loads((work / PIDFILE).read_text())
        return Owner(pid=int(raw["pid"]), start=str(raw["start"]), host=str(raw["host"]),
                     worker_pid=int(raw["worker_pid"]), command=str(raw["command"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


@contextlib.contextmanager
def owned(work: Path, proc: subprocess.Popen[str], command: str) -> Iterator[None]:
    """Mark ``work`` as used by ``proc`` while it runs."""
    start = _start_time(proc.pid)
    path = work / PIDFILE
    if start is not None:
        owner = Owner(pid=proc.pid, start=start, host=socket.gethostname(),
                      worker_pid=os.getpid(), command=command)
        tmp = path.with_name(f"{PIDFILE}.{proc.pid}")
        tmp.write_text(json.dumps(asdict(owner)))
        tmp.replace(path)
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


class StillRunning(Exception):
    """A predecessor's terraform is still finishing in this working directory."""

    def __init__(self, owner: Owner) -> None:
        super().__init__(f"terraform {owner.command} (pid {owner.pid}) of an earlier worker "
                         f"(pid {owner.worker_pid}) is still running here")
        self.owner = owner


def settle(work: Path, *, wait_s: float, log: Log) -> None:
    """Before running terraform in ``work``: wait for a predecessor's terraform to exit (it was
    interrupted when its worker died and is saving its state), then remove what it left.
    Raises ``StillRunning`` after ``wait_s``; never signals the process."""
    owner = read_owner(work)
    if owner is None:
        return
    if owner.running():
        log(f"terraform {owner.command} (pid {owner.pid}) of worker pid {owner.worker_pid} is "
            "still running here; waiting for it to exit (it is never killed)")
        deadline = time.monotonic() + wait_s
        while owner.running():
            if time.monotonic() >= deadline:
                raise StillRunning(owner)
            time.sleep(POLL_S)
    elif owner.host != socket.gethostname():
        return  # another host's process: Terraform's own lock decides
    _reap(work, owner, log)


def _reap(work: Path, owner: Owner, log: Log) -> None:
    last = _last_messages(work / OUTPUT)
    if last:
        log(f"the last messages of terraform {owner.command} (pid {owner.pid}): " +
            " | ".join(last))
    removed = [name for name in (LOCK_INFO, PIDFILE) if (work / name).exists()]
    for name in removed:
        (work / name).unlink(missing_ok=True)
    log(f"reaped what terraform {owner.command} (pid {owner.pid}, worker pid "
        f"{owner.worker_pid}) left in {work.name}: {', '.join(removed) or 'nothing'}")


def _last_messages(path: Path, count: int = 4) -> list[str]:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()[-count:]
    except OSError:
        return []
    return [parse_line(line).text.splitlines()[0] for line in lines
            if parse_line(line).text.strip()]


def reap_orphans(root: Path, *, log: Log) -> list[Path]:
    """On a worker's start: clean every working directory under ``root`` whose terraform is gone
    (and drop abandoned plan-preview scratch directories); report the ones still finishing (the
    job that next uses the directory waits for them). Returns the directories cleaned."""
    cleaned: list[Path] = []
    for pidfile in sorted(root.glob(f"*/*/{PIDFILE}")):
        work = pidfile.parent
        if work.parent.name == ".preview":
            continue
        owner = read_owner(work)
        if owner is None or owner.host != socket.gethostname():
            continue
        if owner.running():
            if not owner.worker_running():
                log(f"terraform {owner.command} (pid {owner.pid}) of dead worker pid "
                    f"{owner.worker_pid} is still finishing in {work}; its unit waits for it")
            continue
        _reap(work, owner, log)
        cleaned.append(work)
    for scratch in sorted((root / ".preview").glob(f"*/{PIDFILE}")):
        owner = read_owner(scratch.parent)
        if owner is not None and not owner.running() and not owner.worker_running():
            shutil.rmtree(scratch.parent, ignore_errors=True)
            cleaned.append(scratch.parent)
    return cleaned


# ---- running one command ------------------------------------------------------------------------

# After an interrupt for a timeout, how long Terraform gets to stop before its group is killed.
INTERRUPT_GRACE_S = 600.0


@dataclass(frozen=True)
class Finished:
    """How a streamed command ended: exit code, its diagnostics, whether it was interrupted
    (timed out) and the last lines it printed."""

    code: int
    diagnostics: list[Diagnostic]
    timed_out: bool
    tail: list[str]


def run_streamed(cmd: list[str], *, env: dict[str, str], work: Path, command: str,
                 timeout_s: float, log: Log, redact: Callable[[str], str]) -> Finished:
    """Run a ``-json`` command in ``work``, logging each message (redacted) as it comes and
    collecting its diagnostics. Past ``timeout_s`` it is interrupted once, and killed only if it
    has not stopped ``INTERRUPT_GRACE_S`` later."""
    # 0600: the state beside it holds the same values, but nothing more should read them
    fd = os.open(work / OUTPUT, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as sink:
        proc = spawn(cmd, env=env, stdout=sink, stderr=subprocess.STDOUT)
    expired = threading.Event()

    def _expire() -> None:
        expired.set()
        interrupt(proc)
        killer.start()

    killer = threading.Timer(INTERRUPT_GRACE_S, kill_group, args=(proc,))
    timer = threading.Timer(timeout_s, _expire)
    diagnostics: list[Diagnostic] = []
    tail: deque[str] = deque(maxlen=40)
    with owned(work, proc, command):
        timer.start()
        try:
            for raw in _follow(work / OUTPUT, proc):
                line = parse_line(raw)
                if line.diagnostic is not None:
                    diagnostics.append(Diagnostic(
                        line.diagnostic.severity, redact(line.diagnostic.summary),
                        redact(line.diagnostic.detail), line.diagnostic.address))
                if line.text:
                    text = redact(line.text)
                    tail.append(text)
                    log(text)
            code = proc.wait()
        finally:
            timer.cancel()
            killer.cancel()
    return Finished(code, diagnostics, expired.is_set(), list(tail))


def _follow(path: Path, proc: subprocess.Popen[str]) -> Iterator[str]:
    """The lines of ``path`` as ``proc`` writes them, until it has exited and all is read."""
    partial = ""
    with path.open(encoding="utf-8", errors="replace") as source:
        while True:
            chunk = source.readline()
            if chunk:
                partial += chunk
                if partial.endswith("\n"):
                    yield partial.rstrip("\n")
                    partial = ""
                continue
            if proc.poll() is not None:
                rest = source.read()
                yield from (partial + rest).splitlines()
                return
            time.sleep(FOLLOW_S)


def capture(cmd: list[str], *, env: dict[str, str], timeout_s: float) -> tuple[int, str, str]:
    """Run a read-only command (``show``, ``output``, ``state pull``): (exit code, stdout,
    stderr); exit code -1 when it timed out (then it was killed: it changes nothing)."""
    proc = spawn(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        kill_group(proc)
        proc.communicate()
        return -1, "", ""
    return proc.returncode, out, err
