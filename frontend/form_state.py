"""What a request form needs when it comes back to the user: the error summary (one entry per
field, or per refused cell of a row editor), a no-JavaScript "Add a row"/"Remove" press, and the
server validator's verdict per row (``frontend.row_checks``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from frontend.forms import FormRead, Posted, Widget, row_editor
from frontend.row_checks import row_errors
from scaffolder.parameters import FieldSpec, ParameterContext


def error_summary(pages: Mapping[str, list[Widget]], errors: Mapping[str, str]
            ) -> list[tuple[str, str]]:
    """The error summary: ``(anchor id, message)``, one per field, or one per bad cell of a
    row editor ("Owners, row 2: …"), in form order."""
    listed: list[tuple[str, str]] = []
    for widget in (w for ws in pages.values() for w in ws):
        cells = [(widget.cell_id(row.index, column), position, column, message)
                 for position, row in enumerate(widget.editor.rows, start=1)
                 for column, message in row.errors.items()] if widget.editor else []
        labels = {c.name: c.label for c in widget.editor.columns} if widget.editor else {}
        for anchor, position, column, message in cells:
            where = f"{widget.label}, row {position}"
            if column and widget.editor and widget.editor.shape != "list":
                where += f", {labels.get(column, column)}"
            listed.append((anchor, f"{where}: {message}"))
        if widget.name in errors and not cells:
            listed.append((widget.input_id, errors[widget.name]))
    return listed


def row_edit(form: Mapping[str, Sequence[str]]) -> Posted | None:
    """A no-JavaScript "Add a row" (``_add=<field>``) or "Remove" (``_remove=<field>.<row>``)
    press: the form to draw again, else None."""
    add = (form.get("_add") or [""])[0]
    remove = (form.get("_remove") or [""])[0]
    if add:
        return Posted(form=form, add=add[:100])
    field_name, _, row = remove.rpartition(".")
    if field_name and row.isdigit() and len(row) <= 4:
        return Posted(form=form, drop=(field_name, int(row)))
    return None


def cell_errors(specs: Sequence[FieldSpec], read: FormRead, context: ParameterContext
                 ) -> dict[str, dict[int, dict[str, str]]]:
    """Per row-editor field, the rows the server validator refuses and the cell."""
    cells: dict[str, dict[int, dict[str, str]]] = {}
    for spec in specs:
        done = read.rows.get(spec.name)
        editor = row_editor(spec)
        if done is None or editor is None:
            continue
        found = row_errors(spec.schema, spec.name, editor, done, context)
        if found:
            cells[spec.name] = found
    return cells
