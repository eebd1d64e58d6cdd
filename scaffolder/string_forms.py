"""Lists and maps from their ONE string form (``templates/README.md``): the inverse of the
``fetch:template`` step value that writes them for cookiecutter.

A template writes each list or map into the cookiecutter context with one of two expressions,
and the plain cookiecutter CLI takes the same strings (``owners=alice,bob``); ``caas scaffold
--set`` takes them too, so the command line, the API (JSON) and the form (rows) all give the
same answers:

- ``${{ parameters.X | join(",") }}``: a list of scalars, ``alice,bob``;
- ``{% for r in parameters.X %}${{ r.a }}:${{ r.b | join("+") }}{% if not loop.last %},{% endif
  %}{% endfor %}``: a list of objects, one row per separator, cells in the body's order with its
  literal separators (the last cell takes the rest of the row, so ``name=value`` keeps a ``=``
  in the value), a ``join`` cell a list;
- ``{% for k, v in parameters.X | dictsort %}${{ k }}:${{ v.a }}…``: a map, ``prod:8:16Gi``.

An empty cell is left out of its object (``staging:2:`` is ``{"cpu": "2"}``), a cell of an
``integer`` property that is all digits becomes an int; the server validator judges the rest.
``parse(expression, text, schema)`` returns None when the expression is not one of these forms;
a map key in two rows raises ``DuplicateKey``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_JOIN = re.compile(r"^\$\{\{\s*parameters\.(\w+)\s*\|\s*join\((['\"])(.*?)\2\)\s*\}\}$", re.S)
_LOOP = re.compile(
    r"^\{%-?\s*for\s+(\w+)(?:\s*,\s*(\w+))?\s+in\s+parameters\.(\w+)(\s*\|\s*dictsort)?\s*-?%\}"
    r"(.*?)\{%-?\s*if\s+not\s+loop\.last\s*-?%\}(.*?)\{%-?\s*endif\s*-?%\}"
    r"\{%-?\s*endfor\s*-?%\}$", re.S)
_CELL = re.compile(r"\$\{\{\s*(\w+)(?:\.(\w+))?\s*(?:\|\s*join\((['\"])(.*?)\3\)\s*)?\}\}")


class DuplicateKey(ValueError):
    """A map's string form names one key in two rows (which one was meant is unknown)."""


@dataclass(frozen=True)
class _Cell:
    var: str
    prop: str | None
    join: str | None
    after: str  # the literal text up to the next cell ("" for the last)


def _cells(body: str) -> list[_Cell] | None:
    found = list(_CELL.finditer(body))
    if not found or found[0].start() != 0:
        return None
    cells: list[_Cell] = []
    for i, match in enumerate(found):
        end = found[i + 1].start() if i + 1 < len(found) else len(body)
        after = body[match.end():end]
        if (i + 1 < len(found) and not after) or (i + 1 == len(found) and after):
            return None  # two cells without a separator, or trailing text: not splittable
        cells.append(_Cell(match.group(1), match.group(2), match.group(4), after))
    return cells


def _value(text: str, schema: Mapping[str, Any], join: str | None) -> object:
    if join is not None:
        return [part for part in text.split(join) if part]
    if schema.get("type") == "integer" and text.isdigit():
        return int(text)
    return text


def _row(text: str, cells: list[_Cell]) -> list[str]:
    parts: list[str] = []
    rest = text
    for cell in cells:
        if cell.after:
            head, sep, rest = rest.partition(cell.after)
            parts.append(head)
            if not sep:
                rest = ""
        else:
            parts.append(rest)
    return parts


def parse(expression: str, text: str, schema: Mapping[str, Any]) -> object | None:
    """The answer ``text`` spells in the string form ``expression`` writes (see module doc)."""
    joined = _JOIN.match(expression.strip())
    if joined:
        items = schema.get("items") if isinstance(schema.get("items"), Mapping) else {}
        return [_value(p, items or {}, None) for p in text.split(joined.group(3)) if p]
    loop = _LOOP.match(expression.strip())
    if loop is None:
        return None
    item_var, value_var, _, dictsort, body, separator = loop.groups()
    cells = _cells(body)
    if cells is None or not separator:
        return None
    rows = [r for r in text.split(separator) if r] if text else []
    if dictsort:
        values = schema.get("additionalProperties")
        props = values.get("properties", {}) if isinstance(values, Mapping) else {}
        result: dict[str, object] = {}
        for number, row in enumerate(rows, start=1):
            key = ""
            item: dict[str, object] = {}
            for cell, part in zip(cells, _row(row, cells), strict=True):
                if cell.var == item_var and cell.prop is None:
                    key = part
                elif cell.var == value_var and cell.prop and part:
                    item[cell.prop] = _value(part, props.get(cell.prop, {}), cell.join)
            if key in result:
                raise DuplicateKey(f"key {key!r} is given twice (row {number})")
            result[key] = item
        return result
    items = schema.get("items")
    props = items.get("properties", {}) if isinstance(items, Mapping) else {}
    records: list[object] = []
    for row in rows:
        record: dict[str, object] = {}
        for cell, part in zip(cells, _row(row, cells), strict=True):
            if cell.var == item_var and cell.prop and part:
                record[cell.prop] = _value(part, props.get(cell.prop, {}), cell.join)
        records.append(record)
    return records
