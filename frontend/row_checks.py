"""Which row and cell of a row editor a server-side validation error belongs to.

The server validator (``scaffolder.parameters.validate_answers``) judges a whole answer and
names the first problem of a field. A row editor needs every bad row at once, pointing at the
cell: ``row_errors`` validates each assembled item alone, through the same validator, against
the field's schema minus the rules about the whole collection (``minItems``, ``maxItems``,
``uniqueItems``, ``minProperties``, ``maxProperties``: those stay the field's own error), and
reads the cell from the path the message starts with (``http_allow.0.port: …``,
``environment_quotas.prod.cpu: …``, ``labels key x: …``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from frontend.rows import KEY, VALUE, Assembled, RowEditor
from portal.errors import ValidationFailed
from scaffolder.checks.answer_rules import check_strings
from scaffolder.parameters import ParameterContext, validate_answers

WHOLE_COLLECTION = ("minItems", "maxItems", "uniqueItems", "minProperties", "maxProperties",
                    "default")
_REQUIRED = re.compile(r"'([A-Za-z0-9_]+)' is a required property")


def _item_schema(prop: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in prop.items() if k not in WHOLE_COLLECTION}


def _split(message: str) -> tuple[str, str]:
    where, sep, text = message.partition(": ")
    return (where, text) if sep else ("", message)


def _column(editor: RowEditor, name: str, key: str, message: str,
            context: ParameterContext) -> str:
    where, text = _split(message)
    columns = [c.name for c in editor.columns]
    required = _REQUIRED.search(text)
    if required and required.group(1) in columns:
        return required.group(1)
    if editor.shape == "list":
        return ""
    if editor.shape in ("map", "map-records"):
        if where in (name, f"{name} key {key}") or where.startswith(f"{name} key "):
            return KEY
        if editor.shape == "map":
            try:  # the key and the value share the path ``name.key``: test the key alone
                check_strings(name, key, {}, context)
            except ValidationFailed:
                return KEY
            return VALUE
    tail = re.split(r"[.\[\]]+", where)
    for part in reversed(tail):
        if part in columns:
            return part
    return KEY if editor.shape == "map-records" else columns[0]


def row_errors(prop: Mapping[str, Any], name: str, editor: RowEditor, assembled: Assembled,
               context: ParameterContext) -> dict[int, dict[str, str]]:
    """``{posted row index: {column: message}}`` for every row the validator refuses."""
    errors: dict[int, dict[str, str]] = {
        index: dict(cells) for index, cells in assembled.problems.items()}
    schema = [{"properties": {name: _item_schema(prop)}}]
    value = assembled.value
    for where, index in assembled.origin.items():
        if isinstance(value, list) and isinstance(where, int):
            one: object = [value[where]]
        elif isinstance(value, Mapping):
            one = {where: value[where]}
        else:
            continue
        try:
            validate_answers(schema, {name: one}, context=context)
        except ValidationFailed as exc:
            column = _column(editor, name, str(where), exc.message, context)
            errors.setdefault(index, {})[column] = _split(exc.message)[1]
    return errors
