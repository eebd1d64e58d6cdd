"""Hostile values: refused with a clear message, or rendered as inert text in valid YAML."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from portal.errors import ValidationFailed
from scaffolder.checks.manifests import load_documents, validate_manifest
from scaffolder.parameters import form_fields, validate_answers
from tests.templates.support import CONTEXT, NAMES, TYPICAL, cluster_objects, parameters, render

# Each string packs several YAML breakers, so a few renders cover them all.
HOSTILE = [
    "quote \" and ' quote, key: value # not a comment, - item",
    "---",
    "&anchor *alias !!python/object:os.system %TAG @at `tick`",
    "null",
    "back\\slash ''' \"\"\" [1, 2] {a: b} 0o777 yes",
    "{{ 7 * 7 }}",
    "{% for x in range(3) %}x{% endfor %}",
    "{# hidden #}",
    "${{ parameters.team }}",
    "line one\nline two: x\n---\nkind: Secret",
    "tab\there",
    "\u202eevil",
]
TEMPLATE_MARKERS = ("{{", "{%", "{#", "${{")


def free_text_fields(name: str) -> list[str]:
    """Top-level string fields without a pattern or enum: where any text may go."""
    return [
        f.name
        for f in form_fields(parameters(name))
        if f.type == "string" and not f.pattern and not f.enum and not f.rule and not f.ui_field
    ]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_fail_clearly_or_stay_text(name: str, value: str, tmp_path: Path) -> None:
    refused_rule = (
        "no-template"
        if any(marker in value for marker in TEMPLATE_MARKERS)
        else "no-control-characters"
        if any(not ch.isprintable() for ch in value)
        else None
    )
    for field in free_text_fields(name):
        answers = {**TYPICAL[name], field: value}
        if refused_rule is not None:
            with pytest.raises(ValidationFailed) as caught:
                validate_answers(parameters(name), answers, context=CONTEXT)
            assert (caught.value.field, caught.value.rule) == (field, refused_rule)
            assert field in caught.value.message and refused_rule in caught.value.message
            continue
        out = render(name, answers, tmp_path / field)
        assert_inert(out, value)


@pytest.mark.parametrize("name", NAMES)
def test_every_constrained_field_refuses_yaml_breakers(name: str) -> None:
    for spec in form_fields(parameters(name)):
        if spec.type != "string" or not (spec.pattern or spec.enum or spec.rule or spec.ui_field):
            continue
        for value in ("a: b", "a\nb", "{{ x }}", "../x", "/abs", "x y"):
            with pytest.raises(ValidationFailed) as caught:
                validate_answers(
                    parameters(name), {**TYPICAL[name], spec.name: value}, context=CONTEXT
                )
            assert caught.value.field == spec.name


def test_template_code_renders_inert_even_without_validation(tmp_path: Path) -> None:
    """Defence in depth: even unvalidated values are data to cookiecutter and the hook."""
    evil = "{{ cookiecutter.team }} {% raw %}x{% endraw %} {{ ''.__class__ }} ''' \"\"\" \\"
    answers = validate_answers(parameters("tenant"), TYPICAL["tenant"], context=CONTEXT)
    answers = {**answers, "description": evil + "\n---\nkind: Secret", "cost_center": "cc"}
    out = render("tenant", answers, tmp_path, validate=False)
    assert_inert(out, evil + "\n---\nkind: Secret")
    team = validate_answers(parameters("team"), TYPICAL["team"], context=CONTEXT)
    out = render(
        "team", {**team, "display_name": evil, "members": [evil]}, tmp_path / "t", validate=False
    )
    spec = load_documents((out / "team.yaml").read_text())[0]["spec"]
    assert spec["displayName"] == evil and spec["members"] == [evil]


def assert_inert(out: Path, value: str) -> None:
    """Every file parses, every manifest is valid, and the value appears verbatim somewhere."""
    found = False
    for path in sorted(out.rglob("*.y*ml")):
        docs = load_documents(path.read_text(encoding="utf-8"))
        found = found or any(contains(doc, value) for doc in docs)
        for doc in docs:
            assert doc.get("kind") != "Secret" or path.name == "cluster.yaml"
    assert found, "the value did not land anywhere"
    assert [e for _p, doc in cluster_objects(out) for e in validate_manifest(doc)] == []


def contains(node: Any, value: str) -> bool:
    if isinstance(node, str):
        return node == value
    if isinstance(node, dict):
        return any(contains(v, value) for v in node.values())
    if isinstance(node, list):
        return any(contains(v, value) for v in node)
    return False
