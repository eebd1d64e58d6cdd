"""The form built from a template's schema, and the way its answers come back (no browser)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from frontend.forms import parse_form, single_field_parameters, widgets
from portal.errors import ValidationFailed
from scaffolder.parameters import ParameterContext, form_fields, validate_answers

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
    assert found["environment_quotas"].kind == "json"
    assert found["http_allow"].kind == "json"
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
