"""Each template folder renders with the plain ``cookiecutter --no-input`` command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from scaffolder.checks.manifests import validate_manifest
from tests.templates.support import NAMES, TEMPLATES, cluster_objects, yaml_files

COOKIECUTTER = Path(sys.executable).with_name("cookiecutter")


@pytest.mark.parametrize("name", NAMES)
def test_plain_cookiecutter_renders(name: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [str(COOKIECUTTER), "--no-input", "--output-dir", str(tmp_path), str(TEMPLATES / name)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    (out,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert yaml_files(out)
    objects = cluster_objects(out)
    assert objects
    assert [e for _p, doc in objects for e in validate_manifest(doc)] == []
    if name == "tenant":
        assert (out / "envs" / "dev" / "kustomization.yaml").is_file()
