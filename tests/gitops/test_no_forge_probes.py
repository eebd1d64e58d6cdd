"""Nobody probes a forge: what every forge does is ``Forge``, the rest is ``Review`` (DESIGN.md:
"No code probes a Protocol object with getattr/hasattr")."""

from __future__ import annotations

import ast
from pathlib import Path

from gitops.forges.base import Forge, Review

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("portal", "gitops", "catalog", "scaffolder", "reconciler", "frontend")
# Every member of the forge protocols, plus what a forge keeps inside (its repository).
MEMBERS = ({n for n in dir(Forge) if not n.startswith("_")} | set(Forge.__annotations__)
           | {n for n in dir(Review) if not n.startswith("_")} | {"git_dir"})


def _probes(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id in ("getattr", "hasattr") and len(node.args) >= 2):
            continue
        target, name = ast.unparse(node.args[0]), node.args[1]
        named = isinstance(name, ast.Constant) and name.value in MEMBERS
        if "forge" in target.lower() or named:
            found.append(f"{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_getattr_or_hasattr_on_a_forge() -> None:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            probes = _probes(ast.parse(path.read_text(encoding="utf-8")))
            if probes:
                found[str(path.relative_to(ROOT))] = probes
    assert found == {}


def test_the_probe_finder_finds_probes() -> None:
    assert _probes(ast.parse("getattr(forge, 'git_dir', None)\nhasattr(x, 'merge')\n"))
    assert _probes(ast.parse("getattr(self.forge, 'anything')")) == [
        "1: getattr(self.forge, 'anything')"]
    assert _probes(ast.parse("hasattr(obj, 'read_tree')"))  # a Forge member, whatever holds it
    assert not _probes(ast.parse("getattr(request.state, 'principal', None)"))
