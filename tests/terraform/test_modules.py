"""Every module is formatted, valid (providers from the filesystem mirror only) and documented."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from reconciler.tfmodule import module_interface
from reconciler.units import UNIT_ORDER
from tests.terraform.conftest import MODULES, terraform

pytestmark = pytest.mark.terraform
ROOTS = [f"{provider}/{unit}" for provider in ("aws", "local") for unit in UNIT_ORDER]
ROOTS += ["aws/examples/complete", "local/examples/complete"]


def test_fmt_check(tf_env: dict[str, str]) -> None:
    result = terraform(["fmt", "-check", "-recursive", "-diff", "-no-color"], MODULES, tf_env)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("root", ROOTS)
def test_validate(root: str, tf_env: dict[str, str], tmp_path: Path) -> None:
    provider = root.split("/")[0]
    copy = tmp_path / provider
    shutil.copytree(MODULES / provider, copy)  # examples reach the units through ../../
    work = copy / root.split("/", 1)[1]
    init = terraform(["init", "-backend=false", "-input=false", "-no-color"], work, tf_env)
    assert init.returncode == 0, init.stdout + init.stderr
    if provider == "aws":
        # Installed from the mirror (the CLI configuration has no `direct` block to fall back on).
        assert "Installed hashicorp/aws v5.100.0" in init.stdout
        assert re.search(r"Finding hashicorp/aws versions matching", init.stdout)
    else:
        assert not (work / ".terraform" / "providers").exists()
    result = terraform(["validate", "-json", "-no-color"], work, tf_env)
    report = json.loads(result.stdout)
    assert report["valid"], report["diagnostics"]
    assert report["warning_count"] == 0, report["diagnostics"]


@pytest.mark.parametrize("root", ROOTS[:10])
def test_module_conventions(root: str) -> None:
    folder = MODULES / root
    for name in ("main.tf", "variables.tf", "outputs.tf", "versions.tf", "README.md"):
        assert (folder / name).is_file(), name
    variables = (folder / "variables.tf").read_text()
    blocks = re.split(r'^variable "', variables, flags=re.M)[1:]
    for block in blocks:  # every variable described and typed
        assert "  description = " in block and "  type " in block, block.split('"')[0]
    outputs = (folder / "outputs.tf").read_text()
    for block in re.split(r'^output "', outputs, flags=re.M)[1:]:
        assert "  description = " in block, block.split('"')[0]
    readme = (folder / "README.md").read_text()
    interface = module_interface(folder)
    for name in [*interface.variables, *interface.outputs]:
        assert f"| `{name}` |" in readme, name
    versions = (folder / "versions.tf").read_text()
    assert 'required_version = ">= 1.5.0, < 2.0.0"' in versions
    if root.startswith("aws/"):
        assert 'version = ">= 5.100.0, < 6.0.0"' in versions
    else:
        assert "required_providers" not in versions
        assert not re.search(r'^provider "', (folder / "main.tf").read_text(), re.M)
