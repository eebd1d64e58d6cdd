"""Every template, rendered with typical and edge-case answers, passes every pre-merge check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gitops.quantity import parse_quantity
from scaffolder.checks.kustomize import build
from scaffolder.checks.manifests import load_documents, validate_documents, validate_manifest
from scaffolder.checks.policy import PolicySet
from tests.templates.conftest import CASES
from tests.templates.support import EDGE_ALL_ON, TYPICAL, cluster_objects, documents, yaml_files

CASE_IDS = sorted(CASES)


@pytest.mark.parametrize("case", CASE_IDS)
def test_every_manifest_passes_its_strict_schema(case: str, rendered: dict[str, Path]) -> None:
    root = rendered[case]
    objects = cluster_objects(root)
    assert objects, f"{case} rendered no manifests"
    problems = [f"{path.name}: {p}" for path, doc in objects for p in validate_manifest(doc)]
    assert problems == []


@pytest.mark.parametrize("case", CASE_IDS)
def test_gatekeeper_policies_admit_every_rendered_object(
    case: str, rendered: dict[str, Path], policies: PolicySet
) -> None:
    violations = [
        str(v) for _path, doc in cluster_objects(rendered[case]) for v in policies.evaluate(doc)
    ]
    assert violations == []


@pytest.mark.parametrize("case", [c for c in CASE_IDS if c.startswith("tenant")])
def test_every_tenant_overlay_builds_and_passes(
    case: str, rendered: dict[str, Path], policies: PolicySet
) -> None:
    root = rendered[case]
    answers = CASES[case][1]
    overlays = sorted((root / "envs").iterdir())
    assert [o.name for o in overlays] == sorted(answers["environments"])
    for overlay in overlays:
        objects = load_documents(build(overlay))
        kinds = sorted(doc["kind"] for doc in objects)
        assert "Namespace" in kinds and "CiliumNetworkPolicy" in kinds and "PrometheusRule" in kinds
        assert validate_documents(objects) == []
        assert [str(v) for doc in objects for v in policies.evaluate(doc)] == []
        for doc in objects:
            assert doc["metadata"]["labels"]["caas.io/environment"] == overlay.name
        quota = next(doc for doc in objects if doc["kind"] == "ResourceQuota")
        override = (answers.get("environment_quotas") or {}).get(overlay.name, {})
        expected_cpu = override.get("cpu") or answers.get("cpu_quota", "4")
        assert parse_quantity(quota["spec"]["hard"]["requests.cpu"]) == parse_quantity(expected_cpu)
        assert quota["metadata"]["namespace"] == f"{answers['team']}-{answers['name']}"


def test_tenant_network_policy_follows_the_switches(rendered: dict[str, Path]) -> None:
    def policies_of(case: str) -> list[dict[str, Any]]:
        return [
            doc for _p, doc in documents(rendered[case]) if doc.get("kind") == "CiliumNetworkPolicy"
        ]

    on = policies_of("tenant-all-on")
    off = policies_of("tenant-all-off")
    assert len(on) == 3 and len(off) == 1  # default + two L7 allow rules
    default_off = off[0]["spec"]
    assert default_off["ingress"] == [{"fromEndpoints": [{}]}]
    assert all("toEntities" not in rule for rule in default_off["egress"])
    assert {"toEntities": ["world"]} in on[0]["spec"]["egress"]
    http = on[1]["spec"]["ingress"][0]["toPorts"][0]
    assert http["rules"]["http"] == [{"method": "GET", "path": "/api/v1.*"}]
    assert http["ports"] == [{"port": "8080", "protocol": "TCP"}]


def test_free_text_lands_verbatim_and_inert(rendered: dict[str, Path]) -> None:
    team = rendered["team-all-on"]
    spec = load_documents((team / "team.yaml").read_text())[0]["spec"]
    assert spec["displayName"] == EDGE_ALL_ON["team"]["display_name"]
    assert spec["description"] == EDGE_ALL_ON["team"]["description"]
    assert spec["owners"] == EDGE_ALL_ON["team"]["owners"]
    tenant = rendered["tenant-all-on"]
    ns = load_documents((tenant / "base" / "namespace.yaml").read_text())[0]
    assert (
        ns["metadata"]["annotations"]["caas.io/description"] == EDGE_ALL_ON["tenant"]["description"]
    )
    (file,) = rendered["application-all-on"].glob("envs/*/application.yaml")
    app = load_documents(file.read_text())[0]
    assert app["spec"]["source"]["helm"]["parameters"][0]["value"] == 'v1: {quoted} "x"'


def test_application_shapes(rendered: dict[str, Path]) -> None:
    def app(case: str) -> dict[str, Any]:
        return load_documents(next(rendered[case].glob("envs/*/application.yaml")).read_text())[0]

    helm = app("application-typical")
    assert helm["spec"]["project"] == "payments"
    assert helm["spec"]["destination"] == {"name": "dev", "namespace": "payments-checkout"}
    assert helm["spec"]["source"]["chart"] == "checkout-api"
    assert helm["spec"]["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}
    kustomize = app("application-kustomize")["spec"]["source"]
    assert kustomize["path"] == "deploy/overlays/dev" and "kustomize" in kustomize
    directory = app("application-all-off")["spec"]
    assert directory["source"]["directory"] == {"recurse": True}
    assert "automated" not in directory["syncPolicy"]


def test_environment_manifest_shape(rendered: dict[str, Path]) -> None:
    on = load_documents((rendered["environment-all-on"] / "infra.yaml").read_text())[0]
    assert on["provider"] == "aws" and on["tier"] == "prod" and on["installed"] is True
    assert on["network"]["vpc_id"] == "vpc-0123456789abcdef0"
    assert on["domain"] == {"name": "prod.eu.example.org", "zone_id": "Z0123456789ABCDEFGHIJ"}
    assert on["kubernetes"]["node_groups"][0]["instance_types"] == ["m6i.large", "m6a.large"]
    assert on["capacity"] == {"cpu": "512", "memory": "2Ti", "storage": "100Ti"}
    off = load_documents((rendered["environment-all-off"] / "infra.yaml").read_text())[0]
    assert off["installed"] is False and off["addons"] == []
    assert "vpc_id" not in off["network"] and "zone_id" not in off["domain"]
    typical = load_documents((rendered["environment-typical"] / "cluster.yaml").read_text())[0]
    assert typical["stringData"]["name"] == TYPICAL["environment"]["environment"]
    assert typical["metadata"]["labels"]["argocd.argoproj.io/secret-type"] == "cluster"


@pytest.mark.parametrize("case", CASE_IDS)
def test_every_file_is_valid_yaml(case: str, rendered: dict[str, Path]) -> None:
    for path in yaml_files(rendered[case]):
        assert load_documents(path.read_text(encoding="utf-8")), path


def test_a_compliant_deployment_is_admitted(policies: PolicySet) -> None:
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": "payments-checkout",
            "labels": {"team": "payments", "cost-center": "cc-1001"},
        },
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {
                            "name": "web",
                            "image": "ghcr.io/example-org/web:1.4.2",
                            "resources": {"limits": {"cpu": "500m", "memory": "256Mi"}},
                        }
                    ]
                },
            },
        },
    }
    assert validate_manifest(deployment) == []
    assert policies.evaluate(deployment) == []


@pytest.mark.parametrize("case", [c for c in CASE_IDS if c.startswith("environment")])
def test_environment_manifest_is_what_the_reconciler_accepts(
    case: str, rendered: dict[str, Path]
) -> None:
    """The contract with the reconciler: its own parser accepts every rendered infra.yaml."""
    from gitops.environment import load_infra_text

    root = rendered[case]
    infra = load_infra_text((root / "infra.yaml").read_text(), env=root.name)
    assert infra.provider == CASES[case][1]["provider"]
    assert infra.capacity is not None
