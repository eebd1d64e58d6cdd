"""Render a template with validated answers: cookiecutter's ``generate_files`` into a temporary
directory, then placed at the template's ``targetPath`` with a ``.caas-answers.yaml``.

Form values are data. ``cookiecutter()`` would pass every value through Jinja
(``prompt_for_config`` → ``render_variable``), so a submitted ``{{ ... }}`` would run; here the
answers go into the context as they are and only the template's own defaults (trusted code in
``cookiecutter.json``) are rendered.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cookiecutter.environment import StrictEnvironment
from cookiecutter.exceptions import CookiecutterException
from cookiecutter.generate import generate_files
from cookiecutter.prompt import render_variable
from jinja2 import TemplateError

from gitops import yaml
from gitops.paths import UnsafePath, check_path
from portal.errors import ValidationFailed
from scaffolder.registry import Template

ANSWERS_FILE = ".caas-answers.yaml"
# cookiecutter changes the process's working directory while it generates (and for hooks):
# one render at a time per process, or concurrent requests would write into each other.
_RENDER_LOCK = threading.Lock()


def build_context(template: Template, answers: Mapping[str, Any]) -> dict[str, Any]:
    """The ``cookiecutter`` context: answers verbatim, unanswered defaults rendered."""
    env = StrictEnvironment(context={"cookiecutter": dict(template.defaults)})
    # Answers first, so derived defaults ("{{ cookiecutter.team }}-...") see them as data.
    context: dict[str, Any] = dict(answers)
    for key, raw in template.defaults.items():
        if key in answers:
            continue
        if key.startswith("_") and not key.startswith("__"):
            context[key] = raw
        elif isinstance(raw, list):  # a cookiecutter choice: --no-input takes the first
            context[key] = render_variable(env, raw[0], context) if raw else ""
        else:
            context[key] = render_variable(env, raw, context)
    return context


def answers_document(template: Template, answers: Mapping[str, Any]) -> bytes:
    doc = {"template": template.name, "version": template.version, "answers": dict(answers)}
    return yaml.dump(doc).encode()


def render(template: Template, answers: Mapping[str, Any], *, target: str) -> dict[str, bytes]:
    """Every file the unit consists of, keyed by its path in the GitOps repository."""
    try:
        check_path(target)
    except UnsafePath:
        raise ValidationFailed(f"targetPath {target!r} is not a safe relative path",
                               field="answers", rule="safe-path") from None
    context = {"cookiecutter": build_context(template, answers)}
    files: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory(prefix="caas-render-") as tmp:
        try:
            with _RENDER_LOCK:
                project = Path(generate_files(repo_dir=str(template.path), context=context,
                                              output_dir=tmp, accept_hooks=template.trusted))
        except (CookiecutterException, TemplateError, OSError) as exc:
            raise ValidationFailed(f"template {template.name} does not render with these "
                                   f"answers: {exc}", field="answers", rule="render") from exc
        root = Path(tmp).resolve()
        if root not in project.resolve().parents:
            raise ValidationFailed("the rendered project left the output directory",
                                   field="answers", rule="safe-path")
        for item in sorted(project.rglob("*")):
            if item.is_symlink() or not item.is_file():
                continue
            rel = item.relative_to(project).as_posix()
            full = f"{target}/{rel}"
            try:
                check_path(full)
            except UnsafePath:
                raise ValidationFailed(f"a rendered path is unsafe: {full!r}", field="answers",
                                       rule="safe-path") from None
            files[full] = item.read_bytes()
    document = answers_document(template, answers)
    placed = [p for p in files if p.rsplit("/", 1)[-1] == ANSWERS_FILE]
    for path in placed or [f"{target}/{ANSWERS_FILE}"]:
        files[path] = document
    return files


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
