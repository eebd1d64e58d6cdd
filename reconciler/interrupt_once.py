"""A guard process that interrupts the command it runs exactly once, whatever it is sent.

Usage (by ``reconciler.tfproc.spawn``): ``python -I reconciler/interrupt_once.py CMD ARG...``;
its exit status is the command's (128 + N when the command died of signal N).

Why a process between the worker and Terraform: a parent-death signal (Linux
``prctl(PR_SET_PDEATHSIG)``) is sent each time the child is *re-parented*, and a child of a
multi-threaded process is first re-parented to another live thread of that process when the
thread that started it exits (kernel/exit.c ``find_new_reaper``, then ``forget_original_parent``
sends the signal on every move). A ``kill -9`` of the worker ends its threads one by one, so
Terraform received two ``SIGINT`` within a millisecond and printed "Two interrupts received.
Exiting immediately", without saving the state of the resource it was provisioning
(``tests/reconciler/test_crash.py`` saw it). This guard is single-threaded: its own child is
re-parented once, so Terraform's parent-death ``SIGINT`` fires at most once; and the guard
forwards the first ``SIGINT`` or ``SIGTERM`` it receives (the worker's death, possibly several
times, or the worker's timeout interrupt) as one ``SIGINT`` and ignores every later one.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import FrameType

# Run as a script with -I: the repository root is not on the path.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from portal import parent_death


class _Once:
    """The forwarding state: the child's PID once started; whether an interrupt is owed or
    was sent."""

    def __init__(self) -> None:
        self.pid: int | None = None
        self.owed = False
        self.sent = False

    def receive(self, _signum: int, _frame: FrameType | None) -> None:
        self.owed = True
        self.forward()

    def forward(self) -> None:
        if self.owed and not self.sent and self.pid is not None:
            self.sent = True
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGINT)


def main(argv: list[str]) -> int:
    """Run ``argv`` with a parent-death ``SIGINT``; forward at most one interrupt; its status."""
    if not argv:
        print("usage: interrupt_once.py CMD [ARG...]", file=sys.stderr)
        return 2
    once = _Once()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, once.receive)
    # Inherited fds (the output file) pass through; the guard is the child's only parent.
    child = subprocess.Popen(argv, preexec_fn=parent_death.preexec(signal.SIGINT.value,
                                                                    reset=True))
    once.pid = child.pid
    once.forward()  # a signal that came while the child was starting
    code = child.wait()
    return 128 - code if code < 0 else code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
