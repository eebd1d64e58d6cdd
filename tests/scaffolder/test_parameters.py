"""Answers validated from a template's own JSON Schema: first problem named, defaults applied."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from portal.errors import ValidationFailed
from scaffolder.parameters import (
    ParameterContext,
    form_fields,
    merged_schema,
    parameter_context,
    parse_quota_bounds,
    validate_answers,
)

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
CONTEXT = ParameterContext(
    teams=frozenset({"payments", "platform"}),
    environments=frozenset({"dev", "prod"}),
    reserved_namespaces=frozenset({"argocd", "monitoring"}),
    quota_bounds={"cpu": ("100m", "16"), "memory": ("64Mi", "64Gi"), "storage": ("1Gi", "1Ti")},
    max_string_length=300,
)


def parameters(name: str) -> Any:
    return YAML(typ="safe").load((TEMPLATES / name / "template.yaml").read_text())["spec"][
        "parameters"
    ]


TENANT = {"team": "payments", "name": "checkout", "cost_center": "cc-1", "environments": ["dev"]}


def refused(
    name: str, answers: dict[str, Any], context: ParameterContext = CONTEXT
) -> ValidationFailed:
    with pytest.raises(ValidationFailed) as caught:
        validate_answers(parameters(name), answers, context=context)
    return caught.value


def test_defaults_and_derived_values_are_added() -> None:
    result = validate_answers(parameters("tenant"), TENANT, context=CONTEXT)
    assert result["namespace"] == "payments-checkout"
    assert result["cpu_quota"] == "4"
    assert result["http_allow"] == []
    assert result["allow_ingress_controller"] is True
    # Defaults are copies: changing one result must not change the schema's default.
    result["environments"].append("prod")  # type: ignore[attr-defined]
    again = validate_answers(
        parameters("tenant"), {k: v for k, v in TENANT.items() if k != "environments"},
        context=CONTEXT,
    )
    assert again["environments"] == ["dev"]


def _fields_with_defaults() -> list[tuple[str, str]]:
    return [(template, f.name) for template in ("tenant", "team", "environment", "application")
            for f in form_fields(parameters(template)) if f.default is not None]


@pytest.mark.parametrize(("template", "field"), _fields_with_defaults())
def test_null_is_refused_naming_the_field_never_replaced_by_the_default(
        template: str, field: str) -> None:
    """Every field with a default: an explicit ``null`` is a type error, not the default."""
    prop = merged_schema(parameters(template))["properties"][field]
    with pytest.raises(ValidationFailed) as err:  # the field alone, as the template declares it
        validate_answers({"properties": {field: prop}}, {field: None}, context=CONTEXT)
    assert err.value.field == field, err.value.message
    assert err.value.rule == "type"


@pytest.mark.parametrize(("value", "rule"), [
    (float("inf"), "finite"), (float("-inf"), "finite"), (float("nan"), "finite"),
    ([float("inf")], "finite"), (2**63, "int64"), (-(2**64), "int64"), ({"a": 2**70}, "int64")])
def test_unbounded_numbers_are_refused_naming_the_field(value: object, rule: str) -> None:
    with pytest.raises(ValidationFailed) as err:
        validate_answers(parameters("tenant"), {**TENANT, "max_pods": value}, context=CONTEXT)
    assert (err.value.field, err.value.rule) == ("max_pods", rule)


@pytest.mark.parametrize(
    ("answers", "field", "rule"),
    [
        ({**TENANT, "team": "shipping"}, "team", "team"),
        ({**TENANT, "environments": ["qa"]}, "environments", "environment"),
        ({**TENANT, "name": "Checkout"}, "name", "pattern"),
        ({**TENANT, "name": "a" * 33}, "name", "maxLength"),
        ({**TENANT, "name": "-x"}, "name", "pattern"),
        ({**TENANT, "cpu_quota": "64"}, "cpu_quota", "quantity-bounds"),
        ({**TENANT, "cpu_quota": "10m"}, "cpu_quota", "quantity-bounds"),
        ({**TENANT, "memory_quota": "lots"}, "memory_quota", "quantity"),
        ({**TENANT, "max_pods": 0}, "max_pods", "minimum"),
        ({**TENANT, "max_pods": "50"}, "max_pods", "type"),
        ({**TENANT, "surprise": 1}, "surprise", "additionalProperties"),
        ({**TENANT, "namespace": "kube-system"}, "namespace", "additionalProperties"),
        ({k: v for k, v in TENANT.items() if k != "cost_center"}, "cost_center", "required"),
        ({**TENANT, "description": "{{ cookiecutter.team }}"}, "description", "no-template"),
        ({**TENANT, "description": "{% include '/etc/passwd' %}"}, "description", "no-template"),
        ({**TENANT, "description": "${{ parameters.team }}"}, "description", "no-template"),
        ({**TENANT, "description": "line\nbreak"}, "description", "no-control-characters"),
        ({**TENANT, "description": "bidi\u202eevil"}, "description", "no-control-characters"),
        ({**TENANT, "description": "x" * 301}, "description", "max-length"),
        (
            {**TENANT, "environment_quotas": {"qa": {"cpu": "1"}}},
            "environment_quotas",
            "environment",
        ),
        (
            {**TENANT, "environment_quotas": {"dev": {"cpu": "99"}}},
            "environment_quotas",
            "quantity-bounds",
        ),
        (
            {**TENANT, "environment_quotas": {"dev": {"gpu": "1"}}},
            "environment_quotas",
            "additionalProperties",
        ),
        (
            {
                **TENANT,
                "http_allow": [
                    {"from_namespace": "web", "port": 80, "method": "GET", "path": "/a b"}
                ],
            },
            "http_allow",
            "pattern",
        ),
        (
            {
                **TENANT,
                "http_allow": [{"from_namespace": "Web", "port": 80, "method": "GET", "path": "/"}],
            },
            "http_allow",
            "pattern",
        ),
    ],
)
def test_first_problem_names_field_and_rule(answers: dict[str, Any], field: str, rule: str) -> None:
    error = refused("tenant", answers)
    assert (error.field, error.rule) == (field, rule)
    assert field in error.message and rule in error.message


def test_look_alike_names_are_refused_before_anything_else() -> None:
    # A Cyrillic letter in a DNS name: the pattern refuses it.
    error = refused("tenant", {**TENANT, "name": "check\u043eut"})
    assert error.field == "name"
    team = refused(
        "team", {"team": "p\u0430yments", "display_name": "P", "cost_center": "c", "owners": ["a"]}
    )
    assert team.field == "team"


@pytest.mark.parametrize("team", ["default", "kube", "kube-system", "kube-anything", "argocd"])
def test_reserved_names(team: str) -> None:
    error = refused(
        "team", {"team": team, "display_name": "T", "cost_center": "c", "owners": ["a"]}
    )
    assert (error.field, error.rule) in {("team", "reserved-name"), ("team", "pattern")}


def test_derived_namespace_is_checked_against_reserved_names() -> None:
    context = ParameterContext(
        teams=frozenset({"cert"}),
        environments=frozenset({"dev"}),
        reserved_namespaces=frozenset({"cert-manager"}),
    )
    error = refused("tenant", {**TENANT, "team": "cert", "name": "manager"}, context)
    assert (error.field, error.rule) == ("namespace", "reserved-name")


def test_oversized_and_non_json_answers() -> None:
    error = refused("tenant", {**TENANT, "description": "x" * 70_000})
    assert error.rule == "max-size"
    error = refused("tenant", {**TENANT, "http_allow": [object()]})
    assert error.rule == "type"


def test_application_and_environment_rules() -> None:
    base = {
        "team": "payments",
        "name": "api",
        "tenant": "checkout",
        "environment": "dev",
        "repo_url": "https://charts.example.org/x",
        "revision": "1.0.0",
    }
    assert (
        validate_answers(parameters("application"), base, context=CONTEXT)["destination_namespace"]
        == "payments-checkout"
    )
    assert refused("application", {**base, "path": "../../etc"}).field == "path"
    assert refused("application", {**base, "repo_url": "http://x.org/a"}).field == "repo_url"
    assert refused("application", {**base, "environment": "staging"}).rule == "environment"
    env = {"environment": "qa", "provider": "aws", "region": "eu-west-1", "tier": "prod"}
    assert validate_answers(parameters("environment"), env, context=CONTEXT)["installed"] is True
    assert refused("environment", {**env, "provider": "gcp"}).rule == "enum"
    assert refused("environment", {**env, "network_cidr": "10.0.0.0/8"}).rule == "pattern"
    assert refused("environment", {**env, "capacity_cpu": "-4"}).rule == "quantity"


def test_form_fields_follow_the_schema() -> None:
    fields = {f.name: f for f in form_fields(parameters("tenant"))}
    assert list(fields)[:3] == ["team", "name", "description"]
    assert fields["team"].ui_field == "TeamPicker" and fields["team"].required
    assert fields["environments"].rule == "environment"
    assert fields["cpu_quota"].rule == "cpu" and fields["cpu_quota"].default == "4"
    assert fields["max_pods"].minimum == 1 and fields["max_pods"].maximum == 1000
    assert fields["name"].pattern and fields["name"].max_length == 32
    assert fields["cpu_quota"].page == "Resources"
    env = {f.name: f for f in form_fields(parameters("environment"))}
    assert env["tier"].enum == ("dev", "staging", "prod")
    # One object schema works as well as a list of pages.
    single = merged_schema(parameters("team")[0])
    assert single["additionalProperties"] is False and "team" in single["properties"]


def test_quota_bounds_come_from_a_setting() -> None:
    assert parse_quota_bounds("cpu=100m..8, memory=1Gi..2Gi") == {
        "cpu": ("100m", "8"),
        "memory": ("1Gi", "2Gi"),
    }
    for bad in ("cpu=8..1", "cpu=1", "cpu=a..b", "=1..2"):
        with pytest.raises(ValueError, match=r"not kind=min\.\.max"):
            parse_quota_bounds(bad)
    context = parameter_context(
        teams=frozenset({"payments"}),
        environments=frozenset({"dev"}),
        quota_bounds="cpu=100m..2",
        reserved_namespaces="legacy, payments-old",
    )
    error = refused("tenant", {**TENANT, "cpu_quota": "3"}, context)
    assert error.rule == "quantity-bounds" and "100m..2" in error.message
    error = refused("tenant", {**TENANT, "name": "old", "cpu_quota": "2"}, context)
    assert (error.field, error.rule) == ("namespace", "reserved-name")
    assert "argocd" in context.reserved_namespaces


def test_deeply_nested_answers_are_refused() -> None:
    nested: object = "x"
    for _ in range(5000):
        nested = [nested]
    error = refused("tenant", {**TENANT, "http_allow": nested})
    assert (error.field, error.rule) == ("answers", "max-depth")
