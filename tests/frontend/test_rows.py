"""Row editors: posted rows become the same answers as the API and the command line send, and
every refused row is named with its cell (no browser; the templates' own schemas)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from frontend.forms import read_form, row_editor, widgets
from frontend.row_checks import row_errors
from frontend.rows import KEY
from portal.errors import ValidationFailed
from scaffolder.parameters import ParameterContext, form_fields, validate_answers

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
CONTEXT = ParameterContext(teams=frozenset({"payments"}),
                           environments=frozenset({"dev", "staging", "prod"}))


def params(name: str) -> list[dict[str, Any]]:
    return list(yaml.safe_load((TEMPLATES / name / "template.yaml").read_text())
                ["spec"]["parameters"])


def form(**fields: str | list[str]) -> dict[str, list[str]]:
    return {k: v if isinstance(v, list) else [v] for k, v in fields.items()}


def test_lists_and_maps_are_row_editors_from_the_schema() -> None:
    kinds = {(t, w.name): (w.kind, w.editor.shape if w.editor else None)
             for t in ("team", "tenant", "application", "environment")
             for w in widgets(form_fields(params(t)), choices={"environment": ["dev"]})}
    assert kinds[("team", "owners")] == ("rows", "list")
    assert kinds[("team", "members")] == ("rows", "list")
    assert kinds[("tenant", "environment_quotas")] == ("rows", "map-records")
    assert kinds[("tenant", "http_allow")] == ("rows", "records")
    assert kinds[("application", "helm_parameters")] == ("rows", "records")
    assert kinds[("environment", "node_groups")] == ("rows", "records")
    # Fixed options stay a checkbox group.
    assert kinds[("tenant", "environments")] == ("checkboxes", None)
    assert kinds[("environment", "addons")] == ("checkboxes", None)
    quotas = next(w for w in widgets(form_fields(params("tenant")))
                  if w.name == "environment_quotas")
    assert quotas.editor is not None
    assert [c.label for c in quotas.editor.columns] == ["Environment", "CPU", "Memory"]


def test_rows_assemble_into_the_api_answers() -> None:
    specs = form_fields(params("tenant"))
    posted = form(**{
        "environment_quotas.__rows": "1",
        "environment_quotas[0][__key]": "prod", "environment_quotas[0][cpu]": " 8 ",
        "environment_quotas[0][memory]": "16Gi",
        "environment_quotas[3][__key]": "staging", "environment_quotas[3][cpu]": "2",
        "environment_quotas[3][memory]": "",
        "environment_quotas[2][__key]": "", "environment_quotas[2][cpu]": "",  # blank row
        "environment_quotas": "{\"ignored\": {}}",  # the advanced JSON, not ticked
        "http_allow.__rows": "1",
        "http_allow[0][from_namespace]": "payments-web", "http_allow[0][port]": "8080",
        "http_allow[0][method]": "GET", "http_allow[0][path]": "/api/v1",
    })
    read = read_form(specs, posted)
    assert read.answers["environment_quotas"] == {"prod": {"cpu": "8", "memory": "16Gi"},
                                                  "staging": {"cpu": "2"}}
    assert list(read.answers["environment_quotas"]) == ["prod", "staging"]  # row order
    assert read.answers["http_allow"] == [{"from_namespace": "payments-web", "port": 8080,
                                           "method": "GET", "path": "/api/v1"}]
    assert read.problems == {}


def test_list_rows_and_nested_list_cells() -> None:
    team = read_form(form_fields(params("team")), form(**{
        "owners.__rows": "1", "owners[0]": "alice", "owners[1]": "", "owners[2]": "bob",
        "members.__rows": "1", "members[0]": ""}))
    assert team.answers["owners"] == ["alice", "bob"]
    assert team.answers["members"] == []  # all rows removed: the empty list, not the default
    env = read_form(form_fields(params("environment")), form(**{
        "node_groups.__rows": "1", "node_groups[0][name]": "general",
        "node_groups[0][instance_types]": "m6i.large, m6i.xlarge",
        "node_groups[0][min]": "1", "node_groups[0][max]": "3", "node_groups[0][desired]": "2"}))
    assert env.answers["node_groups"] == [{"name": "general",
                                           "instance_types": ["m6i.large", "m6i.xlarge"],
                                           "min": 1, "max": 3, "desired": 2}]


def test_advanced_json_replaces_the_rows_when_ticked() -> None:
    read = read_form(form_fields(params("team")), form(**{
        "owners.__rows": "1", "owners[0]": "alice", "owners.__advanced": "1",
        "owners": '["carol", "dave"]'}))
    assert read.answers["owners"] == ["carol", "dave"]


def test_a_repeated_key_or_a_missing_key_is_a_row_problem() -> None:
    read = read_form(form_fields(params("tenant")), form(**{
        "environment_quotas.__rows": "1",
        "environment_quotas[0][__key]": "prod", "environment_quotas[0][cpu]": "8",
        "environment_quotas[1][__key]": "prod", "environment_quotas[1][cpu]": "4",
        "environment_quotas[2][__key]": "", "environment_quotas[2][memory]": "1Gi"}))
    assert read.problems == {"environment_quotas": {1: {KEY: "prod is already in row 1"},
                                                    2: {KEY: "needs a key"}}}


@pytest.mark.parametrize("hostile", ["{{ cookiecutter.x }}", "a: b\nc: d", "../x"])
def test_hostile_cells_are_refused_at_their_row_and_cell(hostile: str) -> None:
    parameters = params("tenant")
    specs = form_fields(parameters)
    posted = form(**{
        "environment_quotas.__rows": "1",
        "environment_quotas[0][__key]": "prod", "environment_quotas[0][cpu]": "2",
        "environment_quotas[5][__key]": "dev", "environment_quotas[5][memory]": hostile,
        "environment_quotas[7][__key]": hostile, "environment_quotas[7][cpu]": "1",
        "http_allow.__rows": "1",
        "http_allow[0][from_namespace]": "web", "http_allow[0][port]": "80",
        "http_allow[0][method]": "GET", "http_allow[0][path]": hostile})
    read = read_form(specs, posted)
    by_name = {s.name: s for s in specs}
    errors: dict[str, dict[int, dict[str, str]]] = {}
    for name in ("environment_quotas", "http_allow"):
        editor = row_editor(by_name[name])
        assert editor is not None
        errors[name] = row_errors(by_name[name].schema, name, editor, read.rows[name], CONTEXT)
    assert set(errors["environment_quotas"]) == {5, 7}  # row 0 is fine
    assert set(errors["environment_quotas"][5]) == {"memory"}
    assert set(errors["environment_quotas"][7]) == {KEY}
    assert set(errors["http_allow"][0]) == {"path"}
    for message in (errors["environment_quotas"][5]["memory"], errors["http_allow"][0]["path"]):
        assert hostile not in message  # never echoed back
    # And the whole answer is refused by the server, naming the field.
    with pytest.raises(ValidationFailed) as refused:
        validate_answers(parameters, {**read.answers, "team": "payments", "name": "web",
                                      "cost_center": "cc-1", "environments": ["dev"]},
                         context=CONTEXT)
    assert refused.value.field in ("environment_quotas", "http_allow")


def test_list_row_errors_name_the_row() -> None:
    specs = form_fields(params("team"))
    read = read_form(specs, form(**{"owners.__rows": "1", "owners[0]": "alice",
                                    "owners[4]": "Bad Name", "owners[6]": "{{ x }}"}))
    spec = next(s for s in specs if s.name == "owners")
    editor = row_editor(spec)
    assert editor is not None
    errors = row_errors(spec.schema, "owners", editor, read.rows["owners"], CONTEXT)
    assert set(errors) == {4, 6}
    assert "lowercase" in errors[4][""] or "letters" in errors[4][""]
    assert "template marker" in errors[6][""]
