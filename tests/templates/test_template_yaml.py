"""Each template.yaml is a Backstage v1beta3 Template that matches its cookiecutter.json."""

from __future__ import annotations

import json
import re

import jsonschema
import pytest
from ruamel.yaml import YAML

from scaffolder.parameters import derived_values, merged_schema
from tests.templates.support import NAMES, TEMPLATES

REF = re.compile(r"\$\{\{\s*parameters\.([a-z_]+)\s*\}\}")
# A parameter used anywhere in a step value (``${{ parameters.x | join(",") }}``, loops).
USES = re.compile(r"parameters\.([a-z_]+)")
TARGETS = {
    "team": "teams/${{ parameters.team }}",
    "tenant": "tenants/${{ parameters.team }}/${{ parameters.team }}-${{ parameters.name }}",
    "application": "applications/${{ parameters.team }}/${{ parameters.name }}",
    "environment": "envs/${{ parameters.environment }}",
}


@pytest.mark.parametrize("name", NAMES)
def test_backstage_template_shape(name: str) -> None:
    doc = YAML(typ="safe").load((TEMPLATES / name / "template.yaml").read_text())
    assert doc["apiVersion"] == "scaffolder.backstage.io/v1beta3"
    assert doc["kind"] == "Template" and doc["metadata"]["name"] == name
    assert doc["spec"]["owner"] and doc["spec"]["type"]
    pages = doc["spec"]["parameters"]
    schema = merged_schema(pages)
    jsonschema.Draft202012Validator.check_schema(schema)
    for prop in schema["properties"].values():
        assert prop.get("title") or prop.get("description") or prop.get("type") == "object"
    steps = {step["action"]: step["input"] for step in doc["spec"]["steps"] if "each" not in step}
    fetch = steps["fetch:template"]
    (folder,) = [p.name for p in (TEMPLATES / name).iterdir() if p.name.startswith("{{")]
    # The project folder itself: its content lands at the workspace root, as in the portal.
    assert fetch["url"] == f"./{folder}" and fetch["cookiecutterCompat"] is True
    publish = steps["publish:github:pull-request"]
    assert publish["targetPath"] == TARGETS[name]

    variables = json.loads((TEMPLATES / name / "cookiecutter.json").read_text())
    # Every public cookiecutter variable is fed from the form, and every form field reaches
    # the render.
    assert set(fetch["values"]) == {v for v in variables if not v.startswith("_")}
    fed = {
        USES.findall(str(v))[0]
        for k, v in fetch["values"].items()
        if k not in derived_values(pages)
    }
    assert fed == set(schema["properties"])
    for key in derived_values(pages):
        assert set(USES.findall(fetch["values"][key])) <= set(schema["properties"])
    # Paths use only DNS-1123-validated fields.
    for field in REF.findall(publish["targetPath"]):
        prop = schema["properties"][field]
        assert (prop.get("x-caas-rule") in {"dns-label", "namespace", "new-team"}
                or prop.get("ui:field"))


@pytest.mark.parametrize("name", NAMES)
def test_single_output_folder_named_by_a_validated_variable(name: str) -> None:
    (folder,) = [p for p in (TEMPLATES / name).iterdir() if p.name.startswith("{{")]
    variable = folder.name.removeprefix("{{cookiecutter.").removesuffix("}}")
    doc = YAML(typ="safe").load((TEMPLATES / name / "template.yaml").read_text())
    pages = doc["spec"]["parameters"]
    prop = merged_schema(pages)["properties"].get(variable) or derived_values(pages)[variable]
    assert prop.get("x-caas-rule") in {"dns-label", "namespace", "new-team"}


@pytest.mark.parametrize("name", NAMES)
def test_cookiecutter_defaults_mean_the_form_defaults(name: str) -> None:
    """``cookiecutter --no-input`` renders what the portal renders from the form's defaults:
    each cookiecutter.json default is the string form of the schema default (``owners:
    "alice"`` for ``[alice]``), through the same step values Backstage uses."""
    from scaffolder.registry import load_template
    from scaffolder.render import cookiecutter_values

    doc = YAML(typ="safe").load((TEMPLATES / name / "template.yaml").read_text())
    schema = merged_schema(doc["spec"]["parameters"])
    variables = json.loads((TEMPLATES / name / "cookiecutter.json").read_text())
    first = {k: (v[0] if isinstance(v, list) else v) for k, v in variables.items()}
    answers = {k: p["default"] if "default" in p else first[k]
               for k, p in schema["properties"].items()}
    # A list without a schema default (owners) is given as its cookiecutter.json string form.
    for key, prop in schema["properties"].items():
        if "default" not in prop and prop.get("type") == "array":
            answers[key] = first[key].split(",")
    values = cookiecutter_values(load_template(TEMPLATES / name, trusted=True), answers)
    for key in schema["properties"]:
        assert str(values[key]) == str(first[key]), key
