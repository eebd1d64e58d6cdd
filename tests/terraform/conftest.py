"""Terraform fixtures: one CLI configuration (provider mirror only) and plugin cache per session."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from portal.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]
MODULES = REPO_ROOT / "terraform"
MIRROR = Path("/opt/tf-plugins")


@pytest.fixture(scope="session")
def tf_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment for running `terraform` directly: the mirror only, so nothing is downloaded."""
    root = tmp_path_factory.mktemp("tfcli")
    config = root / "terraformrc"
    config.write_text(f"plugin_cache_dir = {json.dumps(str(root / 'cache'))}\n"
                      "provider_installation {\n  filesystem_mirror {\n"
                      f"    path = {json.dumps(str(MIRROR))}\n  }}\n}}\n")
    (root / "cache").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_")}
    env.update({"TF_CLI_CONFIG_FILE": str(config), "CHECKPOINT_DISABLE": "1",
                "TF_IN_AUTOMATION": "1"})
    return env


def terraform(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["terraform", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, check=False, timeout=600)


def runner_settings(data_dir: Path, **overrides: object) -> Settings:
    return Settings.model_validate({"data_dir": data_dir, "terraform_modules_dir": MODULES,
                                    "terraform_plugin_mirror": MIRROR, **overrides})
