"""The platform's Gatekeeper policies, evaluated with the real regopy."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from scaffolder.checks.policy import PolicyError, PolicySet, matches

POLICIES = Path(__file__).resolve().parents[3] / "gitops-skeleton" / "platform" / "policies"


@pytest.fixture(scope="module")
def policies() -> PolicySet:
    return PolicySet.from_directory(POLICIES)


def deployment(**container: Any) -> dict[str, Any]:
    spec = {
        "name": "app",
        "image": "ghcr.io/example-org/app:1.0.0",
        "resources": {"limits": {"cpu": "1", "memory": "1Gi"}},
    }
    spec.update(container)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "app",
            "namespace": "payments-web",
            "labels": {"team": "payments", "cost-center": "cc-1"},
        },
        "spec": {
            "selector": {"matchLabels": {"a": "b"}},
            "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [spec]}},
        },
    }


def messages(policies: PolicySet, obj: dict[str, Any]) -> list[str]:
    return sorted(v.message for v in policies.evaluate(obj))


def test_loads_six_templates_with_their_constraints(policies: PolicySet) -> None:
    assert policies.kinds == [
        "K8sAllowedRegistries",
        "K8sContainerLimits",
        "K8sHostIsolation",
        "K8sImageTag",
        "K8sNoPrivileged",
        "K8sRequiredLabels",
    ]
    assert len(policies.constraints) == 6


def test_compliant_deployment_is_admitted(policies: PolicySet) -> None:
    assert policies.evaluate(deployment()) == []
    pinned = deployment(image="registry.example.org/team/app@sha256:" + "a" * 64)
    assert policies.evaluate(pinned) == []


@pytest.mark.parametrize(
    ("container", "expected"),
    [
        (
            {"securityContext": {"privileged": True}},
            ["container app is privileged; privileged containers are not allowed"],
        ),
        (
            {"image": "ghcr.io/example-org/app:latest"},
            [
                "container app uses the :latest tag (ghcr.io/example-org/app:latest); "
                "pin a version tag or digest"
            ],
        ),
        (
            {"image": "ghcr.io/example-org/app"},
            [
                "container app uses the untagged image ghcr.io/example-org/app; "
                "pin a version tag or digest"
            ],
        ),
        (
            {"image": "registry.example.org:5000/app"},
            [
                "container app uses image registry.example.org:5000/app from a registry "
                "that is not allowed (allowed: ghcr.io/example-org/, registry.example.org/)",
                "container app uses the untagged image registry.example.org:5000/app; "
                "pin a version tag or digest",
            ],
        ),
        (
            {"resources": {}},
            [
                "container app has no CPU limit; set resources.limits.cpu",
                "container app has no memory limit; set resources.limits.memory",
            ],
        ),
        (
            {"image": "docker.io/library/nginx:1.27"},
            [
                "container app uses image docker.io/library/nginx:1.27 from a registry that is not "
                "allowed (allowed: ghcr.io/example-org/, registry.example.org/)"
            ],
        ),
    ],
)
def test_non_compliant_containers_are_denied(
    policies: PolicySet, container: dict[str, Any], expected: list[str]
) -> None:
    assert messages(policies, deployment(**container)) == sorted(expected)


def test_missing_labels_are_denied(policies: PolicySet) -> None:
    obj = deployment()
    obj["metadata"]["labels"] = {"team": "payments"}
    assert messages(policies, obj) == ["Deployment app is missing the required label cost-center"]
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "payments-x"}}
    assert messages(policies, namespace) == [
        "Namespace payments-x is missing the required label cost-center",
        "Namespace payments-x is missing the required label team",
    ]


def test_host_access_is_denied_for_every_workload_kind(policies: PolicySet) -> None:
    pod_spec = {
        "hostNetwork": True,
        "hostPID": True,
        "hostIPC": True,
        "volumes": [{"name": "root", "hostPath": {"path": "/"}}],
        "containers": deployment()["spec"]["template"]["spec"]["containers"],
    }
    expected = [
        "hostIPC is not allowed",
        "hostNetwork is not allowed",
        "hostPID is not allowed",
        "volume root mounts a hostPath; hostPath volumes are not allowed",
    ]
    meta = {
        "name": "x",
        "namespace": "payments-web",
        "labels": {"team": "payments", "cost-center": "cc"},
    }
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": pod_spec}
    cron = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": meta,
        "spec": {
            "schedule": "* * * * *",
            "jobTemplate": {"spec": {"template": {"spec": pod_spec}}},
        },
    }
    daemonset = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": meta,
        "spec": {"template": {"spec": pod_spec}},
    }
    for obj in (pod, cron, daemonset):
        assert messages(policies, obj) == expected


def test_init_containers_are_checked(policies: PolicySet) -> None:
    obj = deployment()
    obj["spec"]["template"]["spec"]["initContainers"] = [
        {
            "name": "init",
            "image": "ghcr.io/example-org/init:1",
            "securityContext": {"privileged": True},
            "resources": {"limits": {"cpu": "1", "memory": "1Gi"}},
        }
    ]
    assert messages(policies, obj) == [
        "container init is privileged; privileged containers are not allowed"
    ]


def test_platform_namespaces_and_other_kinds_are_not_matched(policies: PolicySet) -> None:
    privileged = deployment(securityContext={"privileged": True}, image="quay.io/cilium/x")
    privileged["metadata"]["namespace"] = "kube-system"
    assert policies.evaluate(privileged) == []
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "x"}}
    assert policies.evaluate(config) == []


def test_match_rules() -> None:
    match = {
        "kinds": [{"apiGroups": ["apps"], "kinds": ["Deployment"]}],
        "namespaces": ["team-*"],
        "excludedNamespaces": ["team-secret"],
        "labelSelector": {"matchLabels": {"tier": "web"}},
    }
    obj: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "a", "namespace": "team-a", "labels": {"tier": "web"}},
    }
    assert matches(match, obj)
    other = copy.deepcopy(obj)
    other["metadata"]["namespace"] = "team-secret"
    assert not matches(match, other)
    other["metadata"]["namespace"] = "elsewhere"
    assert not matches(match, other)
    other = copy.deepcopy(obj)
    other["metadata"]["labels"] = {}
    assert not matches(match, other)
    other = copy.deepcopy(obj)
    other["apiVersion"] = "extensions/v1beta1"
    assert not matches(match, other)
    assert not matches({"scope": "Cluster"}, obj)
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-secret"}}
    assert not matches({"excludedNamespaces": ["team-secret"]}, namespace)


def test_broken_policies_are_reported(tmp_path: Path) -> None:
    template = (POLICIES / "template-k8snoprivileged.yaml").read_text()
    (tmp_path / "t.yaml").write_text(
        template.replace("violation contains", "violation contains contains")
    )
    with pytest.raises(PolicyError, match="K8sNoPrivileged"):
        PolicySet.from_directory(tmp_path)
    (tmp_path / "t.yaml").write_text(template.replace("violation contains", "other contains"))
    with pytest.raises(PolicyError, match="undefined"):
        PolicySet.from_directory(tmp_path)
    (tmp_path / "t.yaml").write_text((POLICIES / "constraint-k8snoprivileged.yaml").read_text())
    with pytest.raises(PolicyError, match="has no ConstraintTemplate"):
        PolicySet.from_directory(tmp_path)


@pytest.mark.parametrize(("kind", "parameter"), [("k8sallowedregistries", "registries"),
                                                 ("k8srequiredlabels", "labels")])
def test_constraint_without_required_parameter_names_both(tmp_path: Path, kind: str,
                                                          parameter: str) -> None:
    # Without its parameter the Rego admits everything; the set must refuse to load instead.
    (tmp_path / "t.yaml").write_text((POLICIES / f"template-{kind}.yaml").read_text())
    constraint = (POLICIES / f"constraint-{kind}.yaml").read_text()
    head, _, _ = constraint.partition("  parameters:")
    (tmp_path / "c.yaml").write_text(head)
    with pytest.raises(PolicyError) as raised:
        PolicySet.from_directory(tmp_path)
    assert f"platform-{kind.removeprefix('k8s')}" in raised.value.message
    assert f"parameters.{parameter}" in raised.value.message
    # An empty list admits everything just the same: refused by the template's minItems.
    (tmp_path / "c.yaml").write_text(head + f"  parameters:\n    {parameter}: []\n")
    with pytest.raises(PolicyError, match=f"parameters.{parameter}"):
        PolicySet.from_directory(tmp_path)


def test_policy_check_reports_the_constraint_lacking_parameters(tmp_path: Path) -> None:
    from scaffolder.checks_runner import check_policies

    class Files:
        """A forge reduced to the reads check_policies makes (no git directory): its
        ``read_tree`` is the generic one over ``list_files``/``read_file``."""

        kind = "files"
        location = str(tmp_path)

        def read_tree(self, prefixes: list[str], ref: str) -> dict[str, bytes]:
            from gitops.forges.base import read_each

            return read_each(self, prefixes, ref)  # type: ignore[arg-type]

        def list_files(self, prefix: str = "", ref: str = "main") -> list[str]:
            return sorted(f"platform/policies/{p.name}" for p in tmp_path.iterdir())

        def read_file(self, path: str, ref: str = "main") -> bytes | None:
            return (tmp_path / path.rsplit("/", 1)[-1]).read_bytes()

    for source in POLICIES.glob("*.yaml"):
        (tmp_path / source.name).write_text(source.read_text())
    constraint = tmp_path / "constraint-k8srequiredlabels.yaml"
    constraint.write_text(constraint.read_text().partition("  parameters:")[0])
    result = check_policies(Files(), "main", [])  # type: ignore[arg-type]
    assert result.state == "error"
    assert "K8sRequiredLabels/platform-requiredlabels" in result.summary
    assert "parameters.labels" in result.summary
