"""The reconciler's error tree: what a job handler raises decides what the queue does next.

Modelled on kopf: a ``TemporaryError`` is retried with exponential backoff (until the job is
dead after ``worker_max_attempts``), a ``PermanentError`` fails the job at once. Any other
exception is treated as temporary: a bug or an outage should not lose the job.
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
