"""The registry refuses, at load time, a template written outside the subset Jinja2 and
Backstage's renderer agree on, naming the file and the line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from portal.errors import ConfigError
from scaffolder.registry import load_template
from scaffolder.template_subset import SubsetError, check_text
from tests.templates.support import NAMES, TEMPLATES

OUTSIDE = {
    "{{ cookiecutter.description | tojson }}": "the filter 'tojson'",
    "{{ cookiecutter.owners | unique | list }}": "the filter 'unique'",
    "{{ cookiecutter.namespace[:40] }}": "a slice",
    '{{ {"a": cookiecutter.team} }}': "a dict literal",
    "{{ cookiecutter.owners + cookiecutter.members }}": "arithmetic '+'",
    "{{ cookiecutter.owners[-1] }}": "arithmetic '-'",
    "{% for x in cookiecutter.owners if x %}{{ x }}{% endfor %}": "a loop with 'if'",
    '{% include "other.yaml" %}': "the tag 'include'",
    "{% macro q(s) %}{{ s }}{% endmacro %}": "the tag 'macro'",
    "{% raw %}{{ x }}{% endraw %}": "the raw tag",
    "{{ cookiecutter.environment_quotas.items() }}": "the method .items(…)",
    "{{ range(3) }}": "the call range(…)",
    "{{ cookiecutter.email is defined }}": "a test ('is')",
    "{{ None }}": "the constant 'None' (write true/false)",
    "{{ loop.cycle }}": "loop.cycle",
    "{{ cookiecutter.x | dump }}": "the filter 'dump'",
}


@pytest.mark.parametrize("text", sorted(OUTSIDE))
def test_constructs_outside_the_subset_are_named(text: str) -> None:
    with pytest.raises(SubsetError) as caught:
        check_text(f"a: 1\nb: {text}\n")
    assert caught.value.line == 2 and caught.value.what == OUTSIDE[text]


def test_the_subset_idioms_pass() -> None:
    check_text(
        '{%- set owners = cookiecutter.owners.split(",") if cookiecutter.owners else [] %}\n'
        "{%- for o in owners %}{{ loop.index }}{% if o not in owners %}x{% endif %}"
        '{{ o | replace("\'", "\'\'") | truncate(40, true, "", 0) }}{% endfor %}\n'
        "{% if cookiecutter.a == \"b\" and not cookiecutter.c %}true{% else %}false{% endif %}\n"
    )
    check_text('{% for k, v in parameters.m | dictsort %}${{ k }}{% endfor %}'
               '${{ parameters.owners | join(",") }}', step=True)


@pytest.mark.parametrize("name", NAMES)
def test_the_shipped_templates_load(name: str) -> None:
    assert load_template(TEMPLATES / name, trusted=True).fetch_values


def test_registry_refuses_a_template_naming_file_and_line(tmp_path: Path) -> None:
    copy = tmp_path / "tenant"
    shutil.copytree(TEMPLATES / "tenant", copy)
    target = copy / "{{cookiecutter.namespace}}" / "base" / "namespace.yaml"
    lines = target.read_text().splitlines()
    lines.insert(3, "  uid: {{ cookiecutter.namespace | tojson }}")
    target.write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigError) as caught:
        load_template(copy, trusted=False)
    message = str(caught.value)
    assert "{{cookiecutter.namespace}}/base/namespace.yaml:4" in message
    assert "tojson" in message


def test_registry_refuses_a_step_value_outside_the_subset(tmp_path: Path) -> None:
    copy = tmp_path / "team"
    shutil.copytree(TEMPLATES / "team", copy)
    manifest = copy / "template.yaml"
    text = manifest.read_text()
    manifest.write_text(text.replace('${{ parameters.owners | join(\\",\\") }}',
                                     "${{ parameters.owners | tojson }}"))
    with pytest.raises(ConfigError) as caught:
        load_template(copy, trusted=False)
    assert "value owners" in str(caught.value) and "tojson" in str(caught.value)


def test_registry_refuses_a_nested_fetch_url(tmp_path: Path) -> None:
    copy = tmp_path / "team"
    shutil.copytree(TEMPLATES / "team", copy)
    manifest = copy / "template.yaml"
    manifest.write_text(manifest.read_text().replace('url: "./{{cookiecutter.team}}"',
                                                     "url: ./"))
    with pytest.raises(ConfigError) as caught:
        load_template(copy, trusted=False)
    assert "./{{cookiecutter.team}}" in str(caught.value)
