"""A child process that dies with its parent: Linux ``prctl(PR_SET_PDEATHSIG)`` (man 2 prctl).

Public API:

- ``preexec(sig, *, reset=False) -> Callable[[], None]`` — a ``subprocess.Popen(preexec_fn=...)``
  that arms signal ``sig`` (e.g. ``signal.SIGKILL``) for the child when its parent dies, resets
  the child's disposition of ``sig`` to the default first when ``reset`` (an inherited
  ``SIG_IGN`` would swallow it), and exits the child at once (status 1) when the parent died
  before the signal was armed.

The signal follows the *thread* that started the child: start such children from a thread that
lives as long as the process. Off Linux (no ``/proc``) nothing is armed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from collections.abc import Callable

PR_SET_PDEATHSIG = 1


def _load_libc(function: str) -> Callable[..., int] | None:
    if not os.path.exists("/proc/self/stat"):
        return None  # not Linux: no parent-death signal
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name, use_errno=True)
    except OSError:
        return None
    found: Callable[..., int] = getattr(libc, function)
    return found


# Resolved once, before any fork: the child only calls them.
_PRCTL = _load_libc("prctl")
_SIGNAL = _load_libc("signal")  # signal(2); SIG_DFL is 0


def preexec(sig: int, *, reset: bool = False) -> Callable[[], None]:
    """The ``preexec_fn`` arming ``sig`` as the child's parent-death signal."""
    parent = os.getpid()

    def arm() -> None:  # in the child, between fork and exec: no imports, no allocation
        if reset and _SIGNAL is not None:
            _SIGNAL(sig, 0)
        if _PRCTL is not None:
            _PRCTL(PR_SET_PDEATHSIG, sig, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the signal was armed
            os._exit(1)

    return arm
