"""What a unit's module folder declares: its variables (required or not) and its outputs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

# Test-only or site-specific files Terraform merges over the module
# (https://developer.hashicorp.com/terraform/language/files/override); not part of the interface.
OVERRIDE_SUFFIX = "_override.tf"


@dataclass(frozen=True)
class ModuleInterface:
    """Variables (name → required) and outputs a unit folder declares."""

    variables: dict[str, bool]
    outputs: frozenset[str]

    @property
    def required(self) -> frozenset[str]:
        return frozenset(name for name, required in self.variables.items() if required)


_BLOCK = re.compile(r'^(variable|output)\s+"([^"]+)"\s*\{\s*$', re.MULTILINE)


def module_interface(module: Path) -> ModuleInterface:
    """Read a unit's variables and outputs from its ``*.tf`` files.

    Relies on ``terraform fmt`` layout (top-level ``}`` in column 0, attributes indented two
    spaces), which ``terraform fmt -check`` in the tests enforces for every module.
    """
    variables: dict[str, bool] = {}
    outputs: set[str] = set()
    for path in sorted(module.glob("*.tf")):
        if path.name.endswith(OVERRIDE_SUFFIX):
            continue
        text = path.read_text(encoding="utf-8")
        for match in _BLOCK.finditer(text):
            end = text.find("\n}", match.end())
            body = text[match.end(): end if end >= 0 else len(text)]
            if match.group(1) == "variable":
                variables[match.group(2)] = re.search(r"^  default\s*=", body, re.M) is None
            else:
                outputs.add(match.group(2))
    return ModuleInterface(variables, frozenset(outputs))
