"""Render a template with validated answers: cookiecutter's ``generate_files`` into a temporary
directory of a render worker process (``scaffolder.render_pool``: the server's working directory
never moves), then placed at the template's ``targetPath`` with a ``.caas-answers.yaml``.

Form values are data. ``cookiecutter()`` would pass every value through Jinja
(``prompt_for_config`` → ``render_variable``), so a submitted ``{{ ... }}`` would run; here the
context is what ``template.yaml``'s fetch:template step hands Backstage (``cookiecutter_values``),
and the answers reach it only as data.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from jinja2 import Template as JinjaTemplate
from jinja2 import Undefined
from jinja2.sandbox import SandboxedEnvironment

from gitops import bootstrap, yaml
from gitops.paths import UnsafePath, check_path
from portal.errors import ValidationFailed
from scaffolder import render_pool
from scaffolder.registry import Registry, Template

ANSWERS_FILE = ".caas-answers.yaml"
# template.yaml step inputs: ``${{ }}`` expressions; a missing key renders empty, as in Backstage.
_STEP_ENV = SandboxedEnvironment(variable_start_string="${{", variable_end_string="}}",
                                 keep_trailing_newline=True)
_SINGLE = re.compile(r"\$\{\{(.*)\}\}", re.DOTALL)


def cookiecutter_values(template: Template, answers: Mapping[str, Any]) -> dict[str, Any]:
    """The cookiecutter context, computed exactly as Backstage computes the main
    ``fetch:template`` step's ``values``: each ``${{ }}`` expression of ``template.yaml``
    evaluated with the validated answers as ``parameters`` (a lone ``${{ expr }}`` keeps its
    type, as Backstage's ``renderValue`` does; anything else is text). Lists and maps become
    their string forms there (``owners: "alice,bob"``), the same strings the plain cookiecutter
    CLI takes. Private cookiecutter.json keys (``_overlay``, ``_copy_without_render``) are kept.

    Shape: ``{variable: str | int | bool}``. Source of the rule: Backstage's
    NunjucksWorkflowRunner renders step inputs with ``renderValue(value, {coercion: 'json'})``.
    """
    context: dict[str, Any] = {key: value for key, value in template.defaults.items()
                               if key.startswith("_") and not key.startswith("__")}
    parameters = dict(answers)
    for key, expression in template.fetch_values.items():
        single = _SINGLE.fullmatch(expression)
        value: Any
        if single and "}}" not in single.group(1) and "${{" not in single.group(1):
            value = _expression(single.group(1).strip())(parameters=parameters)
            if isinstance(value, Undefined):
                value = ""
        else:
            value = _step_template(expression).render(parameters=parameters)
        context[key] = value
    return context


@lru_cache(maxsize=1024)
def _expression(source: str) -> Any:
    """A compiled ``${{ expr }}`` (the sources are the templates' step values: few, reused)."""
    return _STEP_ENV.compile_expression(source, undefined_to_none=False)


@lru_cache(maxsize=1024)
def _step_template(source: str) -> JinjaTemplate:
    return _STEP_ENV.from_string(source)


def replay_document(template: Template, answers: Mapping[str, Any]) -> dict[str, Any]:
    """A cookiecutter replay file (``cookiecutter --replay-file``) that renders the unit whose
    ``.caas-answers.yaml`` holds ``answers``: ``{"cookiecutter": <cookiecutter_values>}``."""
    return {"cookiecutter": cookiecutter_values(template, answers)}


def answers_document(template: Template, answers: Mapping[str, Any]) -> bytes:
    doc = {"template": template.name, "version": template.version, "answers": dict(answers)}
    return yaml.dump(doc).encode()


def render(template: Template, answers: Mapping[str, Any], *, target: str,
           repo_url: str | None = None) -> dict[str, bytes]:
    """Every file the unit consists of, keyed by its path in the GitOps repository. ``repo_url``
    (the platform's GitOps repository: ``gitops.bootstrap.repo_url_on`` of main) replaces the
    skeleton's placeholder URL wherever the template names the repository
    (``gitops.bootstrap.fill_repo_url``); None leaves the placeholder."""
    try:
        check_path(target)
    except UnsafePath:
        raise ValidationFailed(f"targetPath {target!r} is not a safe relative path",
                               field="answers", rule="safe-path") from None
    context = {"cookiecutter": cookiecutter_values(template, answers)}
    files: dict[str, bytes] = {}
    try:
        rendered = render_pool.render_files(template.path, context, hooks=template.trusted)
    except render_pool.RenderError as exc:
        raise ValidationFailed(f"template {template.name} does not render with these "
                               f"answers: {exc}", field="answers", rule="render") from None
    for rel, content in rendered:
        full = f"{target}/{rel}"
        try:
            check_path(full)
        except UnsafePath:
            raise ValidationFailed(f"a rendered path is unsafe: {full!r}", field="answers",
                                   rule="safe-path") from None
        files[full] = content
    document = answers_document(template, answers)
    placed = [p for p in files if p.rsplit("/", 1)[-1] == ANSWERS_FILE]
    for path in placed or [f"{target}/{ANSWERS_FILE}"]:
        files[path] = document
    return bootstrap.fill_repo_url(files, repo_url)


def read_template_name(content: bytes | None) -> str | None:
    """The template name a unit's ``.caas-answers.yaml`` was rendered from (None if unknown)."""
    try:
        doc = yaml.load(content) if content is not None else None
    except yaml.YamlError:
        return None
    name = doc.get("template") if isinstance(doc, dict) else None
    return name if isinstance(name, str) and name else None


def replay_for_unit(*, registry: Registry,
                    content: bytes) -> tuple[Template, dict[str, Any], str]:
    """A unit's ``.caas-answers.yaml`` (bytes) → its template, the cookiecutter replay document
    (``replay_document``) and the template version the unit was rendered with. The replay
    renders with the template as it is now (``template.version``).

    Errors: ``ValidationFailed`` (field ``answers_file``) when the file holds no answers,
    ``NotFound`` when it names no known template.
    """
    answers, name = read_answers(content), read_template_name(content)
    if answers is None or name is None:
        raise ValidationFailed("answers_file: not a .caas-answers.yaml (template, version, "
                               "answers)", field="answers_file", rule="answers-file")
    template = registry.get(name, field_name="answers_file")
    doc = yaml.load(content)
    version = doc.get("version") if isinstance(doc, dict) else ""
    return template, replay_document(template, answers), str(version or "")


def parse_answers_file(content: bytes | None) -> tuple[str, str, dict[str, Any]] | None:
    """(template name, version, answers) of a ``.caas-answers.yaml`` parsed once (an upgrade
    reads thousands); None when absent, unreadable or missing the template or the answers."""
    try:
        doc = yaml.load(content) if content is not None else None
    except yaml.YamlError:
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("answers"), dict):
        return None
    name = doc.get("template")
    if not isinstance(name, str) or not name:
        return None
    return name, str(doc.get("version") or ""), doc["answers"]


def read_answers(content: bytes | None) -> dict[str, Any] | None:
    """The answers stored in a unit's ``.caas-answers.yaml`` (None when absent or unreadable)."""
    if content is None:
        return None
    try:
        doc = yaml.load(content)
    except yaml.YamlError:
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("answers"), dict):
        return None
    answers: dict[str, Any] = doc["answers"]
    return answers
