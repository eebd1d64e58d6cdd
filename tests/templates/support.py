"""Render templates the way the scaffolder does and collect what the checks need."""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

from cookiecutter.generate import generate_files
from ruamel.yaml import YAML

from scaffolder.checks.manifests import is_cluster_manifest, load_documents
from scaffolder.parameters import ParameterContext, validate_answers
from scaffolder.registry import load_template
from scaffolder.render_pool import hook_scratch
from scaffolder.render import cookiecutter_values

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = REPO / "templates"
SKELETON = REPO / "gitops-skeleton"
NAMES = ("team", "tenant", "application", "environment")
CONTEXT = ParameterContext(
    teams=frozenset({"payments", "platform", "t" * 30}),
    environments=frozenset({"dev", "staging", "prod", "e" * 20}),
)


def parameters(name: str) -> Any:
    doc = YAML(typ="safe").load((TEMPLATES / name / "template.yaml").read_text())
    return doc["spec"]["parameters"]


def render(name: str, answers: dict[str, Any], out: Path, *, validate: bool = True) -> Path:
    """Validated answers (unless told not to) → the step values of template.yaml (the context
    the portal and Backstage hand to the renderer) → cookiecutter's generate_files, hooks on."""
    context = (
        validate_answers(parameters(name), answers, context=CONTEXT)
        if validate
        else copy.deepcopy(answers)
    )
    template = load_template(TEMPLATES / name, trusted=True)
    with hook_scratch():  # cookiecutter's hook runner leaves its rendered script behind
        return Path(
            generate_files(
                repo_dir=str(TEMPLATES / name),
                context={"cookiecutter": cookiecutter_values(template, context)},
                output_dir=str(out),
                accept_hooks=True,
            )
        )


def yaml_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.y*ml") if p.is_file())


@functools.cache
def _documents(root: Path) -> tuple[tuple[Path, dict[str, Any]], ...]:
    found = []
    for path in yaml_files(root):
        for doc in load_documents(path.read_text(encoding="utf-8")):
            found.append((path, doc))
    return tuple(found)


def documents(root: Path) -> list[tuple[Path, dict[str, Any]]]:
    """Every YAML document under ``root`` with the file it came from (parsed once; copies)."""
    return copy.deepcopy(list(_documents(root)))


def cluster_objects(root: Path) -> list[tuple[Path, dict[str, Any]]]:
    """What reaches a cluster: manifests, minus kustomize overlays' patches and infra.yaml."""
    return [
        (path, doc)
        for path, doc in documents(root)
        if "kind" in doc and is_cluster_manifest(doc) and not _is_overlay_patch(path)
    ]


def _is_overlay_patch(path: Path) -> bool:
    # envs/<env>/quota.yaml is a kustomize patch; it is checked through the built overlay.
    return path.parent.parent.name == "envs" and path.name == "quota.yaml"


TYPICAL: dict[str, dict[str, Any]] = {
    "team": {
        "team": "payments",
        "display_name": "Payments",
        "description": "Owns payments.",
        "cost_center": "cc-1001",
        "owners": ["alice"],
        "members": ["bob", "carol"],
    },
    "tenant": {
        "team": "payments",
        "name": "checkout",
        "cost_center": "cc-1001",
        "environments": ["dev", "prod"],
        "environment_quotas": {"prod": {"cpu": "8", "memory": "16Gi"}},
    },
    "application": {
        "team": "payments",
        "name": "checkout-api",
        "tenant": "checkout",
        "environment": "dev",
        "repo_url": "https://charts.example.org/payments",
        "revision": "1.2.3",
        "chart": "checkout-api",
    },
    "environment": {
        "environment": "staging",
        "provider": "local",
        "region": "local",
        "tier": "staging",
    },
}

LONG_TEAM = "t" * 30
LONG_ENV = "e" * 20
EDGE_ALL_ON: dict[str, dict[str, Any]] = {
    "team": {
        "team": LONG_TEAM,
        "display_name": "Quotes \" and ' and: colons # not a comment --- [x] {y} & *anchor",
        "description": "Ünïcödé ✓ — and a very long description " + "x" * 400,
        "cost_center": "C" * 63,
        "email": "team@example.org",
        "owners": [f"owner-{i}" for i in range(20)],
        "members": [f"member.{i}" for i in range(50)],
        "source_repos": [
            "https://github.com/example-org/*",
            "https://charts.example.org:8443/a/b/",
        ],
    },
    "tenant": {
        "team": LONG_TEAM,
        "name": "n" * 32,
        "description": "key: value, - item, 'quoted', \"double\", %percent, @at, `tick`",
        "cost_center": "cc.1_2-3",
        "environments": ["dev", "staging", "prod", LONG_ENV],
        "cpu_quota": "1500m",
        "memory_quota": "1.5Gi",
        "storage_quota": "1e12",
        "max_pods": 1000,
        "default_cpu_limit": "100m",
        "default_memory_limit": "128Mi",
        "environment_quotas": {"prod": {"cpu": "64", "memory": "256Gi"}, LONG_ENV: {"cpu": "2"}},
        "allow_ingress_controller": True,
        "allow_monitoring": True,
        "allow_egress_world": True,
        "http_allow": [
            {"from_namespace": "payments-web", "port": 8080, "method": "GET", "path": "/api/v1"},
            {"from_namespace": "n" * 63, "port": 65535, "method": "POST", "path": "/"},
        ],
    },
    "application": {
        "team": LONG_TEAM,
        "name": "a" * 32,
        "tenant": "n" * 32,
        "environment": LONG_ENV,
        "description": 'Deploys: everything "quoted"',
        "source_type": "helm",
        "repo_url": "https://charts.example.org:8443/a/b",
        "revision": "1.2.3-rc.1+build.5",
        "chart": "my.chart-name",
        "helm_parameters": [
            {"name": "image.tag", "value": 'v1: {quoted} "x"'},
            {"name": "ingress.hosts[0]", "value": "a.example.org"},
        ],
    },
    "environment": {
        "environment": LONG_ENV,
        "provider": "aws",
        "region": "eu-west-1",
        "tier": "prod",
        "installed": True,
        "network_cidr": "10.100.0.0/20",
        "zones": ["eu-west-1a", "eu-west-1b", "eu-west-1c"],
        "vpc_id": "vpc-0123456789abcdef0",
        "domain_name": "prod.eu.example.org",
        "zone_id": "Z0123456789ABCDEFGHIJ",
        "kubernetes_version": "1.32",
        "node_groups": [
            {
                "name": "general",
                "instance_types": ["m6i.large", "m6a.large"],
                "min": 3,
                "max": 30,
                "desired": 6,
            },
            {
                "name": "g" * 40,
                "instance_types": ["c6i.2xlarge"],
                "min": 0,
                "max": 10,
                "desired": 0,
            },
        ],
        "addons": [
            "cert-manager",
            "external-dns",
            "ingress-nginx",
            "karpenter",
            "cilium",
            "gatekeeper",
            "kube-prometheus-stack",
            "opentelemetry-collector",
            "keycloak",
        ],
        "capacity_cpu": "512",
        "capacity_memory": "2Ti",
        "capacity_storage": "100Ti",
    },
}
EDGE_ALL_OFF: dict[str, dict[str, Any]] = {
    "team": {
        "team": "a",
        "display_name": "A",
        "cost_center": "c",
        "owners": ["o"],
        "members": [],
        "source_repos": [],
    },
    "tenant": {
        "team": "payments",
        "name": "b",
        "cost_center": "c",
        "environments": ["dev"],
        "allow_ingress_controller": False,
        "allow_monitoring": False,
        "allow_egress_world": False,
        "http_allow": [],
    },
    "application": {
        "team": "payments",
        "name": "x",
        "tenant": "y",
        "environment": "dev",
        "source_type": "directory",
        "repo_url": "https://git.example.org/x",
        "revision": "main",
        "auto_sync": False,
    },
    "environment": {
        "environment": "d",
        "provider": "local",
        "region": "local",
        "tier": "dev",
        "installed": False,
        "addons": [],
        "zones": ["z"],
    },
}
KUSTOMIZE_APP = {
    **TYPICAL["application"],
    "source_type": "kustomize",
    "path": "deploy/overlays/dev",
}
