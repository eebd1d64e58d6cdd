"""``ArgoCDApplier``: ArgoCD objects applied to the platform cluster with the official client.

Public contract:

- ``ArgoCDApplier.from_settings(settings)`` (``kubeconfig``, ``kube_context``,
  ``argocd_namespace``); raises ``reconciler.adapters.NotConfigured("not connected")`` when
  ``settings.kubeconfig`` is empty. ``ArgoCDApplier(api_client, namespace="argocd")`` for a
  ready ``kubernetes.client.ApiClient``.
- ``apply(manifest) -> Applied`` server-side applies one ``AppProject``, ``ApplicationSet`` or
  ``Application`` (field manager ``caas-portal``, conflicts not forced);
  ``apply_all(manifests) -> list[Applied]`` applies AppProjects first, then ApplicationSets,
  then Applications, so nothing references a project that does not exist yet.
- ``refresh(name) -> bool`` sets ``argocd.argoproj.io/refresh: normal`` on an Application
  (False when it does not exist).
- ``sync(name, actor=...) -> bool`` asks ArgoCD to sync an Application now (sets its
  ``operation``, as ``argocd app sync`` does; False when it does not exist): drift's fix for a
  cluster object that differs from git.
- ``status(name) -> AppStatus`` reads ``status.sync.status`` and ``status.health.status``.
- Failures raise an ``ApplyError`` in the reconciler's retry vocabulary (``reconciler.errors``):
  ``ArgoCDTemporaryError`` for connection errors, 408/429/5xx, ``ArgoCDPermanentError`` for
  other 4xx (validation, forbidden, a field-manager conflict) and a refused manifest.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from reconciler.adapters import NotConfigured, is_temporary_status
from reconciler.errors import PermanentError, ReconcilerError, TemporaryError

if TYPE_CHECKING:
    from portal.settings import Settings
    from reconciler.clients import Clients

FIELD_MANAGER = "caas-portal"
GROUP, VERSION = "argoproj.io", "v1alpha1"
REFRESH_ANNOTATION = "argocd.argoproj.io/refresh"
APPLY_PATCH = "application/apply-patch+yaml"
MERGE_PATCH = "application/merge-patch+json"
# kind → (plural, apply order). Projects first: sets and apps name their project.
KINDS: dict[str, tuple[str, int]] = {
    "AppProject": ("appprojects", 0),
    "ApplicationSet": ("applicationsets", 1),
    "Application": ("applications", 2),
}


class ApplyError(ReconcilerError):
    """Applying or reading an ArgoCD object failed. Raised as ``ArgoCDTemporaryError`` (the
    worker retries) or ``ArgoCDPermanentError`` (the job fails); ``http_status`` is the API
    server's answer (None: no answer)."""

    code = "argocd_apply_failed"

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.http_status = status

    @staticmethod
    def make(message: str, *, temporary: bool, status: int | None = None) -> ApplyError:
        if temporary:
            return ArgoCDTemporaryError(message, status=status)
        return ArgoCDPermanentError(message, status=status)


class ArgoCDTemporaryError(ApplyError, TemporaryError):
    """Retrying can help (no answer, 408, 429, 5xx)."""


class ArgoCDPermanentError(ApplyError, PermanentError):
    """Retrying cannot help (other 4xx, an unusable kubeconfig, a refused manifest)."""


@dataclass(frozen=True)
class Applied:
    kind: str
    name: str
    namespace: str
    resource_version: str | None


@dataclass(frozen=True)
class AppStatus:
    """An Application's sync and health as ArgoCD reports them (None: not reported yet)."""

    name: str
    found: bool
    sync: str | None = None
    health: str | None = None
    revision: str | None = None


def api_client_from_settings(settings: Settings, clients: Clients | None = None
                             ) -> k8s.ApiClient:
    """A client for the configured kubeconfig/context; ``NotConfigured`` without one. With
    ``clients`` (a worker's, ``reconciler.clients``): the one kept there while the kubeconfig's
    path, size, modification time and context are the same (a rotated credential is a new
    file content: a new client)."""
    if settings.kubeconfig is None:
        raise NotConfigured("not connected: no kubeconfig configured", setting="kubeconfig")
    if clients is not None:
        try:
            stat = settings.kubeconfig.stat()
            key: tuple[object, ...] = (str(settings.kubeconfig), stat.st_mtime_ns,
                                       stat.st_size, settings.kube_context)
        except OSError:  # unreadable: building the client says so, nothing is kept
            return api_client_from_settings(settings)
        return clients.get("kubernetes", key, lambda: api_client_from_settings(settings))
    try:
        return k8s_config.new_client_from_config(config_file=str(settings.kubeconfig),
                                                 context=settings.kube_context)
    except Exception as exc:  # YAML, missing keys, bad certificates: all mean unusable
        raise ArgoCDPermanentError(f"kubeconfig {settings.kubeconfig} is unusable: {exc}") \
            from exc


def _error(action: str, exc: Exception) -> ApplyError:
    if isinstance(exc, ApiException):
        status = int(exc.status) if exc.status else None
        reason = exc.reason or ""
        return ApplyError.make(f"{action}: the API server answered {status} {reason}".strip(),
                               temporary=is_temporary_status(status), status=status)
    return ArgoCDTemporaryError(f"{action}: the API server cannot be reached ({exc})")


class ArgoCDApplier:
    """Server-side apply of ArgoCD objects, refresh, and status reads."""

    def __init__(self, api_client: k8s.ApiClient, namespace: str = "argocd") -> None:
        self._api = k8s.CustomObjectsApi(api_client)
        self.namespace = namespace

    @classmethod
    def from_settings(cls, settings: Settings, clients: Clients | None = None
                      ) -> ArgoCDApplier:
        return cls(api_client_from_settings(settings, clients),
                   namespace=settings.argocd_namespace)

    def _target(self, manifest: Mapping[str, Any]) -> tuple[str, str, str, dict[str, Any]]:
        """Validate one manifest; returns (kind, plural, namespace, body to apply)."""
        kind = manifest.get("kind")
        if manifest.get("apiVersion") != f"{GROUP}/{VERSION}" or kind not in KINDS:
            raise ArgoCDPermanentError(
                f"{manifest.get('apiVersion')}/{kind} is not an ArgoCD object this applier "
                "manages (AppProject, ApplicationSet, Application)")
        body = copy.deepcopy(dict(manifest))
        metadata = body.setdefault("metadata", {})
        name = metadata.get("name")
        if not isinstance(name, str) or not name:
            raise ArgoCDPermanentError(f"{kind} without metadata.name")
        namespace = str(metadata.get("namespace") or self.namespace)
        metadata["namespace"] = namespace
        # Server-side apply owns what it sends: never send server-populated fields back.
        body.pop("status", None)
        for generated in ("resourceVersion", "uid", "creationTimestamp", "managedFields",
                          "generation"):
            metadata.pop(generated, None)
        return str(kind), KINDS[str(kind)][0], namespace, body

    def apply(self, manifest: Mapping[str, Any]) -> Applied:
        kind, plural, namespace, body = self._target(manifest)
        name = body["metadata"]["name"]
        try:
            result = self._api.patch_namespaced_custom_object(
                GROUP, VERSION, namespace, plural, name, body,
                field_manager=FIELD_MANAGER, force=False, _content_type=APPLY_PATCH)
        except (ApiException, HTTPError) as exc:
            raise _error(f"apply {kind} {namespace}/{name}", exc) from exc
        version = (result or {}).get("metadata", {}).get("resourceVersion")
        return Applied(kind=kind, name=name, namespace=namespace, resource_version=version)

    def apply_all(self, manifests: Iterable[Mapping[str, Any]]) -> list[Applied]:
        ordered = sorted(manifests, key=lambda m: KINDS.get(str(m.get("kind")), ("", 9))[1])
        for manifest in ordered:  # validate everything before changing anything
            self._target(manifest)
        return [self.apply(manifest) for manifest in ordered]

    def refresh(self, name: str, *, namespace: str | None = None) -> bool:
        """Ask ArgoCD to re-read the Application's sources now instead of at its next poll."""
        body = {"metadata": {"annotations": {REFRESH_ANNOTATION: "normal"}}}
        return self._patch_application("refresh", name, body, namespace or self.namespace)

    def sync(self, name: str, *, actor: str, namespace: str | None = None) -> bool:
        """Start a sync of the Application to its target revision: the controller runs the
        ``operation`` an Application carries (what ``argocd app sync`` writes,
        https://argo-cd.readthedocs.io/en/stable/operator-manual/declarative-setup/).
        Repeating it while one runs is harmless: the running operation wins."""
        body = {"operation": {"initiatedBy": {"username": actor},
                              "sync": {"syncStrategy": {"hook": {}}}}}
        return self._patch_application("sync", name, body, namespace or self.namespace)

    def _patch_application(self, what: str, name: str, body: Mapping[str, Any],
                           ns: str) -> bool:
        """Merge-patch the Application ``ns/name``; False when it does not exist."""
        try:
            self._api.patch_namespaced_custom_object(
                GROUP, VERSION, ns, "applications", name, body, _content_type=MERGE_PATCH)
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise _error(f"{what} Application {ns}/{name}", exc) from exc
        except HTTPError as exc:
            raise _error(f"{what} Application {ns}/{name}", exc) from exc
        return True

    def status(self, name: str, *, namespace: str | None = None) -> AppStatus:
        ns = namespace or self.namespace
        try:
            obj = self._api.get_namespaced_custom_object(GROUP, VERSION, ns, "applications",
                                                         name)
        except ApiException as exc:
            if exc.status == 404:
                return AppStatus(name=name, found=False)
            raise _error(f"read Application {ns}/{name}", exc) from exc
        except HTTPError as exc:
            raise _error(f"read Application {ns}/{name}", exc) from exc
        status = obj.get("status") or {}
        sync = status.get("sync") or {}
        health = status.get("health") or {}
        return AppStatus(name=name, found=True, sync=sync.get("status"),
                         health=health.get("status"), revision=sync.get("revision"))


class ClusterRemover:
    """Deletion of what a decommissioned unit left on the platform cluster, one idempotent
    step at a time: ``delete_application(name) -> bool`` (True while the Application still
    exists — ArgoCD's ``resources-finalizer.argocd.argoproj.io`` keeps it until its resources
    are gone), ``delete_namespace(name) -> bool`` (True while it exists: a Namespace stays
    ``Terminating`` until its content is deleted). A 404 on delete or read is "gone".
    Sources: https://argo-cd.readthedocs.io/en/stable/user-guide/app_deletion/ and
    https://kubernetes.io/docs/concepts/overview/working-with-objects/namespaces/.
    """

    def __init__(self, api_client: k8s.ApiClient, namespace: str = "argocd") -> None:
        self._custom = k8s.CustomObjectsApi(api_client)
        self._core = k8s.CoreV1Api(api_client)
        self.namespace = namespace

    @classmethod
    def from_settings(cls, settings: Settings, clients: Clients | None = None
                      ) -> ClusterRemover:
        return cls(api_client_from_settings(settings, clients),
                   namespace=settings.argocd_namespace)

    def delete_application(self, name: str) -> bool:
        where = f"Application {self.namespace}/{name}"
        try:
            self._custom.delete_namespaced_custom_object(GROUP, VERSION, self.namespace,
                                                         "applications", name)
        except ApiException as exc:
            if exc.status != 404:
                raise _error(f"delete {where}", exc) from exc
        except HTTPError as exc:
            raise _error(f"delete {where}", exc) from exc
        try:
            self._custom.get_namespaced_custom_object(GROUP, VERSION, self.namespace,
                                                      "applications", name)
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise _error(f"read {where}", exc) from exc
        except HTTPError as exc:
            raise _error(f"read {where}", exc) from exc
        return True

    def delete_namespace(self, name: str) -> bool:
        try:
            self._core.delete_namespace(name)
        except ApiException as exc:
            if exc.status != 404:
                raise _error(f"delete Namespace {name}", exc) from exc
        except HTTPError as exc:
            raise _error(f"delete Namespace {name}", exc) from exc
        try:
            self._core.read_namespace(name)
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise _error(f"read Namespace {name}", exc) from exc
        except HTTPError as exc:
            raise _error(f"read Namespace {name}", exc) from exc
        return True
