"""Strict schema validation of rendered Kubernetes manifests.

Public API:

- ``load_documents(text) -> list[dict]`` — every YAML document of a file
  (``gitops.yaml.load_mappings``: YAML 1.2, safe), empty documents dropped; ``ValueError`` for
  YAML that does not parse or a document that is not a mapping.
- ``validate_manifest(obj, *, kubernetes_version=DEFAULT_KUBERNETES_VERSION) -> list[str]`` — the
  problems of one manifest, empty when valid. Core kinds are checked with kubernetes-validate's
  strict schemas (unknown fields refused); the custom resources the platform renders
  (Application, ApplicationSet, AppProject, CiliumNetworkPolicy, ConstraintTemplate, the
  Constraint kinds of ``platform/policies/``, PrometheusRule) with the JSON Schemas kept in
  ``scaffolder/checks/schemas/``. A kind neither knows is a problem, not a pass.
- ``validate_documents(docs) -> list[str]`` — the same over many documents, skipping the
  repository's own non-cluster files (Backstage entities, kustomize configuration, caas
  ``Team``), which ``is_cluster_manifest`` recognises.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate.utils as kv_utils
import referencing

from gitops import yaml

DEFAULT_KUBERNETES_VERSION = "1.31"
SCHEMA_DIR = Path(__file__).with_name("schemas")
# Files in the GitOps repository that carry apiVersion/kind but never reach a cluster.
NON_CLUSTER_API_VERSIONS = (
    "backstage.io/",
    "kustomize.config.k8s.io/",
    "caas.io/",
    "scaffolder.backstage.io/",
)
# (apiVersion, kind) -> schema file in SCHEMA_DIR.
CUSTOM_SCHEMAS: Mapping[tuple[str, str], str] = {
    ("argoproj.io/v1alpha1", "Application"): "application.json",
    ("argoproj.io/v1alpha1", "ApplicationSet"): "applicationset.json",
    ("argoproj.io/v1alpha1", "AppProject"): "appproject.json",
    ("cilium.io/v2", "CiliumNetworkPolicy"): "ciliumnetworkpolicy.json",
    ("templates.gatekeeper.sh/v1", "ConstraintTemplate"): "constrainttemplate.json",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "prometheusrule.json",
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "servicemonitor.json",
    ("constraints.gatekeeper.sh/v1beta1", "K8sNoPrivileged"): "constraint-k8snoprivileged.json",
    ("constraints.gatekeeper.sh/v1beta1", "K8sImageTag"): "constraint-k8simagetag.json",
    ("constraints.gatekeeper.sh/v1beta1", "K8sContainerLimits"): (
        "constraint-k8scontainerlimits.json"
    ),
    ("constraints.gatekeeper.sh/v1beta1", "K8sAllowedRegistries"): (
        "constraint-k8sallowedregistries.json"
    ),
    ("constraints.gatekeeper.sh/v1beta1", "K8sRequiredLabels"): (
        "constraint-k8srequiredlabels.json"
    ),
    ("constraints.gatekeeper.sh/v1beta1", "K8sHostIsolation"): "constraint-k8shostisolation.json",
}
_MAX_ERRORS = 5


def load_documents(text: str) -> list[dict[str, Any]]:
    """All YAML documents of ``text`` as plain data (safe loader: no tags, no objects)."""
    return yaml.load_mappings(text)


def is_cluster_manifest(obj: Mapping[str, Any]) -> bool:
    """False for the repository's own files (Backstage entities, kustomize config, caas Team)."""
    api_version = str(obj.get("apiVersion") or "")
    return not api_version.startswith(NON_CLUSTER_API_VERSIONS)


def validate_documents(
    docs: Iterable[Mapping[str, Any]], *, kubernetes_version: str = DEFAULT_KUBERNETES_VERSION
) -> list[str]:
    """Problems of every cluster manifest in ``docs``."""
    problems: list[str] = []
    for doc in docs:
        if is_cluster_manifest(doc):
            problems.extend(validate_manifest(doc, kubernetes_version=kubernetes_version))
    return problems


def validate_manifest(
    obj: Mapping[str, Any], *, kubernetes_version: str = DEFAULT_KUBERNETES_VERSION
) -> list[str]:
    """The problems of one manifest; empty when it is valid."""
    api_version = obj.get("apiVersion")
    kind = obj.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        return ["manifest has no apiVersion/kind"]
    metadata = obj.get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    label = f"{kind}/{name or '?'}"
    schema_file = CUSTOM_SCHEMAS.get((api_version, kind))
    if schema_file is not None:
        validator = _custom_validator(schema_file)
    else:
        found = _core_validator(kubernetes_version, api_version, kind)
        if found is None:
            return [f"{label}: no schema for {api_version} {kind}"]
        validator = found
    # JSON round trip: YAML may carry dates or other non-JSON scalars the API server refuses.
    data = json.loads(json.dumps(obj, default=str))
    problems = []
    for error in sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.path))):
        where = ".".join(str(p) for p in error.absolute_path) or "(root)"
        message = error.message if len(error.message) <= 300 else error.message[:300] + "…"
        problems.append(f"{label}: {where}: {message}")
        if len(problems) >= _MAX_ERRORS:
            break
    return problems


@functools.cache
def _custom_validator(schema_file: str) -> jsonschema.protocols.Validator:
    schema = json.loads((SCHEMA_DIR / schema_file).read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema)


@functools.cache
def _definitions(schema_dir: str) -> referencing.Registry[Any]:
    definitions = kv_utils.schema_contents(
        f"kubernetes-json-schema/{schema_dir}/_definitions.json", schema_dir
    )
    return referencing.Resource.from_contents(definitions) @ referencing.Registry()


@functools.cache
def _core_validator(
    kubernetes_version: str, api_version: str, kind: str
) -> jsonschema.protocols.Validator | None:
    """kubernetes-validate's strict schema for the kind (its own loader re-reads it every call)."""
    versions = [
        v
        for v in kv_utils.all_versions()
        if kv_utils.major_minor(v) <= kv_utils.major_minor(kubernetes_version)
    ]
    if not versions:
        return None
    schema_dir = f"v{versions[-1]}-local-strict"
    group_version = api_version.split("/")
    short = (
        f"{group_version[0].split('.')[0]}-{group_version[1]}"
        if len(group_version) == 2
        else group_version[0]
    )
    try:
        schema = kv_utils.schema_contents(
            f"kubernetes-json-schema/{schema_dir}/{kind.lower()}-{short}.json", schema_dir
        )
    except FileNotFoundError:
        return None
    registry = referencing.Resource.from_contents(schema) @ _definitions(schema_dir)
    return jsonschema.Draft202012Validator(schema, registry=registry)
