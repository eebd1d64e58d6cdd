"""The request form, built from a template's ``spec.parameters`` (JSON Schema).

``widgets()`` turns the scaffolder's ``FieldSpec`` list into what the page template draws (one
widget per top-level field: text, number, select, checkbox, checkbox group, row editor for lists
and maps (``frontend.rows``; their JSON text only behind an "advanced" toggle), lines, JSON), and
``read_form()``/``parse_form()`` turn the submitted form back into typed answers for
``validate_answers``.
The server stays the judge: this module never decides whether a value is valid, it only
converts strings to the JSON types the schema declares, so a value the browser sends is checked
by exactly the same code as an API request.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from frontend.rows import (
    Assembled,
    RowEditor,
    assemble,
    cell_id,
    editor_for,
    fill,
    fill_posted,
    posted_rows,
)
from scaffolder.parameters import FieldSpec

# Choice lists the portal fills in (teams the user belongs to, existing environments).
PICKER_CHOICES = {"TeamPicker": "team", "EnvironmentPicker": "environment"}
RULE_CHOICES = {"team": "team", "environment": "environment"}
MAX_LINES = 200
# Lists of user names: their row cells suggest the portal's known users.
PEOPLE_FIELDS = frozenset({"owners", "members", "reviewers", "developers", "viewers"})


@dataclass
class Widget:
    """One form control, ready for ``_fields.html``."""

    name: str
    label: str
    kind: str  # text | textarea | number | select | checkbox | checkboxes | rows | lines | json
    help: str = ""
    required: bool = False
    value: str = ""
    values: frozenset[str] = frozenset()
    checked: bool = False
    options: list[str] = field(default_factory=list)
    minimum: float | None = None
    maximum: float | None = None
    step: str = "any"
    max_length: int | None = None
    pattern: str | None = None
    page: str = ""
    error: str = ""
    # Identifies the unit being changed: shown read-only, sent unchanged.
    fixed: bool = False
    json_shape: str = "object"  # json widgets: "object" or "list", for the help text
    # rows widgets: the editor, whether its JSON text (``value``) is in use, and the choice
    # lists its cells suggest (``{"users": [...], "environment": [...]}``).
    editor: RowEditor | None = None
    advanced: bool = False
    suggestions: Mapping[str, Sequence[str]] = field(default_factory=dict)
    # A chooser grouped by another field's value (an application's namespace by its team):
    # ``[(team, [tenant, ...]), ...]`` and the name of the field it follows.
    groups: list[tuple[str, list[str]]] = field(default_factory=list)
    follows: str = ""

    @property
    def input_id(self) -> str:
        return f"f-{self.name}"

    @property
    def help_id(self) -> str:
        return f"f-{self.name}-help"

    @property
    def error_id(self) -> str:
        return f"f-{self.name}-error"

    def cell_id(self, row: int | str, column: str) -> str:
        return cell_id(self.name, row, column)


def _choice_key(spec: FieldSpec) -> str | None:
    if spec.ui_field in PICKER_CHOICES:
        return PICKER_CHOICES[spec.ui_field]
    if spec.rule in RULE_CHOICES:
        return RULE_CHOICES[spec.rule]
    items = spec.items or {}
    if items.get("ui:field") in PICKER_CHOICES:
        return PICKER_CHOICES[str(items["ui:field"])]
    if items.get("x-caas-rule") in RULE_CHOICES:
        return RULE_CHOICES[str(items["x-caas-rule"])]
    return None


def _options(spec: FieldSpec, choices: Mapping[str, Sequence[str]]) -> list[str] | None:
    """Fixed options of a field: its enum, its items' enum, or a portal-filled picker."""
    if spec.enum is not None:
        return [str(v) for v in spec.enum]
    items = spec.items or {}
    if isinstance(items.get("enum"), list):
        return [str(v) for v in items["enum"]]
    # Only a picker field gets a portal-filled list: a free-text field that happens to be
    # called ``team`` or ``environment`` (the Team and Environment templates name their new
    # unit so) stays free text, or the form could only offer names that already exist.
    picker = _choice_key(spec)
    if picker is None:
        return None
    for key in (spec.name, picker):
        if key in choices:
            return [str(v) for v in choices[key]]
    return None


def row_editor(spec: FieldSpec) -> RowEditor | None:
    """The field's row editor, when it is a list or map a table can hold."""
    if spec.type not in ("array", "object"):
        return None
    return editor_for(spec.schema or {"type": spec.type, "items": spec.items or {}},
                      label=spec.title, people=spec.name in PEOPLE_FIELDS)


def _kind(spec: FieldSpec, options: list[str] | None) -> str:
    if spec.type == "boolean":
        return "checkbox"
    if options is None and row_editor(spec) is not None:
        return "rows"
    if spec.type == "object" or (spec.type == "array" and (spec.items or {}).get("type")
                                  in ("object", "array")):
        return "json"
    if spec.type == "array":
        return "checkboxes" if options is not None else "lines"
    if options is not None:
        return "select"
    if spec.type in ("integer", "number"):
        return "number"
    if spec.ui_widget == "textarea":
        return "textarea"
    return "text"


def _as_text(kind: str, value: object) -> str:
    if value is None:
        return ""
    if kind == "lines" and isinstance(value, list):
        return "\n".join(str(v) for v in value)
    if kind in ("json", "rows"):
        return json.dumps(value, indent=2, sort_keys=True)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass
class Posted:
    """What a re-drawn form keeps of the submitted one: the row editors' rows as typed, their
    per-cell errors, and a no-JavaScript "Add a row" (``add``: field) or "Remove" (``drop``:
    field and row index)."""

    form: Mapping[str, Sequence[str]] = field(default_factory=dict)
    cell_errors: Mapping[str, Mapping[int, Mapping[str, str]]] = field(default_factory=dict)
    add: str = ""
    drop: tuple[str, int] | None = None


def _rows_widget(widget: Widget, spec: FieldSpec, value: object, posted: Posted,
                 choices: Mapping[str, Sequence[str]]) -> None:
    editor = row_editor(spec)
    assert editor is not None
    extra = 1 if posted.add == spec.name else 0
    if f"{spec.name}.__rows" in posted.form:
        drop = posted.drop[1] if posted.drop and posted.drop[0] == spec.name else None
        fill_posted(editor, posted_rows(spec.name, posted.form), extra=extra, drop=drop)
    else:
        fill(editor, value, extra=extra)
    for row in editor.rows:
        row.errors = dict(posted.cell_errors.get(spec.name, {}).get(row.index, {}))
    widget.editor = editor
    widget.advanced = f"{spec.name}.__advanced" in posted.form
    if widget.advanced:
        widget.value = (posted.form.get(spec.name) or [""])[0]
    widget.suggestions = {c.choices: list(choices.get(c.choices, ())) for c in editor.columns
                          if c.choices}


def _grouped(widget: Widget, spec: FieldSpec,
             grouped: Mapping[str, Mapping[str, Sequence[str]]]) -> None:
    """``x-caas-choices: tenants-of-team``: a select of the namespaces of every team the user
    may choose, grouped by team (JavaScript shows the chosen team's group only)."""
    if spec.schema.get("x-caas-choices") != "tenants-of-team" or "tenants" not in grouped:
        return
    widget.kind = "select"
    widget.groups = [(team, list(names)) for team, names in grouped["tenants"].items()]
    widget.options = sorted({n for _, names in widget.groups for n in names})
    widget.follows = "team"
    widget.pattern = None


def widgets(specs: Sequence[FieldSpec], *, choices: Mapping[str, Sequence[str]] | None = None,
            values: Mapping[str, object] | None = None,
            errors: Mapping[str, str] | None = None,
            fixed: frozenset[str] = frozenset(),
            posted: Posted | None = None,
            grouped: Mapping[str, Mapping[str, Sequence[str]]] | None = None) -> list[Widget]:
    """The form's controls, filled with ``values`` (else the schema defaults); the fields
    named in ``fixed`` (those that identify a unit being changed) are read-only text. Row
    editors show ``posted`` rows as typed when the form comes back to the user; ``grouped``
    holds grouped choice lists (``{"tenants": {team: [tenant, ...]}}``)."""
    choices = choices or {}
    values = values or {}
    errors = errors or {}
    posted = posted or Posted()
    result: list[Widget] = []
    for spec in specs:
        options = _options(spec, choices)
        kind = _kind(spec, options)
        value = values.get(spec.name, spec.default)
        if kind == "select" and value is None and options and spec.required:
            value = options[0] if len(options) == 1 else None
        widget = Widget(
            name=spec.name, label=spec.title, kind=kind, help=spec.description,
            required=spec.required and kind != "checkbox", options=options or [],
            minimum=spec.minimum, maximum=spec.maximum,
            step="1" if spec.type == "integer" else "any",
            max_length=spec.max_length, pattern=spec.pattern if kind == "text" else None,
            page=spec.page, error=errors.get(spec.name, ""), fixed=spec.name in fixed,
            json_shape="list" if spec.type == "array" else "object",
        )
        if kind == "checkbox":
            widget.checked = bool(value)
        elif kind == "checkboxes":
            widget.values = frozenset(str(v) for v in value) if isinstance(value, list) \
                else frozenset()
        else:
            widget.value = _as_text(kind, value)
        if kind == "rows" and not widget.fixed:
            _rows_widget(widget, spec, value, posted, choices)
        if kind == "text" and not widget.fixed:
            _grouped(widget, spec, grouped or {})
        result.append(widget)
    return result


def _number(spec: FieldSpec, raw: str) -> object:
    """An int or float when the text is one; otherwise the text itself, for the server to
    refuse with its own message (type error naming the field)."""
    try:
        return int(raw) if spec.type == "integer" else float(raw)
    except ValueError:
        try:
            as_float = float(raw)
        except ValueError:
            return raw
        return int(as_float) if spec.type == "integer" and as_float.is_integer() else as_float


@dataclass
class FormRead:
    """A submitted form: the typed answers and, per row-editor field, its assembled rows
    (``Assembled.problems``: rows the answer cannot express, such as a repeated map key)."""

    answers: dict[str, object]
    rows: dict[str, Assembled] = field(default_factory=dict)

    @property
    def problems(self) -> dict[str, dict[int, dict[str, str]]]:
        return {name: done.problems for name, done in self.rows.items() if done.problems}


def parse_form(specs: Sequence[FieldSpec], form: Mapping[str, Sequence[str]]
               ) -> dict[str, object]:
    """Typed answers from a submitted form (``read_form(...).answers``)."""
    return read_form(specs, form).answers


def read_form(specs: Sequence[FieldSpec], form: Mapping[str, Sequence[str]]) -> FormRead:
    """Typed answers from a submitted form. Empty optional fields are left out, so the
    schema's default applies exactly as it would for an API request that omits them. A row
    editor's rows (marker ``<name>.__rows``) are assembled by ``frontend.rows.assemble``; with
    its "advanced" box ticked (``<name>.__advanced``) the JSON text under ``<name>`` counts."""
    read = FormRead(answers={})
    answers = read.answers
    for spec in specs:
        raw_values = list(form.get(spec.name, ()))
        raw = raw_values[0] if raw_values else ""
        editor = row_editor(spec) if f"{spec.name}.__rows" in form else None
        if editor is not None and f"{spec.name}.__advanced" not in form:
            read.rows[spec.name] = assemble(editor, form, spec.name)
            answers[spec.name] = read.rows[spec.name].value
        elif spec.type == "boolean":
            answers[spec.name] = raw in ("on", "true", "1")
        elif _json_shaped(spec) or editor is not None:
            if raw.strip():
                try:
                    answers[spec.name] = json.loads(raw)
                except ValueError:
                    answers[spec.name] = raw  # the schema's type check names the field
        elif spec.type == "array":
            if _is_multi(spec, form):
                answers[spec.name] = [v for v in raw_values if v]
            else:
                lines = [line.strip() for line in raw.splitlines() if line.strip()]
                if lines or spec.required:
                    answers[spec.name] = lines[:MAX_LINES + 1]
        elif raw == "":
            continue  # omitted: the default applies, or the server says "is required"
        elif spec.type in ("integer", "number"):
            answers[spec.name] = _number(spec, raw.strip())
        else:
            answers[spec.name] = raw
    return read


def _json_shaped(spec: FieldSpec) -> bool:
    """Objects and lists of objects or lists: posted as JSON text when not as rows."""
    return spec.type == "object" or (
        spec.type == "array" and (spec.items or {}).get("type") in ("object", "array"))


def _is_multi(spec: FieldSpec, form: Mapping[str, Sequence[str]]) -> bool:
    """Checkbox groups send one value per ticked box plus a marker field (so "none ticked"
    is distinguishable from "field not on the form")."""
    return f"{spec.name}.__multi" in form


def specs_by_name(specs: Sequence[FieldSpec]) -> dict[str, FieldSpec]:
    return {spec.name: spec for spec in specs}


def single_field_parameters(parameters: Sequence[Mapping[str, Any]] | Mapping[str, Any],
                            name: str) -> list[dict[str, Any]]:
    """The schema reduced to one field: the inline check runs the server's own validator on
    just the field the user has touched, so untouched required fields do not shout yet."""
    pages = [parameters] if isinstance(parameters, Mapping) else list(parameters)
    for page in pages:
        props = page.get("properties") or {}
        if name in props:
            required = [name] if name in (page.get("required") or []) else []
            return [{"properties": {name: props[name]}, "required": required}]
    return []
