"""The GitOps skeleton passes the same checks as rendered templates, and points only at itself."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from gitops import lists
from scaffolder.checks.kustomize import build
from scaffolder.checks.manifests import load_documents, validate_documents, validate_manifest
from scaffolder.checks.policy import PolicySet
from scaffolder.registry import tree_id
from tests.templates.support import SKELETON, TEMPLATES, cluster_objects, documents, render

REPO_URL = "https://github.com/example-org/gitops.git"
ADDONS = [
    "argocd",
    "cert-manager",
    "external-dns",
    "ingress-nginx",
    "karpenter",
    "cilium",
    "gatekeeper",
    "kube-prometheus-stack",
    "opentelemetry-collector",
    "keycloak",
]
SEMVER = re.compile(r"^v?[0-9]+\.[0-9]+\.[0-9]+$")


def skeleton_files() -> list[str]:
    return sorted(p.relative_to(SKELETON).as_posix() for p in SKELETON.rglob("*") if p.is_file())


def test_every_manifest_is_valid_and_admitted(policies: PolicySet) -> None:
    objects = cluster_objects(SKELETON)
    assert len(objects) > 40
    assert [f"{p}: {e}" for p, doc in objects for e in validate_manifest(doc)] == []
    assert [str(v) for _p, doc in objects for v in policies.evaluate(doc)] == []


def test_tenant_overlays_build(policies: PolicySet) -> None:
    overlays = sorted(SKELETON.glob("tenants/*/*/envs/*"))
    assert [o.relative_to(SKELETON).as_posix() for o in overlays] == [
        "tenants/platform/platform-tools/envs/dev"
    ]
    for overlay in overlays:
        objects = load_documents(build(overlay))
        assert validate_documents(objects) == []
        assert [str(v) for doc in objects for v in policies.evaluate(doc)] == []


def applications_in(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in load_documents(path.read_text()) if doc["kind"] == "Application"]


def sources(app: dict[str, Any]) -> list[dict[str, Any]]:
    spec = app["spec"]
    return list(spec.get("sources") or [spec["source"]])


def test_root_points_only_at_paths_that_exist() -> None:
    files = skeleton_files()
    apps = applications_in(SKELETON / "bootstrap" / "root.yaml")
    assert {a["metadata"]["name"] for a in apps} >= {"platform", "appsets"}
    for app in apps:
        for source in sources(app):
            assert source["repoURL"] == REPO_URL
            folder = SKELETON / source["path"]
            assert folder.is_dir(), source["path"]
            include = (source.get("directory") or {}).get("include")
            inside = [f for f in files if f.startswith(source["path"] + "/")]
            if include:
                relative = [f[len(source["path"]) + 1 :] for f in inside]
                assert any(fnmatch.fnmatch(f, include) for f in relative), include
            else:
                assert any(f.endswith(".yaml") for f in inside)


def test_every_application_in_the_skeleton_points_at_existing_paths() -> None:
    files = set(skeleton_files())
    for path in sorted(SKELETON.rglob("application.yaml")):
        for app in applications_in(path):
            for source in sources(app):
                if source["repoURL"] == REPO_URL and "path" in source:
                    assert (SKELETON / source["path"]).is_dir(), (path, source["path"])
                for value_file in (source.get("helm") or {}).get("valueFiles", []):
                    assert value_file.startswith("$values/"), value_file
                    assert value_file.removeprefix("$values/") in files, value_file


@pytest.mark.parametrize("addon", ADDONS)
def test_addon_is_pinned_and_layers_values(addon: str) -> None:
    folder = SKELETON / "platform" / addon
    (app,) = applications_in(folder / "application.yaml")
    chart = next(s for s in sources(app) if "chart" in s)
    assert SEMVER.match(chart["targetRevision"]), chart["targetRevision"]
    assert chart["helm"]["valueFiles"] == [
        f"$values/platform/{addon}/values.yaml",
        f"$values/platform/{addon}/values-dev.yaml",
    ]
    assert any(s.get("ref") == "values" and s["repoURL"] == REPO_URL for s in sources(app))
    for name in ("values.yaml", "values-dev.yaml"):
        assert isinstance(yaml.safe_load((folder / name).read_text()), dict)


def test_addon_settings_the_issue_asks_for() -> None:
    def values(addon: str) -> Any:
        return yaml.safe_load((SKELETON / "platform" / addon / "values.yaml").read_text())

    assert values("cilium")["hubble"]["enabled"] is True
    otel = values("opentelemetry-collector")
    assert otel["mode"] == "daemonset"
    assert otel["config"]["service"]["pipelines"]["metrics"]["receivers"] == ["otlp"]
    assert "prometheusremotewrite" in otel["config"]["exporters"]
    prometheus = values("kube-prometheus-stack")["prometheus"]["prometheusSpec"]
    assert prometheus["enableRemoteWriteReceiver"] is True
    argocd = applications_in(SKELETON / "platform" / "argocd" / "application.yaml")[0]
    assert argocd["spec"]["destination"]["namespace"] == "argocd"  # manages itself


def test_the_portal_runs_on_the_platform() -> None:
    kinds = {
        (doc["kind"], doc["metadata"]["name"])
        for _p, doc in documents(SKELETON / "platform" / "caas-portal")
        if "metadata" in doc  # not the kustomization
    }
    assert {
        ("Deployment", "caas-portal-web"),
        ("Deployment", "caas-portal-worker"),
        ("Service", "caas-portal"),
        ("Ingress", "caas-portal"),
    } <= kinds
    web = next(
        doc
        for _p, doc in documents(SKELETON / "platform" / "caas-portal")
        if doc.get("kind") == "Deployment" and doc["metadata"]["name"] == "caas-portal-web"
    )
    volumes = web["spec"]["template"]["spec"]["volumes"]
    assert {"name": "secrets", "secret": {"secretName": "caas-portal-secrets"}} in volumes


def test_appsets_derive_project_and_destination_from_the_path() -> None:
    (tenants,) = load_documents((SKELETON / "appsets" / "tenants.yaml").read_text())
    generator = tenants["spec"]["generators"][0]["git"]
    assert generator["directories"] == [{"path": "tenants/*/*/envs/*"}]
    spec = tenants["spec"]["template"]["spec"]
    assert spec["project"] == "{{ index .path.segments 1 }}"
    assert spec["destination"] == {
        "name": "{{ .path.basename }}",
        "namespace": "{{ index .path.segments 2 }}",
    }
    (apps,) = load_documents((SKELETON / "appsets" / "applications.yaml").read_text())
    assert apps["spec"]["generators"][0]["git"]["files"] == [
        {"path": "applications/*/*/envs/*/application.yaml"}
    ]
    assert apps["spec"]["template"]["spec"]["project"] == "{{ index .path.segments 1 }}"
    # The cluster is the environment folder's, never the file's.
    assert apps["spec"]["template"]["spec"]["destination"]["name"] == "{{ .path.basename }}"
    (legacy,) = load_documents((SKELETON / "appsets" / "applications-legacy.yaml").read_text())
    assert legacy["spec"]["generators"][0]["git"]["files"] == [
        {"path": "applications/*/*/application.yaml"}
    ]
    # The patch copies only source and sync policy: never the project nor the destination.
    for appset in (apps, legacy):
        assert appset["spec"]["template"]["spec"]["project"] == "{{ index .path.segments 1 }}"
        assert "project" not in appset["spec"]["templatePatch"]
        assert "destination" not in appset["spec"]["templatePatch"]
    # The directories the generator reads exist.
    assert list(SKELETON.glob("tenants/*/*/envs/*"))


def test_examples_are_exactly_what_the_templates_render(tmp_path: Path) -> None:
    """teams/platform, tenants/platform/platform-tools and envs/dev are template output."""
    namespaces = lists.team_namespaces(
        p.relative_to(SKELETON).as_posix() for p in SKELETON.rglob("*") if p.is_file())
    for answers_file in sorted(SKELETON.rglob(".caas-answers.yaml")):
        unit = answers_file.parent
        stored = yaml.safe_load(answers_file.read_text())
        assert (TEMPLATES / stored["template"]).is_dir()
        # The answers file names the template content the unit came from (drift reports).
        assert stored["version"] == tree_id(TEMPLATES / stored["template"])
        out = render(stored["template"], stored["answers"], tmp_path / unit.name, validate=False)
        expected = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
        actual = sorted(
            p.relative_to(unit).as_posix()
            for p in unit.rglob("*")
            if p.is_file() and p.name != ".caas-answers.yaml"
        )
        assert actual == expected
        for name in expected:
            want = (out / name).read_bytes()
            if f"{unit.relative_to(SKELETON).as_posix()}/{name}" == (
                    "teams/platform/appproject.yaml"):
                # The destinations list is derived from the team's tenants (gitops.lists).
                want = lists.with_destinations(want, namespaces["platform"])
            assert (unit / name).read_bytes() == want, name
    units = {
        p.parent.relative_to(SKELETON).as_posix() for p in SKELETON.rglob(".caas-answers.yaml")
    }
    assert units == {"teams/platform", "tenants/platform/platform-tools", "envs/dev"}


def test_dev_environment_is_local() -> None:
    infra = yaml.safe_load((SKELETON / "envs" / "dev" / "infra.yaml").read_text())
    assert infra["provider"] == "local" and infra["tier"] == "dev" and infra["installed"] is True
    assert set(infra["capacity"]) == {"cpu", "memory", "storage"}
    from gitops.environment import load_infra

    assert load_infra(SKELETON / "envs" / "dev" / "infra.yaml").provider == "local"


def test_codeowners_covers_the_repository() -> None:
    lines = [
        line.split()
        for line in (SKELETON / "CODEOWNERS").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    patterns = {parts[0] for parts in lines}
    assert {"*", "/platform/", "/envs/", "/teams/platform/", "/tenants/platform/"} <= patterns
    assert all(len(parts) >= 2 and parts[1].startswith("@") for parts in lines)


def test_codeowners_is_what_the_portal_generates() -> None:
    """The first team or environment PR then only adds its own lines, never rewrites the file."""
    from scaffolder.codeowners import codeowners_changes

    class SkeletonReader:
        kind = "directory"

        def read_file(self, path: str, ref: str = "main") -> bytes | None:
            file = SKELETON / path
            return file.read_bytes() if file.is_file() else None

        def list_files(self, prefix: str = "", ref: str = "main") -> list[str]:
            return sorted(str(p.relative_to(SKELETON)) for p in (SKELETON / prefix).rglob("*")
                          if p.is_file())

    reader = SkeletonReader()
    assert codeowners_changes(reader, [], org=None, admins=["@platform-admins"]) == []  # type: ignore[arg-type]
