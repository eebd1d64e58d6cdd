"""Free text round-trips: every string a free-text field accepts is rendered by the portal's
renderer into files that parse back (PyYAML and ruamel, YAML 1.1 and 1.2) to exactly that
string, in every file that carries it. Hypothesis draws from the whole Unicode range the field
allows (everything but control, surrogate, private-use, unassigned and invisible formatting
characters) mixed with the pieces YAML gives meaning to."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from portal.errors import ValidationFailed
from portal.settings import Settings
from scaffolder.parameters import ParameterContext, validate_answers
from scaffolder.registry import Registry
from scaffolder.render import render
from tests.templates.support import TYPICAL

CONTEXT = ParameterContext(teams=frozenset({"payments"}), environments=frozenset({"dev"}))
PIECES = ['"', "'", "\\", ": #", " #", "- ", "-", "*", "&", "!", "%", "@", "`", "|", ">",
          "?", "[", "]", "{", "}", ",", "~", "null", "true", "0755", "1e3", "2026-01-01",
          "\\u00e9", "\\n", "🚀", "👩\u200d💻", "שלום", "مرحبا", "e\u0301", "\u00a0", " ",
          "\U0001d518\U0001d52b\U0001d526"]
ALLOWED = st.characters(exclude_categories=("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"),
                        include_characters="\u200c\u200d")
MARKERS = ("{{", "{%", "{#", "${{")


def _text(max_size: int) -> st.SearchStrategy[str]:
    return st.lists(st.one_of(ALLOWED, st.sampled_from(PIECES)), max_size=max_size // 8).map(
        "".join).filter(lambda s: len(s) <= max_size and not any(m in s for m in MARKERS))


NOT_EMAIL_PART = re.compile(r"[@\s]")
_PART = _text(40).filter(lambda s: s != "" and not NOT_EMAIL_PART.search(s))
EMAILS = st.builds(lambda a, b, c: f"{a}@{b}.{c}", _PART, _PART, _PART).filter(
    lambda s: len(s) <= 254)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    return Registry(Settings(data_dir=tmp_path_factory.mktemp("data")))


def _loaders() -> list[Callable[[str], list[Any]]]:
    ruamel = YAML(typ="safe", pure=True)
    return [lambda text: list(yaml.safe_load_all(text)),
            lambda text: list(ruamel.load_all(text))]


def _read(files: dict[str, bytes], path: str) -> list[dict[str, Any]]:
    text = files[path].decode("utf-8")
    parsed = [loader(text) for loader in _loaders()]
    assert parsed[0] == parsed[1], path
    return [d for d in parsed[0] if d is not None]


def _render(registry: Registry, name: str, answers: dict[str, Any], target: str
            ) -> dict[str, bytes]:
    template = registry.get(name)
    clean = validate_answers(template.parameters, answers, context=CONTEXT)
    files = render(template, clean, target=target)
    stored = _read(files, f"{target}/.caas-answers.yaml")[0]["answers"]
    assert stored == clean  # the answers file round-trips as a whole
    return {p.removeprefix(target + "/"): c for p, c in files.items()}


SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow, HealthCheck.filter_too_much])


@SETTINGS
@given(value=_text(100))
def test_team_display_name(registry: Registry, value: str) -> None:
    files = _render(registry, "team", {**TYPICAL["team"], "display_name": value}, "teams/payments")
    team = _read(files, "team.yaml")[0]
    group = _read(files, "catalog-info.yaml")[0]
    assert team["spec"]["displayName"] == value
    assert group["metadata"]["title"] == value == group["spec"]["profile"]["displayName"]


@SETTINGS
@given(value=_text(500))
def test_team_description(registry: Registry, value: str) -> None:
    files = _render(registry, "team", {**TYPICAL["team"], "description": value},
                    "teams/payments")
    assert _read(files, "team.yaml")[0]["spec"]["description"] == value
    assert _read(files, "catalog-info.yaml")[0]["metadata"]["description"] == value


@SETTINGS
@given(value=EMAILS)
def test_team_email(registry: Registry, value: str) -> None:
    files = _render(registry, "team", {**TYPICAL["team"], "email": value}, "teams/payments")
    assert _read(files, "team.yaml")[0]["spec"]["email"] == value
    assert _read(files, "catalog-info.yaml")[0]["spec"]["profile"]["email"] == value


@SETTINGS
@given(value=_text(500))
def test_tenant_description(registry: Registry, value: str) -> None:
    answers = {**TYPICAL["tenant"], "description": value, "environments": ["dev"],
               "environment_quotas": {}}
    files = _render(registry, "tenant", answers, "tenants/payments/payments-checkout")
    assert _read(files, "base/catalog-info.yaml")[0]["metadata"]["description"] == value
    namespace = _read(files, "base/namespace.yaml")[0]
    assert namespace["metadata"]["annotations"]["caas.io/description"] == value


@SETTINGS
@given(value=_text(500))
def test_application_description(registry: Registry, value: str) -> None:
    files = _render(registry, "application", {**TYPICAL["application"], "description": value},
                    "applications/payments/checkout-api")
    app = _read(files, "envs/dev/application.yaml")[0]
    assert app["metadata"]["annotations"]["caas.io/description"] == value


@SETTINGS
@given(value=_text(500))
def test_application_helm_parameter_value(registry: Registry, value: str) -> None:
    answers = {**TYPICAL["application"],
               "helm_parameters": [{"name": "image.tag", "value": value}]}
    files = _render(registry, "application", answers, "applications/payments/checkout-api")
    app = _read(files, "envs/dev/application.yaml")[0]
    assert app["spec"]["source"]["helm"]["parameters"] == [
        {"name": "image.tag", "value": value, "forceString": True}]


@pytest.mark.parametrize("bad", ["\ud83d", "a\udc00b", "\x00", "tab\there", "\x1b[31m",
                                 "\x7f", "\x85", "\x9f", "\u2028", "\ufeff", "\ue000"])
@pytest.mark.parametrize(("template", "field"), [
    ("team", "display_name"), ("team", "description"), ("tenant", "description"),
    ("application", "description")])
def test_refused_characters_name_the_field(registry: Registry, bad: str, template: str,
                                           field: str) -> None:
    answers = {**TYPICAL[template], field: f"Rocket {bad}"}
    with pytest.raises(ValidationFailed) as raised:
        validate_answers(registry.get(template).parameters, answers, context=CONTEXT)
    assert raised.value.field == field
    assert raised.value.rule == "no-control-characters"
