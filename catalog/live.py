"""Live status from the platform cluster: namespaces, their quotas, ArgoCD Applications.

Public contract:

- ``LiveStatus.from_settings(settings)`` never raises for a missing kubeconfig: the instance is
  then ``connected=False`` with ``reason="not connected"``, and every answer says so.
- ``LiveStatus.namespace(name) -> NamespaceLive``: ``present``, ``phase`` and each
  ResourceQuota's ``hard``/``used`` (Kubernetes quantity strings, as the cluster reports them;
  ``gitops.quantity`` turns them into numbers).
- ``LiveStatus.application(name) -> AppLive``: ArgoCD ``sync`` and ``health`` status.
- ``LiveStatus.role_bindings(namespace) -> RoleBindingsLive``: each RoleBinding's role and
  subjects (``kind:name``), for drift.

When the cluster cannot be asked (no kubeconfig, unreachable, refused), the answer carries
``connected=False`` and the ``reason``, and its facts are None: the catalog shows "not
connected" rather than guessing. Calls use short timeouts because catalog pages wait on them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

if TYPE_CHECKING:
    from portal.settings import Settings

NOT_CONNECTED = "not connected"
# (connect, read) seconds: a page must not hang on a slow API server.
TIMEOUT = (2.0, 5.0)


@dataclass(frozen=True)
class QuotaLive:
    name: str
    hard: dict[str, str] = field(default_factory=dict)
    used: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class NamespaceLive:
    name: str
    connected: bool
    reason: str | None = None
    present: bool | None = None
    phase: str | None = None
    quotas: tuple[QuotaLive, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def hard(self) -> dict[str, str]:
        """All quotas' hard limits (a namespace normally has one quota)."""
        return {k: v for q in self.quotas for k, v in q.hard.items()}

    @property
    def used(self) -> dict[str, str]:
        return {k: v for q in self.quotas for k, v in q.used.items()}


@dataclass(frozen=True)
class AppLive:
    name: str
    connected: bool
    reason: str | None = None
    found: bool | None = None
    sync: str | None = None  # Synced | OutOfSync | Unknown
    health: str | None = None  # Healthy | Progressing | Degraded | Suspended | Missing | Unknown
    revision: str | None = None
    # RFC 3339 times from the Application's status: when its health last changed
    # (status.health.lastTransitionTime) and when its last sync finished
    # (status.operationState.finishedAt, else the newest status.history[].deployedAt).
    health_since: str | None = None
    synced_at: str | None = None


@dataclass(frozen=True)
class RoleBindingsLive:
    namespace: str
    connected: bool
    reason: str | None = None
    # name -> (roleRef kind/name, sorted subjects as "<kind>:<name>")
    bindings: dict[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)


def _why(exc: Exception) -> str:
    if isinstance(exc, ApiException):
        return f"cluster refused: {exc.status} {exc.reason or ''}".strip()
    return f"cluster unreachable: {type(exc).__name__}"


class LiveStatus:
    """Reads from one cluster; ``api_client=None`` means not connected (``reason`` says why)."""

    def __init__(self, api_client: k8s.ApiClient | None, *, argocd_namespace: str = "argocd",
                 reason: str | None = None) -> None:
        self._client = api_client
        self.argocd_namespace = argocd_namespace
        self.reason = reason if api_client is None else None
        if api_client is None and reason is None:
            self.reason = NOT_CONNECTED

    @property
    def connected(self) -> bool:
        """Configured with a usable kubeconfig (each answer still says if the cluster replied)."""
        return self._client is not None

    @classmethod
    def from_settings(cls, settings: Settings) -> LiveStatus:
        if settings.kubeconfig is None:
            return cls(None, reason=NOT_CONNECTED)
        try:
            api_client = k8s_config.new_client_from_config(config_file=str(settings.kubeconfig),
                                                           context=settings.kube_context)
        except Exception as exc:  # YAML, missing keys, bad certificates: all mean unusable
            return cls(None, reason=f"{NOT_CONNECTED}: kubeconfig unusable ({exc})")
        return cls(api_client, argocd_namespace=settings.argocd_namespace)

    def namespace(self, name: str) -> NamespaceLive:
        if self._client is None:
            return NamespaceLive(name=name, connected=False, reason=self.reason)
        core = k8s.CoreV1Api(self._client)
        try:
            ns = core.read_namespace(name, _request_timeout=TIMEOUT)
        except ApiException as exc:
            if exc.status == 404:
                return NamespaceLive(name=name, connected=True, present=False)
            return NamespaceLive(name=name, connected=False, reason=_why(exc))
        except HTTPError as exc:
            return NamespaceLive(name=name, connected=False, reason=_why(exc))
        try:
            listing = core.list_namespaced_resource_quota(name, _request_timeout=TIMEOUT)
        except (ApiException, HTTPError) as exc:
            return NamespaceLive(name=name, connected=False, reason=_why(exc))
        quotas = tuple(
            QuotaLive(name=q.metadata.name,
                      hard=dict((q.status.hard if q.status else None) or {}),
                      used=dict((q.status.used if q.status else None) or {}))
            for q in sorted(listing.items or [], key=lambda q: str(q.metadata.name)))
        phase = ns.status.phase if ns.status else None
        labels = dict((ns.metadata.labels if ns.metadata else None) or {})
        return NamespaceLive(name=name, connected=True, present=True, phase=phase,
                             quotas=quotas, labels=labels)

    def role_bindings(self, namespace: str) -> RoleBindingsLive:
        if self._client is None:
            return RoleBindingsLive(namespace=namespace, connected=False, reason=self.reason)
        rbac = k8s.RbacAuthorizationV1Api(self._client)
        try:
            listing = rbac.list_namespaced_role_binding(namespace, _request_timeout=TIMEOUT)
        except (ApiException, HTTPError) as exc:
            return RoleBindingsLive(namespace=namespace, connected=False, reason=_why(exc))
        bindings = {}
        for item in listing.items or []:
            ref = item.role_ref
            subjects = tuple(sorted(f"{s.kind}:{s.name}" for s in item.subjects or []))
            bindings[str(item.metadata.name)] = (f"{ref.kind}/{ref.name}" if ref else "",
                                                 subjects)
        return RoleBindingsLive(namespace=namespace, connected=True, bindings=bindings)

    def application(self, name: str) -> AppLive:
        if self._client is None:
            return AppLive(name=name, connected=False, reason=self.reason)
        api = k8s.CustomObjectsApi(self._client)
        try:
            obj: dict[str, Any] = api.get_namespaced_custom_object(
                "argoproj.io", "v1alpha1", self.argocd_namespace, "applications", name,
                _request_timeout=TIMEOUT)
        except ApiException as exc:
            if exc.status == 404:
                return AppLive(name=name, connected=True, found=False)
            return AppLive(name=name, connected=False, reason=_why(exc))
        except HTTPError as exc:
            return AppLive(name=name, connected=False, reason=_why(exc))
        status = obj.get("status") or {}
        sync = status.get("sync") or {}
        health = status.get("health") or {}
        operation = status.get("operationState") or {}
        history = [h for h in status.get("history") or [] if isinstance(h, dict)]
        synced_at = operation.get("finishedAt") or (
            history[-1].get("deployedAt") if history else None)
        return AppLive(name=name, connected=True, found=True, sync=sync.get("status"),
                       health=health.get("status"), revision=sync.get("revision"),
                       health_since=health.get("lastTransitionTime"), synced_at=synced_at)
