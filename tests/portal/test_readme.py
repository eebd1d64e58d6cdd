"""The README stays honest: its configuration table is the one generated from Settings."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO_ROOT


def test_readme_configuration_table_is_current() -> None:
    proc = subprocess.run([sys.executable, "scripts/settings_table.py", "--check"],
                          cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


def test_readme_names_the_two_commands() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    assert "make demo" in readme
    assert "make test" in readme
