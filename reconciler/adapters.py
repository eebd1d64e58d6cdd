"""What the reconciler's cluster and identity adapters (ArgoCD, Keycloak) share.

- ``NotConfigured``: raised by an adapter's ``from_settings`` when its settings are empty. The job
  handler records it as "skipped: <reason>" — a visible status, never a silent success.
- ``is_temporary_status(status)``: whether a failed call is worth retrying. Failed calls raise
  the reconciler's one retry vocabulary (``reconciler.errors``, kopf's shape): a
  ``TemporaryError`` (connection refused, timeouts, 408, 429, 5xx) or a ``PermanentError``
  (other 4xx: validation, forbidden, conflict) — ``reconciler.argocd.ArgoCDTemporaryError`` /
  ``ArgoCDPermanentError`` and ``reconciler.keycloak.KeycloakTemporaryError`` /
  ``KeycloakPermanentError``. The worker alone turns them into retry or fail.
"""

from __future__ import annotations

from portal.errors import CaasError


class NotConfigured(CaasError):
    """The integration has no configuration here; ``reason`` says what is missing."""

    status = 503
    code = "not_configured"

    def __init__(self, reason: str = "not connected", *, setting: str | None = None) -> None:
        super().__init__(reason, field=setting)
        self.reason = reason


def is_temporary_status(status: int | None) -> bool:
    """HTTP statuses worth retrying: none (no answer), 408, 429 and every 5xx."""
    return status is None or status in (408, 429) or status >= 500
