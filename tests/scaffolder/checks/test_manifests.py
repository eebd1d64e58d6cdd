"""Strict manifest validation; the repository's CRD schemas checked against the official CRDs."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from scaffolder.checks.manifests import (
    CUSTOM_SCHEMAS,
    SCHEMA_DIR,
    load_documents,
    validate_documents,
    validate_manifest,
)
from tests.templates.support import SKELETON, cluster_objects

REPO = Path(__file__).resolve().parents[3]
# Official CRDs, read here only (never copied into the repository).
OFFICIAL = REPO.parent / "shared" / "crds"
CRD_FILES = {
    "Application": "argocd-application-crd.yaml",
    "ApplicationSet": "argocd-applicationset-crd.yaml",
    "AppProject": "argocd-appproject-crd.yaml",
    "ConstraintTemplate": "gatekeeper-constrainttemplate-crd.yaml",
    "PrometheusRule": "prometheus-operator-prometheusrules-crd.yaml",
}
AVAILABLE = sorted(k for k, f in CRD_FILES.items() if (OFFICIAL / f).is_file())


def test_core_kinds_are_strict() -> None:
    ok = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "v"}}
    assert validate_manifest(ok) == []
    typo = {**ok, "dta": {"k": "v"}}
    assert any("'dta' was unexpected" in p for p in validate_manifest(typo))
    wrong = {**ok, "data": {"k": 1}}
    assert validate_manifest(wrong) and "ConfigMap/a: data.k" in validate_manifest(wrong)[0]
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d"},
        "spec": {
            "selector": {},
            "template": {"spec": {"containers": [{"name": "c", "imagee": "x"}]}},
        },
    }
    assert any("imagee" in p for p in validate_manifest(deployment))


def test_unknown_kinds_and_shapes_are_problems() -> None:
    assert validate_manifest(
        {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    ) == ["Widget/w: no schema for example.com/v1 Widget"]
    assert validate_manifest({"kind": "ConfigMap"}) == ["manifest has no apiVersion/kind"]


def test_custom_resources_are_checked_with_repository_schemas() -> None:
    app: dict[str, Any] = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "a", "namespace": "argocd"},
        "spec": {
            "project": "p",
            "destination": {"name": "dev", "namespace": "x"},
            "source": {"repoURL": "https://x", "targetRevision": "1"},
        },
    }
    assert validate_manifest(app) == []
    bad = {**app, "spec": {**app["spec"], "sourc": {}}}
    assert any("'sourc' was unexpected" in p for p in validate_manifest(bad))
    cnp = {
        "apiVersion": "cilium.io/v2",
        "kind": "CiliumNetworkPolicy",
        "metadata": {"name": "c", "namespace": "n"},
        "spec": {"endpointSelector": {}, "ingress": [{"fromEndpoint": [{}]}]},
    }
    assert any("fromEndpoint" in p for p in validate_manifest(cnp))
    constraint = {
        "apiVersion": "constraints.gatekeeper.sh/v1beta1",
        "kind": "K8sAllowedRegistries",
        "metadata": {"name": "r"},
        "spec": {"parameters": {"registries": []}},
    }
    assert validate_manifest(constraint)


def test_load_documents_is_safe_and_strict() -> None:
    assert load_documents("a: 1\n---\n---\nb: 2\n") == [{"a": 1}, {"b": 2}]
    with pytest.raises(ValueError, match="not valid YAML"):
        load_documents("a: [1\n")
    with pytest.raises(ValueError, match="not valid YAML"):
        load_documents("!!python/object/apply:os.system ['true']\n")
    with pytest.raises(ValueError, match="not a mapping"):
        load_documents("- 1\n")


def test_non_cluster_files_are_skipped() -> None:
    docs: list[dict[str, Any]] = [
        {"apiVersion": "backstage.io/v1alpha1", "kind": "Group", "metadata": {"name": "x"}},
        {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization"},
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x", "oops": 1}},
    ]
    problems = validate_documents(docs)
    assert len(problems) == 1 and "Namespace/x" in problems[0]


def test_every_schema_file_is_a_valid_json_schema() -> None:
    files = set(CUSTOM_SCHEMAS.values())
    assert files == {p.name for p in SCHEMA_DIR.glob("*.json")}
    for name in files:
        jsonschema.Draft202012Validator.check_schema(json.loads((SCHEMA_DIR / name).read_text()))


# --- cross-check against the official CRDs -------------------------------------------------


@functools.cache
def official_schema(kind: str) -> dict[str, Any]:
    # PyYAML's C loader: the ApplicationSet CRD is 1.4 MB, too slow for a pure-Python parser.
    crd = yaml.load((OFFICIAL / CRD_FILES[kind]).read_text(), Loader=yaml.CSafeLoader)
    versions = crd["spec"]["versions"]
    version = next(v for v in versions if v.get("storage")) if len(versions) > 1 else versions[0]
    schema: dict[str, Any] = to_json_schema(version["schema"]["openAPIV3Schema"])
    return schema


def to_json_schema(node: Any) -> Any:
    """OpenAPI v3 as Kubernetes uses it → JSON Schema (int-or-string, nullable, x- keys)."""
    if isinstance(node, list):
        return [to_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: to_json_schema(v) for k, v in node.items() if not k.startswith("x-kubernetes")}
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if out.pop("nullable", False) and "type" in out:
        out["type"] = [out["type"], "null"]
    out.pop("format", None)
    return out


def our_schema(kind: str) -> dict[str, Any]:
    name = next(f for (api, k), f in CUSTOM_SCHEMAS.items() if k == kind)
    result: dict[str, Any] = json.loads((SCHEMA_DIR / name).read_text())
    return result


def unknown_fields(ours: Any, official: Any, prefix: str = "") -> list[str]:
    """Property paths our schema declares that the official one does not (walked in parallel).

    Where the official schema stops describing (no ``properties``: preserve-unknown-fields or a
    free-form object), anything may follow, so the walk stops there too.
    """
    if not isinstance(ours, dict) or not isinstance(official, dict):
        return []
    found: list[str] = []
    official_props = official.get("properties")
    for name, sub in (ours.get("properties") or {}).items():
        if official_props is None:
            break
        if name not in official_props:
            found.append(prefix + name)
            continue
        found += unknown_fields(sub, official_props[name], prefix + name + ".")
    for key, mark in (("items", "[]."), ("additionalProperties", "*.")):
        if isinstance(ours.get(key), dict) and isinstance(official.get(key), dict):
            found += unknown_fields(ours[key], official[key], prefix + mark)
    return found


@pytest.mark.parametrize("kind", AVAILABLE)
def test_our_schema_declares_only_fields_the_official_crd_knows(kind: str) -> None:
    assert unknown_fields(our_schema(kind), official_schema(kind)) == []


def rendered_and_skeleton_objects(kind: str, rendered: dict[str, Path]) -> list[dict[str, Any]]:
    objects = [doc for _p, doc in cluster_objects(SKELETON) if doc["kind"] == kind]
    for root in rendered.values():
        objects += [doc for _p, doc in cluster_objects(root) if doc["kind"] == kind]
    return objects


@pytest.mark.parametrize("kind", AVAILABLE)
def test_rendered_objects_pass_the_official_crd_schema(
    kind: str, rendered: dict[str, Path]
) -> None:
    objects = rendered_and_skeleton_objects(kind, rendered)
    assert objects, f"nothing of kind {kind} is rendered"
    validator = jsonschema.Draft7Validator(official_schema(kind))
    problems = [
        f"{doc['metadata']['name']}: {e.message}"
        for doc in objects
        for e in validator.iter_errors(doc)
    ]
    assert problems == []
    assert all(validate_manifest(doc) == [] for doc in objects)


@pytest.mark.parametrize("kind", AVAILABLE)
def test_official_required_fields_are_required_by_ours_too(kind: str) -> None:
    official = official_schema(kind)
    ours = our_schema(kind)
    assert set(official.get("required") or []) <= set(ours.get("required") or [])
    spec_required = set(official["properties"]["spec"].get("required") or [])
    assert spec_required <= set(ours["properties"]["spec"].get("required") or [])
