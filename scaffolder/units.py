"""A unit on main as its template's form sees it: the template and version its
``.caas-answers.yaml`` names, the stored answers of the form's fields and the fields that
identify it (``Template.identity_fields``). The "Change" form and ``GET /api/scaffolder/units``
start from here; the change itself is an ``update`` request (``changeset.prepare``)."""

from __future__ import annotations

from gitops import yaml
from gitops.forges.base import Forge
from gitops.paths import is_safe
from portal.errors import NotFound, ValidationFailed
from scaffolder.changeset import stored_answers
from scaffolder.models import UnitAnswers
from scaffolder.parameters import form_fields
from scaffolder.registry import Registry
from scaffolder.render import ANSWERS_FILE, read_template_name

MAX_UNIT_CHARS = 300


def unit_answers(*, forge: Forge, registry: Registry, unit: str) -> UnitAnswers:
    """The unit at ``unit`` (a folder such as ``tenants/payments/payments-web``).

    Errors: ``ValidationFailed`` (field ``unit``) for an unsafe path; ``NotFound`` when no
    ``.caas-answers.yaml`` is there or its template is not in the registry.
    """
    unit = unit.strip().strip("/")
    if len(unit) > MAX_UNIT_CHARS or not is_safe(unit):
        raise ValidationFailed(f"unit: {unit[:80]!r} is not a safe repository folder",
                               field="unit", rule="safe-path")
    content = forge.read_file(f"{unit}/{ANSWERS_FILE}")
    answers = stored_answers(forge, unit) if content is not None else None
    name = read_template_name(content)
    if answers is None or name is None:
        raise NotFound(f"unit: no unit with a {ANSWERS_FILE} at {unit!r} on main", field="unit",
                       rule="unit-exists")
    template = registry.get(name, field_name="unit")
    fields = {f.name for f in form_fields(template.parameters)}
    loaded = yaml.load(content) if content else None
    version = loaded.get("version") if isinstance(loaded, dict) else ""
    return UnitAnswers(unit=unit, template=template.name, version=str(version or ""),
                       answers={k: v for k, v in answers.items() if k in fields},
                       fixed=sorted(template.identity_fields & fields))
