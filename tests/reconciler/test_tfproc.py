"""Terraform's processes and the worker's lifetime, with real processes: the parent-death
interrupt, waiting for (never killing) a predecessor, reaping what a dead one left."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler import tfproc


def wait_until(predicate: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(predicate) and predicate():
            return True
        time.sleep(0.05)
    return False


@contextlib.contextmanager
def _worker(code: str, pidfile: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """A "worker" process running ``code`` (in a session of its own, so killing it never
    touches pytest) and the PID its child wrote to ``pidfile``; killed at the end if alive."""
    proc = subprocess.Popen([sys.executable, "-c", code], env={**os.environ},
                            start_new_session=True)
    try:
        assert wait_until(pidfile.exists, 20)
        yield proc, int(pidfile.read_text())
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.parametrize("sigint", ["default", "ignored"])
def test_a_child_is_interrupted_when_its_worker_is_killed(tmp_path: Path, sigint: str) -> None:
    """kill -9 of the parent alone: the child gets exactly one SIGINT, in its own session —
    also when the worker itself was started with SIGINT ignored (``caas worker &`` from a
    script, ``nohup``), which a shell child would otherwise inherit and could not trap."""
    got, pidfile = tmp_path / "interrupted", tmp_path / "child.pid"
    child = (f"trap 'echo INT >> {got}; exit 0' INT; echo $$ > {pidfile}; "
             "while true; do sleep 0.05; done")
    parent = textwrap.dedent(f"""
        import signal, time
        if {sigint == "ignored"}:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        from reconciler import tfproc
        tfproc.spawn(["sh", "-c", {child!r}], env={{"PATH": "/usr/bin:/bin"}})
        time.sleep(60)
    """)
    with _worker(parent, pidfile) as (proc, child_pid):
        assert os.getsid(child_pid) != os.getsid(proc.pid)  # its own session (its guard's)
        assert not got.exists()
        os.kill(proc.pid, signal.SIGKILL)  # the worker's PID alone
        proc.wait()
        assert wait_until(got.exists, 10)
        assert wait_until(lambda: tfproc._start_time(child_pid) is None, 10)
        assert got.read_text() == "INT\n"


def test_a_child_re_parented_twice_is_interrupted_once(tmp_path: Path) -> None:
    """The kernel re-sends the parent-death signal each time the child is re-parented, and a
    child of a multi-threaded worker moves to another live thread first: a ``kill -9`` ending
    the worker's threads one by one gave Terraform two interrupts ("Two interrupts received.
    Exiting immediately") and lost the resource it was provisioning. Made deterministic here:
    the thread that started the child ends (first move, to the main thread), then the worker
    is killed (second move). The child, running on after its first interrupt, counts: one."""
    got, pidfile = tmp_path / "interrupted", tmp_path / "child.pid"
    child = (f"trap 'echo INT >> {got}' INT; echo $$ > {pidfile}; "
             "i=0; while [ $i -lt 40 ]; do sleep 0.05; i=$((i+1)); done")
    parent = textwrap.dedent(f"""
        import threading, time
        from reconciler import tfproc
        def start():
            tfproc.spawn(["sh", "-c", {child!r}], env={{"PATH": "/usr/bin:/bin"}})
            time.sleep(0.5)
        thread = threading.Thread(target=start)
        thread.start()
        thread.join()
        time.sleep(60)
    """)
    with _worker(parent, pidfile) as (proc, child_pid):
        assert wait_until(got.exists, 10)  # the starting thread ended: the first move
        os.kill(proc.pid, signal.SIGKILL)  # the second
        proc.wait()
        assert wait_until(lambda: tfproc._start_time(child_pid) is None, 20)
        assert got.read_text() == "INT\n"


def test_the_guard_forwards_one_interrupt_and_returns_the_command_status(tmp_path: Path
                                                                         ) -> None:
    got = tmp_path / "interrupted"
    script = (f"trap 'echo INT >> {got}' INT; i=0; while [ $i -lt 20 ]; do sleep 0.05; "
              "i=$((i+1)); done; exit 7")
    proc = tfproc.spawn(["sh", "-c", script], env={"PATH": "/usr/bin:/bin"})
    time.sleep(0.3)  # the guard has started its command
    for _ in range(3):
        tfproc.interrupt(proc)
        time.sleep(0.05)
    assert proc.wait(timeout=20) == 7  # the command's own status
    assert got.read_text() == "INT\n"
    killed = tfproc.spawn(["sh", "-c", "kill -KILL $$"], env={"PATH": "/usr/bin:/bin"})
    assert killed.wait(timeout=20) == 128 + signal.SIGKILL


def test_settle_waits_for_a_running_predecessor_and_never_kills_it(tmp_path: Path) -> None:
    work = tmp_path / "unit"
    work.mkdir()
    proc = tfproc.spawn(["sleep", "1.5"], env={"PATH": "/usr/bin:/bin"})
    context = tfproc.owned(work, proc, "apply")
    context.__enter__()
    (work / tfproc.LOCK_INFO).write_text("{}")
    lines: list[str] = []
    with pytest.raises(tfproc.StillRunning):
        tfproc.settle(work, wait_s=0.2, log=lines.append)
    assert proc.poll() is None and (work / tfproc.LOCK_INFO).exists()
    # The owner "dies" without cleaning up (its pid file stays); the process runs on.
    waiter = threading.Thread(target=tfproc.settle, args=(work,),
                              kwargs={"wait_s": 30, "log": lines.append})
    waiter.start()
    waiter.join()
    assert proc.wait() == 0  # it ran to its end: nobody signalled it
    assert not (work / tfproc.PIDFILE).exists() and not (work / tfproc.LOCK_INFO).exists()
    assert any("waiting for it to exit" in line for line in lines)
    assert any(line.startswith("reaped") for line in lines)


def test_reap_orphans_cleans_dead_ones_and_leaves_live_ones(tmp_path: Path) -> None:
    root = tmp_path / "terraform"
    dead_dir, live_dir, scratch = root / "qa" / "backend", root / "qa" / "network", \
        root / ".preview" / "abc"
    for d in (dead_dir, live_dir, scratch):
        d.mkdir(parents=True)
    gone = tfproc.spawn(["sleep", "0.3"], env={"PATH": "/usr/bin:/bin"})
    with tfproc.owned(dead_dir, gone, "apply"):
        gone.wait()
        saved = (dead_dir / tfproc.PIDFILE).read_text()
    (dead_dir / tfproc.PIDFILE).write_text(saved)  # left behind by a dead worker
    (dead_dir / tfproc.LOCK_INFO).write_text("{}")
    (scratch / tfproc.PIDFILE).write_text(saved.replace(f'"worker_pid": {os.getpid()}',
                                                        '"worker_pid": 999999999'))
    live = tfproc.spawn(["sleep", "5"], env={"PATH": "/usr/bin:/bin"})
    try:
        with tfproc.owned(live_dir, live, "plan"):
            lines: list[str] = []
            cleaned = tfproc.reap_orphans(root, log=lines.append)
            assert cleaned == [dead_dir, scratch]
            assert (live_dir / tfproc.PIDFILE).exists()
    finally:
        live.kill()
        live.wait()
    assert not (dead_dir / tfproc.PIDFILE).exists()
    assert not (dead_dir / tfproc.LOCK_INFO).exists()
    assert not scratch.exists()
