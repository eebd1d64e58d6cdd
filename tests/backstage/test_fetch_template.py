"""Backstage's real ``fetch:template`` (plugin-scaffolder-backend, run by its own
NunjucksWorkflowRunner with ``each`` and ``${{ }}`` step inputs) renders every template to the
same repository paths and the same YAML documents as the portal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from scaffolder.parameters import validate_answers
from scaffolder.registry import load_template
from scaffolder.render import ANSWERS_FILE, render
from tests.backstage.conftest import run_node
from tests.templates.support import (
    CONTEXT,
    EDGE_ALL_OFF,
    EDGE_ALL_ON,
    NAMES,
    TEMPLATES,
    TYPICAL,
    parameters,
)

pytestmark = pytest.mark.backstage

UNICODE = "Zahlungen 🚀 «ünïcödé» — עברית ✓ 'q' \"dq\" \\ : # - * & ! % @ ` 中文"
MINIMAL: dict[str, dict[str, Any]] = {
    "team": {"team": "payments", "display_name": "Payments", "cost_center": "cc-1001",
             "owners": ["alice"]},
    "tenant": {"team": "payments", "name": "checkout", "cost_center": "cc-1001",
               "environments": ["dev"]},
    "application": {"team": "payments", "name": "api", "tenant": "checkout",
                    "environment": "dev", "repo_url": "https://charts.example.org/p",
                    "revision": "1.0.0"},
    "environment": {"environment": "qa", "provider": "local", "region": "local",
                    "tier": "dev"},
}
UNICODE_CASES: dict[str, dict[str, Any]] = {
    "team": {**TYPICAL["team"], "display_name": UNICODE, "description": UNICODE,
             "owners": ["alice", "bob"], "members": ["bob", "carol", "dave"]},
    "tenant": {**TYPICAL["tenant"], "description": UNICODE,
               "environments": ["dev", "staging", "prod"]},
    "application": {**TYPICAL["application"], "description": UNICODE,
                    "helm_parameters": [{"name": "title", "value": UNICODE},
                                        {"name": "a.b", "value": "x=y,z:w"}]},
    "environment": {**TYPICAL["environment"], "zones": ["a", "b"]},
}
SETS = {"minimal": MINIMAL, "typical": TYPICAL, "all-on": EDGE_ALL_ON, "all-off": EDGE_ALL_OFF,
        "unicode": UNICODE_CASES}


def _portal(name: str, answers: dict[str, Any]) -> tuple[str, dict[str, bytes]]:
    template = load_template(TEMPLATES / name, trusted=True)
    target = template.fill(template.target_path, answers)
    files = render(template, answers, target=target)
    return target, {p: b for p, b in files.items() if not p.endswith("/" + ANSWERS_FILE)}


def _documents(data: bytes) -> list[Any]:
    return list(yaml.safe_load_all(data.decode("utf-8")))


def test_backstage_renders_what_the_portal_renders(backstage_node: Path, tmp_path: Path) -> None:
    cases: list[dict[str, Any]] = []
    expected: dict[str, dict[str, bytes]] = {}
    for set_name, answer_set in SETS.items():
        for name in NAMES:
            answers = validate_answers(parameters(name), answer_set[name], context=CONTEXT)
            out = tmp_path / f"{set_name}-{name}"
            _target, files = _portal(name, answers)
            expected[str(out)] = files
            cases.append({"template": str(TEMPLATES / name), "parameters": answers,
                          "out": str(out)})
    results = run_node("render", cases, tmp_path)
    assert [r["error"] for r in results if not r["ok"]] == []
    for result in results:
        out = Path(result["out"])
        got = {p.relative_to(out).as_posix(): p.read_bytes()
               for p in sorted(out.rglob("*")) if p.is_file()}
        want = expected[str(out)]
        assert sorted(got) == sorted(want), out.name
        for path, data in want.items():
            assert _documents(got[path]) == _documents(data), f"{out.name}: {path}"
        # Not required by the comparison, but true today: the very same bytes.
        assert got == want, out.name
