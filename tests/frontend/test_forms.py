"""The form built from a template's schema, and the way its answers come back (no browser)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from frontend.forms import parse_form, single_field_parameters, widgets
from portal.errors import ValidationFailed
from scaffolder.parameters import FieldSpec, ParameterContext, form_fields, validate_answers

TENANT = Path(__file__).resolve().parents[2] / "templates" / "tenant" / "template.yaml"


@pytest.fixture(scope="module")
def parameters() -> list[dict[str, object]]:
    return list(yaml.safe_load(TENANT.read_text())["spec"]["parameters"])


def test_widgets_follow_the_schema(parameters: list[dict[str, object]]) -> None:
    found = {w.name: w for w in widgets(form_fields(parameters),
                                         choices={"team": ["payments"], "environment": ["dev"]})}
    assert found["team"].kind == "select" and found["team"].options == ["payments"]
    assert found["environments"].kind == "checkboxes"
    assert found["environments"].values == frozenset({"dev"})  # the schema default
    assert found["max_pods"].kind == "number" and found["max_pods"].value == "50"
    assert found["allow_monitoring"].kind == "checkbox" and found["allow_monitoring"].checked
    assert found["environment_quotas"].kind == "rows"  # lists and maps: row editors
    assert found["http_allow"].kind == "rows"
    assert found["name"].required and found["name"].help.startswith("DNS-1123")
    assert found["cpu_quota"].value == "4"


def test_parse_form_gives_the_types_the_server_validates(
        parameters: list[dict[str, object]]) -> None:
    specs = form_fields(parameters)
    form = {"team": ["payments"], "name": ["web"], "cost_center": ["cc-1"],
            "environments.__multi": ["1"], "environments": ["dev"], "max_pods": ["12"],
            "allow_monitoring": ["true"], "environment_quotas": ['{"dev": {"cpu": "2"}}'],
            "http_allow": ["[]"], "description": [""]}
    answers = parse_form(specs, form)
    assert answers["max_pods"] == 12
    assert answers["allow_monitoring"] is True
    assert answers["allow_egress_world"] is False  # an unticked box is an answer too
    assert answers["environments"] == ["dev"]
    assert answers["environment_quotas"] == {"dev": {"cpu": "2"}}
    assert "description" not in answers  # empty optional: the default applies
    context = ParameterContext(teams=frozenset({"payments"}), environments=frozenset({"dev"}))
    clean = validate_answers(parameters, answers, context=context)
    assert clean["description"] == ""


def test_single_field_check_uses_the_server_rules(parameters: list[dict[str, object]]) -> None:
    one = single_field_parameters(parameters, "name")
    context = ParameterContext()
    with pytest.raises(ValidationFailed) as bad:
        validate_answers(one, {"name": "Bad_Name"}, context=context)
    assert bad.value.field == "name"
    assert validate_answers(one, {"name": "good-name"}, context=context) == {"name": "good-name"}
    assert single_field_parameters(parameters, "nope") == []


def _template_fields(name: str) -> list[FieldSpec]:
    path = TENANT.parents[1] / name / "template.yaml"
    return list(form_fields(yaml.safe_load(path.read_text())["spec"]["parameters"]))


def test_the_name_of_a_new_team_or_environment_is_free_text() -> None:
    """A field called ``team``/``environment`` that is not a picker is the new unit's name:
    never a list of the names that already exist (issue 15)."""
    choices = {"team": ["payments"], "environment": ["dev"]}
    team = {w.name: w for w in widgets(_template_fields("team"), choices=choices)}
    env = {w.name: w for w in widgets(_template_fields("environment"), choices=choices)}
    assert team["team"].kind == "text" and team["team"].options == []
    assert env["environment"].kind == "text" and env["environment"].options == []
    app = {w.name: w for w in widgets(_template_fields("application"), choices=choices)}
    assert app["environment"].kind == "select" and app["environment"].options == ["dev"]


def test_identifying_fields_are_fixed_only_when_named(
        parameters: list[dict[str, object]]) -> None:
    found = {w.name: w for w in widgets(form_fields(parameters), choices={"team": ["payments"]},
                                         values={"team": "payments", "name": "web"},
                                         fixed=frozenset({"team", "name"}))}
    assert found["team"].fixed and found["name"].fixed and not found["cpu_quota"].fixed
    assert found["team"].value == "payments"


def test_json_help_follows_the_shape_and_timeline_booleans_are_words() -> None:
    from frontend.catalog_pages import _detail_text
    from frontend.forms import widgets
    from scaffolder.parameters import form_fields

    specs = form_fields([{"properties": {
        "rules": {"type": "array", "items": {"type": "object"}, "default": []},
        "labels": {"type": "object", "default": {}},
        "nested": {"type": "object", "additionalProperties": {"type": "array"}}}}])
    shapes = {w.name: (w.kind, w.json_shape) for w in widgets(specs)}
    # Free keys are a key/value row editor; what a table cannot hold stays JSON text.
    assert shapes == {"rules": ("json", "list"), "labels": ("rows", "object"),
                      "nested": ("json", "object")}
    assert _detail_text({"green": True, "failing": ["policies", "capacity"]}) == \
        "green: yes · failing: policies, capacity"
