"""The reconciler's error tree: what a job handler raises decides what the queue does next.

Modelled on kopf: a ``TemporaryError`` is retried with exponential backoff (until the job is
dead after ``worker_max_attempts``), a ``PermanentError`` fails the job at once. Any other
exception is treated as temporary: a bug or an outage should not lose the job. ``Waiting`` is
not a failure: what the job waits for is in progress (an ArgoCD finalizer, a terminating
Namespace); the job looks again every ``worker_wait_poll_s`` without spending an attempt, until
``worker_wait_deadline_s`` after its wait began, and then fails.
"""

from __future__ import annotations

from portal.errors import CaasError


class ReconcilerError(CaasError):
    status = 500
    code = "reconciler_error"


class TemporaryError(ReconcilerError):
    """Retry later (network down, state locked, forge unavailable)."""

    code = "temporary"

    def __init__(self, message: str, *, delay: float | None = None) -> None:
        super().__init__(message)
        self.delay = delay


class PermanentError(ReconcilerError):
    """Retrying cannot help (bad input, commit not on main, module missing)."""

    code = "permanent"


class Waiting(ReconcilerError):
    """In progress elsewhere: poll again later; spends no attempt (its own deadline)."""

    code = "waiting"
