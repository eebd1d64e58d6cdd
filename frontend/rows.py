"""Row editors: list and map answers as rows of cells instead of JSON text.

A template parameter of type ``array`` or ``object`` becomes a row editor when its schema has a
shape a table can hold (``editor_for``):

- ``list``: an array of scalars (``owners``): one column;
- ``records``: an array of objects with scalar properties (``http_allow``, ``helm_parameters``,
  ``node_groups``: a nested list of scalars is a comma-separated cell): one column per property;
- ``map``: an object whose values are scalars (``labels``): key and value columns;
- ``map-records``: an object whose values are objects with scalar properties
  (``environment_quotas``): a key column and one column per property.

Anything else stays a JSON text area. The browser posts the rows as indexed fields (plain HTML,
no JavaScript needed): ``owners[0]``, ``environment_quotas[2][__key]``,
``environment_quotas[2][cpu]``, plus the marker ``<name>.__rows``. ``assemble`` turns them back
into the answer, in row order (indices sort numerically; gaps are fine, JavaScript removes rows),
skipping blank rows and leaving empty cells out of their object, so the answer is the same JSON an
API client or ``caas scaffold --set`` sends. Cells are converted to the column's JSON type only;
judging the values is the server validator's job (``scaffolder.parameters``). A map whose keys
repeat, or a row with values but no key, is a ``problems`` entry ``{row: {column: message}}``:
the answer cannot say it, so the form refuses it before anything else runs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

KEY = "__key"
VALUE = "__value"
MAX_ROWS = 200
SCALARS = ("string", "integer", "number", "boolean")
_INDEXED = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)\[(?P<row>[0-9]{1,4})\]"
                      r"(?:\[(?P<col>[A-Za-z0-9_]+)\])?$")


def cell_id(field_name: str, row: int | str, column: str) -> str:
    """The id of one cell's input (``f-owners-2``, ``f-environment_quotas-0-cpu``,
    ``f-environment_quotas-0-key``): error links and inline checks point at it."""
    return f"f-{field_name}-{row}" + (f"-{column.strip('_')}" if column else "")


@dataclass(frozen=True)
class Column:
    """One cell of every row: ``name`` is the property (``__key``/``__value`` for maps, ``""``
    for a list's single column)."""

    name: str
    label: str
    type: str  # string | integer | number | boolean | list (comma-separated scalars)
    options: tuple[str, ...] = ()
    required: bool = False
    choices: str = ""  # a portal choice list the cell suggests (datalist), e.g. "users"
    max_length: int | None = None


@dataclass
class Row:
    index: int
    cells: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


@dataclass
class RowEditor:
    shape: str  # list | records | map | map-records
    columns: list[Column]
    rows: list[Row] = field(default_factory=list)

    @property
    def next_index(self) -> int:
        return max((r.index for r in self.rows), default=-1) + 1

    def blank_row(self) -> Row:
        """The row JavaScript copies on "Add a row": index ``__i__`` replaced on insert."""
        return Row(-1, {c.name: "" for c in self.columns})


def _scalar(schema: object) -> bool:
    return isinstance(schema, Mapping) and str(schema.get("type", "string")) in SCALARS


def _column(name: str, label: str, schema: Mapping[str, Any], *, required: bool = False,
            picker: str = "") -> Column:
    kind = str(schema.get("type", "string"))
    if kind == "array":
        kind = "list"
    enum = schema.get("enum")
    if enum is None and isinstance(schema.get("items"), Mapping):
        enum = None  # a comma-separated list cell stays free text
    return Column(name=name, label=label, type=kind, required=required,
                  options=tuple(str(v) for v in enum) if isinstance(enum, list) else (),
                  choices=picker or _picker(schema), max_length=schema.get("maxLength"))


def _picker(schema: Mapping[str, Any]) -> str:
    field_name = schema.get("ui:field")
    rule = schema.get("x-caas-rule")
    if field_name == "EnvironmentPicker" or rule == "environment":
        return "environment"
    if field_name == "TeamPicker" or rule == "team":
        return "team"
    return ""


_ACRONYMS = {"cpu": "CPU", "url": "URL", "id": "ID"}


def _label(name: str) -> str:
    """``from_namespace`` → "From namespace", ``cpu`` → "CPU" (a property without a title)."""
    words = [_ACRONYMS.get(word, word) for word in name.split("_")]
    return " ".join(words)[:1].upper() + " ".join(words)[1:]


def _properties(schema: Mapping[str, Any]) -> list[Column] | None:
    """Columns for an object schema whose properties are scalars or lists of scalars."""
    props = schema.get("properties")
    if not isinstance(props, Mapping) or not props:
        return None
    required = set(schema.get("required") or [])
    columns: list[Column] = []
    for name, sub in props.items():
        if not isinstance(sub, Mapping):
            return None
        if sub.get("type") == "array" and not _scalar(sub.get("items")):
            return None
        if sub.get("type") not in (*SCALARS, "array", None):
            return None
        columns.append(_column(str(name), str(sub.get("title") or _label(str(name))), sub,
                               required=name in required))
    return columns


def editor_for(schema: Mapping[str, Any], *, label: str, people: bool = False
               ) -> RowEditor | None:
    """The row editor for a parameter's schema, or None when a table cannot hold it (and for
    arrays with fixed options, which are checkbox groups). ``people``: the list names users
    (``owners``, ``members``): its cells suggest known user names."""
    kind = schema.get("type")
    if kind == "array":
        items = schema.get("items") or {}
        if not isinstance(items, Mapping):
            return None
        if _scalar(items):
            if "enum" in items or _picker(schema) or _picker(items):
                return None  # checkboxes
            column = _column("", label, items, required=True)
            if people:
                column = Column(**{**column.__dict__, "choices": "users"})
            return RowEditor(shape="list", columns=[column])
        if items.get("type") == "object":
            columns = _properties(items)
            return RowEditor(shape="records", columns=columns) if columns else None
        return None
    if kind == "object" and not schema.get("properties"):
        names = schema.get("propertyNames")
        picker = _picker(names) if isinstance(names, Mapping) else ""
        key = Column(name=KEY, label="Key" if not picker else picker.title(), type="string",
                     required=True, choices=picker,
                     max_length=names.get("maxLength") if isinstance(names, Mapping) else None)
        values = schema.get("additionalProperties", {})
        if values is True or values == {}:
            values = {"type": "string"}
        if not isinstance(values, Mapping):
            return None
        if _scalar(values):
            return RowEditor(shape="map", columns=[key, _column(VALUE, "Value", values)])
        if values.get("type") == "object":
            columns = _properties(values)
            return RowEditor(shape="map-records", columns=[key, *columns]) if columns else None
    return None


# ---- values → rows (drawing the form) ----------------------------------------------------------


def _cell(column: Column, value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else ""
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def fill(editor: RowEditor, value: object, *, extra: int = 0) -> RowEditor:
    """The editor with one row per item (a blank row when there is none) and ``extra`` blank
    rows more (the no-JavaScript "Add a row")."""
    rows: list[Row] = []
    if editor.shape == "list" and isinstance(value, list):
        rows = [Row(i, {"": _cell(editor.columns[0], v)}) for i, v in enumerate(value)]
    elif editor.shape == "records" and isinstance(value, list):
        rows = [Row(i, {c.name: _cell(c, item.get(c.name)) for c in editor.columns})
                for i, item in enumerate(value) if isinstance(item, Mapping)]
    elif editor.shape in ("map", "map-records") and isinstance(value, Mapping):
        for i, (key, item) in enumerate(value.items()):
            cells = {KEY: str(key)}
            if editor.shape == "map":
                cells[VALUE] = _cell(editor.columns[1], item)
            elif isinstance(item, Mapping):
                cells.update({c.name: _cell(c, item.get(c.name)) for c in editor.columns[1:]})
            rows.append(Row(i, cells))
    editor.rows = rows
    for _ in range(extra + (0 if rows else 1)):
        editor.rows.append(Row(editor.next_index, {c.name: "" for c in editor.columns}))
    return editor


# ---- posted rows → answer ----------------------------------------------------------------------


def posted_rows(name: str, form: Mapping[str, Sequence[str]]) -> dict[int, dict[str, str]]:
    """``{row index: {column: text}}`` of one field's indexed inputs, rows in index order."""
    rows: dict[int, dict[str, str]] = {}
    for key, values in form.items():
        match = _INDEXED.match(key)
        if match is None or match.group("name") != name or not values:
            continue
        rows.setdefault(int(match.group("row")), {})[match.group("col") or ""] = values[0]
    return dict(sorted(rows.items())[:MAX_ROWS + 1])


def _number(kind: str, raw: str) -> object:
    """An int or float when the text is one; else the text (the server names the type error)."""
    try:
        as_float = float(raw)
    except ValueError:
        return raw
    if kind == "integer":
        return int(as_float) if as_float.is_integer() and "." not in raw else raw
    return int(raw) if raw.lstrip("-").isdigit() else as_float


def convert(column: Column, raw: str) -> object:
    """A cell's text as the column's JSON type (None: the cell is empty)."""
    text = raw.strip()
    if column.type == "boolean":
        return True if text in ("true", "on", "1") else None
    if text == "":
        return None
    if column.type in ("integer", "number"):
        return _number(column.type, text)
    if column.type == "list":
        return [part.strip() for part in text.split(",") if part.strip()]
    return text


@dataclass
class Assembled:
    value: object
    rows: dict[int, dict[str, str]]
    problems: dict[int, dict[str, str]] = field(default_factory=dict)
    # The posted row index of each item of ``value`` (by position for lists, key for maps).
    origin: dict[object, int] = field(default_factory=dict)


def assemble(editor: RowEditor, form: Mapping[str, Sequence[str]], name: str) -> Assembled:
    """The answer the posted rows of ``name`` spell (see the module doc)."""
    posted = posted_rows(name, form)
    done = Assembled(value=[] if editor.shape in ("list", "records") else {}, rows=posted)
    seen: dict[str, int] = {}
    for position, (index, cells) in enumerate(posted.items(), start=1):
        values = {c.name: convert(c, cells.get(c.name, "")) for c in editor.columns}
        if all(v is None for v in values.values()):
            continue  # a blank row: nothing was typed
        if editor.shape == "list":
            assert isinstance(done.value, list)
            done.origin[len(done.value)] = index
            done.value.append(values[""])
        elif editor.shape == "records":
            assert isinstance(done.value, list)
            done.origin[len(done.value)] = index
            done.value.append({k: v for k, v in values.items() if v is not None})
        else:
            assert isinstance(done.value, dict)
            key = values.pop(KEY)
            if key is None:
                done.problems[index] = {KEY: "needs a key"}
                continue
            if str(key) in seen:
                done.problems[index] = {KEY: f"{key} is already in row {seen[str(key)]}"}
                continue
            seen[str(key)] = position
            done.origin[str(key)] = index
            if editor.shape == "map":
                done.value[str(key)] = values.get(VALUE) if values.get(VALUE) is not None else ""
            else:
                done.value[str(key)] = {k: v for k, v in values.items() if v is not None}
    return done


def fill_posted(editor: RowEditor, posted: Mapping[int, Mapping[str, str]], *, extra: int = 0,
                drop: int | None = None) -> RowEditor:
    """The editor showing the rows as they were posted (texts kept as typed, so a refused value
    is shown for correction), without row ``drop`` (the no-JavaScript "Remove"), plus ``extra``
    blank rows."""
    editor.rows = [Row(i, {c.name: cells.get(c.name, "") for c in editor.columns})
                   for i, cells in posted.items() if i != drop]
    for _ in range(extra + (0 if editor.rows else 1)):
        editor.rows.append(Row(editor.next_index, {c.name: "" for c in editor.columns}))
    return editor
