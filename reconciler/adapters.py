"""What the reconciler's cluster and identity adapters (ArgoCD, Keycloak) share.

- ``NotConfigured``: raised by an adapter's ``from_settings`` when its settings are empty. The job
  handler records it as "skipped: <reason>" — a visible status, never a silent success.
- ``AdapterError(message, temporary=...)``: a failed call. ``temporary`` (connection refused,
  timeouts, 5xx, 429) means retrying later can help; otherwise (4xx: validation, forbidden,
  conflict) it cannot. Subclasses: ``reconciler.argocd.ApplyError``,
  ``reconciler.keycloak.SyncError``.
"""

from __future__ import annotations

from portal.errors import CaasError
from reconciler.errors import ReconcilerError


class NotConfigured(CaasError):
    """The integration has no configuration here; ``reason`` says what is missing."""

    status = 503
    code = "not_configured"

    def __init__(self, reason: str = "not connected", *, setting: str | None = None) -> None:
        super().__init__(reason, field=setting)
        self.reason = reason


class AdapterError(ReconcilerError):
    """A call to the cluster or the identity provider failed."""

    code = "adapter_error"

    def __init__(self, message: str, *, temporary: bool, status: int | None = None) -> None:
        super().__init__(message)
        self.temporary = temporary
        self.http_status = status


def is_temporary_status(status: int | None) -> bool:
    """HTTP statuses worth retrying: none (no answer), 408, 429 and every 5xx."""
    return status is None or status in (408, 429) or status >= 500
