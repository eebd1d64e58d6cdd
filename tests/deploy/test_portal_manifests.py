"""The portal's own deployment (gitops-skeleton/platform/caas-portal), as kustomize builds it:
pinned by digest, probed, hardened, migrated before it rolls, isolated and scraped."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from scaffolder.checks.kustomize import build
from scaffolder.checks.manifests import load_documents, validate_documents
from scaffolder.checks.policy import PolicySet

ROOT = Path(__file__).resolve().parents[2]
FOLDER = ROOT / "gitops-skeleton" / "platform" / "caas-portal" / "manifests"
DIGEST = re.compile(r"^ghcr\.io/example-org/caas-portal@sha256:[0-9a-f]{64}$")


@pytest.fixture(scope="module")
def objects() -> dict[tuple[str, str], dict[str, Any]]:
    docs = load_documents(build(FOLDER))
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


def pod(obj: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = obj["spec"]["template"]["spec"]
    return spec


WORKLOADS = [("Deployment", "caas-portal-web"), ("Deployment", "caas-portal-worker"),
             ("Job", "caas-portal-migrate")]


def test_valid_and_admitted(objects: dict[tuple[str, str], dict[str, Any]]) -> None:
    policies = PolicySet.from_directory(ROOT / "gitops-skeleton" / "platform" / "policies")
    assert validate_documents(objects.values()) == []
    assert [str(v) for doc in objects.values() for v in policies.evaluate(doc)] == []
    assert {("Service", "caas-portal"), ("Ingress", "caas-portal"),
            ("PodDisruptionBudget", "caas-portal-web"),
            ("PodDisruptionBudget", "caas-portal-worker"),
            ("CiliumNetworkPolicy", "caas-portal"), ("NetworkPolicy", "caas-portal"),
            ("ServiceMonitor", "caas-portal"), ("ConfigMap", "caas-portal-config"),
            *WORKLOADS} <= set(objects)


def test_every_image_is_one_digest_set_by_the_kustomize_override(
        objects: dict[tuple[str, str], dict[str, Any]]) -> None:
    images = {c["image"] for key in WORKLOADS for c in pod(objects[key])["containers"]}
    assert len(images) == 1
    (image,) = images
    assert DIGEST.match(image), image
    override = load_documents((FOLDER / "kustomization.yaml").read_text())[0]["images"][0]
    assert image.endswith("@" + override["digest"])


@pytest.mark.parametrize("key", WORKLOADS)
def test_hardened(objects: dict[tuple[str, str], dict[str, Any]], key: tuple[str, str]) -> None:
    spec = pod(objects[key])
    assert spec["automountServiceAccountToken"] is False
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in spec["containers"]:
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"]["drop"] == ["ALL"]
        assert set(container["resources"]["limits"]) == {"cpu", "memory"}
        assert set(container["resources"]["requests"]) == {"cpu", "memory"}
        # Configuration by reference; secrets as files, never literal values or env secrets.
        assert container["envFrom"] == [{"configMapRef": {"name": "caas-portal-config"}}]
        assert "env" not in container
        mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
        assert mounts["/run/secrets/caas"]["readOnly"] is True
        assert "/var/lib/caas" in mounts  # state on a volume
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["secrets"]["secret"]["secretName"] == "caas-portal-secrets"


@pytest.mark.parametrize(("name", "port"), [("caas-portal-web", 8000),
                                            ("caas-portal-worker", 8001)])
def test_replicas_and_probes(objects: dict[tuple[str, str], dict[str, Any]], name: str,
                             port: int) -> None:
    deployment = objects[("Deployment", name)]
    assert deployment["spec"]["replicas"] >= 2
    (container,) = pod(deployment)["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    probe_port = container["readinessProbe"]["httpGet"]["port"]
    assert ports[probe_port] == port
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    pdb = objects[("PodDisruptionBudget", name)]
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]


def test_worker_health_port_is_configured(objects: dict[tuple[str, str], dict[str, Any]]) -> None:
    config = objects[("ConfigMap", "caas-portal-config")]["data"]
    assert config["CAAS_WORKER_HEALTH_PORT"] == "8001"
    assert config["CAAS_MIGRATE_ON_START"] == "false"  # the Job migrates
    assert config["CAAS_SECRETS_DIR"] == "/run/secrets/caas"


def test_migrations_run_before_the_rollout(
        objects: dict[tuple[str, str], dict[str, Any]]) -> None:
    job = objects[("Job", "caas-portal-migrate")]
    assert job["metadata"]["annotations"]["argocd.argoproj.io/hook"] == "PreSync"
    assert pod(job)["containers"][0]["args"] == ["db", "upgrade"]
    assert pod(job)["restartPolicy"] == "Never"


def test_traffic_and_scraping(objects: dict[tuple[str, str], dict[str, Any]]) -> None:
    service = objects[("Service", "caas-portal")]
    web = objects[("Deployment", "caas-portal-web")]
    assert service["spec"]["selector"] == web["spec"]["selector"]["matchLabels"]
    monitor = objects[("ServiceMonitor", "caas-portal")]
    labels = service["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert monitor["spec"]["endpoints"][0] == {"port": "http", "path": "/metrics",
                                               "interval": "30s"}
    policy = objects[("CiliumNetworkPolicy", "caas-portal")]["spec"]
    assert policy["endpointSelector"]["matchLabels"] == {"app.kubernetes.io/name": "caas-portal"}
    sources = [m["matchLabels"]["k8s:io.kubernetes.pod.namespace"]
               for rule in policy["ingress"] for m in rule["fromEndpoints"]]
    assert sources == ["ingress-nginx", "monitoring"]
