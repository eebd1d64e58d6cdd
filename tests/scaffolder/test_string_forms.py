"""One answer, three spellings: the form's rows, the API's JSON and the command line's string
form (``owners=alice,bob``, ``environment_quotas=prod:8:16Gi``) give the same answers, and those
answers render back to the very same string form for cookiecutter."""

from __future__ import annotations

from typing import Any

import pytest

from frontend.forms import read_form
from portal.errors import ValidationFailed
from portal.settings import Settings
from scaffolder.cli_values import parse_values
from scaffolder.parameters import ParameterContext, form_fields, validate_answers
from scaffolder.registry import Registry
from scaffolder.render import cookiecutter_values
from scaffolder.string_forms import parse

pytestmark = pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
CONTEXT = ParameterContext(teams=frozenset({"payments"}),
                           environments=frozenset({"dev", "staging", "prod"}))

BASE: dict[str, dict[str, Any]] = {
    "team": {"team": "payments", "display_name": "Payments", "cost_center": "cc",
             "owners": ["alice"]},
    "tenant": {"team": "payments", "name": "web", "cost_center": "cc",
               "environments": ["dev", "staging", "prod"]},
    "environment": {"environment": "qa", "provider": "local", "region": "local", "tier": "dev"},
    "application": {"team": "payments", "name": "shop", "tenant": "web", "environment": "dev",
                    "source_type": "helm", "repo_url": "https://charts.example.org",
                    "revision": "1.0.0", "chart": "shop"},
}
# (template, field, string form, posted rows, answer)
CASES: list[tuple[str, str, str, dict[str, str], Any]] = [
    ("team", "owners", "alice,bob", {"owners[0]": "alice", "owners[1]": "bob"},
     ["alice", "bob"]),
    ("tenant", "environment_quotas", "prod:8:16Gi",
     {"environment_quotas[0][__key]": "prod", "environment_quotas[0][cpu]": "8",
      "environment_quotas[0][memory]": "16Gi"}, {"prod": {"cpu": "8", "memory": "16Gi"}}),
    ("tenant", "environment_quotas", "prod:8:16Gi,staging:2:",
     {"environment_quotas[4][__key]": "staging", "environment_quotas[4][cpu]": "2",
      "environment_quotas[1][__key]": "prod", "environment_quotas[1][cpu]": "8",
      "environment_quotas[1][memory]": "16Gi"},
     {"prod": {"cpu": "8", "memory": "16Gi"}, "staging": {"cpu": "2"}}),
    ("tenant", "http_allow", "payments-web:8080:GET:/api/v1",
     {"http_allow[0][from_namespace]": "payments-web", "http_allow[0][port]": "8080",
      "http_allow[0][method]": "GET", "http_allow[0][path]": "/api/v1"},
     [{"from_namespace": "payments-web", "port": 8080, "method": "GET", "path": "/api/v1"}]),
    ("environment", "node_groups", "general:m6i.large+m6i.xlarge:1:3:2",
     {"node_groups[0][name]": "general", "node_groups[0][instance_types]": "m6i.large, m6i.xlarge",
      "node_groups[0][min]": "1", "node_groups[0][max]": "3", "node_groups[0][desired]": "2"},
     [{"name": "general", "instance_types": ["m6i.large", "m6i.xlarge"], "min": 1, "max": 3,
       "desired": 2}]),
    ("application", "helm_parameters", "image.tag=1.2\nargs=a=b",
     {"helm_parameters[0][name]": "image.tag", "helm_parameters[0][value]": "1.2",
      "helm_parameters[1][name]": "args", "helm_parameters[1][value]": "a=b"},
     [{"name": "image.tag", "value": "1.2"}, {"name": "args", "value": "a=b"}]),
]


@pytest.mark.parametrize(("template", "name", "text", "rows", "answer"), CASES)
def test_rows_json_and_string_form_are_one_answer(
        settings: Settings, template: str, name: str, text: str, rows: dict[str, str],
        answer: Any) -> None:
    registry = Registry(settings)
    found = registry.get(template)
    posted = {k: [v] for k, v in rows.items()} | {f"{name}.__rows": ["1"]}
    from_rows = read_form(form_fields(found.parameters), posted).answers[name]
    from_cli = parse_values(registry=registry, template=template, pairs=[f"{name}={text}"])[name]
    assert from_rows == answer
    assert from_cli == answer
    # The answer renders back to the same string form the cookiecutter CLI takes.
    clean = validate_answers(found.parameters, {**BASE[template], name: answer}, context=CONTEXT)
    assert cookiecutter_values(found, clean)[name] == text


def test_json_still_works_and_unknown_expressions_are_not_guessed(settings: Settings) -> None:
    registry = Registry(settings)
    assert parse_values(registry=registry, template="team",
                        pairs=['owners=["carol"]'])["owners"] == ["carol"]
    assert parse("${{ parameters.x }}", "a,b", {"type": "array"}) is None


@pytest.mark.parametrize("hostile", ["{{ cookiecutter.x }}", "../x", "a: b"])
def test_hostile_string_forms_stay_data_and_are_refused(settings: Settings,
                                                        hostile: str) -> None:
    registry = Registry(settings)
    found = registry.get("tenant")
    values = parse_values(registry=registry, template="tenant",
                          pairs=[f"environment_quotas={hostile}:1:1Gi"])
    quotas = values["environment_quotas"]
    assert isinstance(quotas, dict)
    with pytest.raises(ValidationFailed, match="environment_quotas"):
        validate_answers(found.parameters, {"team": "payments", "name": "web",
                                            "cost_center": "cc", "environments": ["dev"],
                                            **values}, context=CONTEXT)


def test_a_map_key_given_twice_is_refused_not_silently_dropped(settings: Settings) -> None:
    """``environment_quotas=dev:1:1Gi,dev:2:2Gi`` used to keep only the last row: a typo lost
    a row without a word."""
    registry = Registry(settings)
    with pytest.raises(ValidationFailed) as err:
        parse_values(registry=registry, template="tenant",
                     pairs=["environment_quotas=dev:1:1Gi,dev:2:2Gi"])
    assert err.value.field == "environment_quotas" and err.value.rule == "unique-keys"
    assert "'dev'" in err.value.message and "row 2" in err.value.message
