"""``kubectl kustomize`` builds, and explains why a build fails."""

from __future__ import annotations

from pathlib import Path

import pytest

from scaffolder.checks.kustomize import KustomizeError, build
from scaffolder.checks.manifests import load_documents


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_builds_an_overlay(tmp_path: Path) -> None:
    write(tmp_path / "base" / "kustomization.yaml", "resources: [cm.yaml]\n")
    write(
        tmp_path / "base" / "cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  k: v\n",
    )
    write(
        tmp_path / "envs" / "dev" / "kustomization.yaml",
        "resources: [../../base]\nnamespace: team-a\n",
    )
    (doc,) = load_documents(build(tmp_path / "envs" / "dev"))
    assert doc["metadata"] == {"name": "a", "namespace": "team-a"}


def test_failure_is_explained(tmp_path: Path) -> None:
    write(tmp_path / "kustomization.yaml", "resources: [missing.yaml]\n")
    with pytest.raises(KustomizeError, match=r"missing\.yaml"):
        build(tmp_path)


def test_files_outside_the_overlay_root_are_refused(tmp_path: Path) -> None:
    write(tmp_path / "secret.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: s\n")
    write(
        tmp_path / "overlay" / "kustomization.yaml",
        "configMapGenerator:\n- name: x\n  files: [../secret.yaml]\n",
    )
    with pytest.raises(KustomizeError, match=r"security|outside|not in or below"):
        build(tmp_path / "overlay")


def test_not_a_directory_and_missing_kubectl(tmp_path: Path) -> None:
    with pytest.raises(KustomizeError, match="not a directory"):
        build(tmp_path / "nope")
    write(tmp_path / "kustomization.yaml", "resources: []\n")
    with pytest.raises(KustomizeError, match="not installed"):
        build(tmp_path, kubectl=str(tmp_path / "no-kubectl"))
