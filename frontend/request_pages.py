"""Templates gallery, the request form, inline checks, the dry-run preview and submitting.

The form posts plain HTML forms (works without JavaScript); ``form.js`` adds the inline checks
through ``/templates/{name}/check``, which runs the scaffolder's own ``validate_answers`` on the
touched fields, so the page and the API always say the same thing about a value.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import Engine
from sqlmodel import Session

from catalog import service as catalog_service
from catalog.cost import load_price_sheet
from frontend.form_state import cell_errors, error_summary, row_edit
from frontend.forms import Posted, Widget, read_form, single_field_parameters, widgets
from frontend.highlight import highlight_file
from frontend.pages import render
from frontend.preview_costs import cost_table
from frontend.rows import cell_id
from frontend.services import ForgeDep, RegistryDep
from gitops.forges.base import Forge
from portal.auth.principal import Principal
from portal.deps import EngineDep, PrincipalDep, SessionDep, SettingsDep, client_ip
from portal.errors import CaasError, Unavailable, ValidationFailed
from portal.params import PathId
from scaffolder import pr_checks
from scaffolder import review as scaffolder_review
from scaffolder import service as scaffolder_service
from scaffolder.changeset import parameter_context
from scaffolder.models import ScaffoldRequest, TemplateDetail
from scaffolder.parameters import ParameterContext, form_fields, validate_answers
from scaffolder.registry import Registry
from scaffolder.units import unit_answers

router = APIRouter(include_in_schema=False)

START_TIMEOUT_S = 60.0
CHECKS_REFRESH_S = 2  # the task page reloads itself this often while checks still run
MAX_ANSWERS_CHARS = 64 * 1024


def _choices(session: Session, principal: Principal
             ) -> tuple[dict[str, list[str]], dict[str, dict[str, list[str]]]]:
    """The choosers' lists, from the catalog (``catalog.service.form_choices``): flat lists by
    picker (``team``, ``environment``) and for user-name cells (``users``), and the grouped
    ``tenants`` (per team)."""
    found = catalog_service.form_choices(session, principal=principal)
    flat = {"team": found.teams, "environment": found.environments, "users": found.users}
    return flat, {"tenants": found.tenants}


def _form_page(request: Request, detail: TemplateDetail, *, session: Session,
               principal: Principal, values: Mapping[str, object],
               error: CaasError | None = None, update: bool = False,
               fixed: frozenset[str] = frozenset(),
               more: Mapping[str, str] | None = None, posted: Posted | None = None,
               status: int | None = None) -> Response:
    """The request form; with ``update`` the "Change" form of an existing unit, whose
    identifying fields (``fixed``) are read-only. ``more``: every other field's error, so a
    submit shows all of them at once; ``posted``: the row editors' rows as typed and their
    cell errors."""
    errors = dict(more or {})
    if error is not None and error.field:
        errors.setdefault(error.field, error.message)
    for name, rows in (posted.cell_errors if posted else {}).items():
        if rows:  # each row says what is wrong; the field says how many
            errors[name] = ("1 row needs a change" if len(rows) == 1 else
                            f"{len(rows)} rows need a change")
    pages: dict[str, list[Widget]] = {}
    flat, grouped = _choices(session, principal)
    for widget in widgets(form_fields(detail.parameters), choices=flat, grouped=grouped,
                          values=values, errors=errors, fixed=fixed if update else frozenset(),
                          posted=posted):
        pages.setdefault(widget.page, []).append(widget)
    verb = "Change" if update else "Request"
    listed = error_summary(pages, errors)
    if status is None:
        status = error.status if error else 200
    return render(
        request, "request_form.html", status=status,
        title=f"{verb} {detail.title}", tmpl=detail, pages=list(pages.items()),
        error=(listed[0][1] if len(listed) == 1 and error else
               error.message if error and not listed else None),
        update=update, verb=verb,
        error_field=listed[0][0] if len(listed) == 1 and error else None,
        error_list=listed if len(listed) > 1 else [],
    )


def _field_errors(parameters: Mapping[str, Any] | Sequence[Mapping[str, Any]],
                  answers: Mapping[str, object], names: Sequence[str],
                  context: ParameterContext) -> dict[str, str]:
    """Each named field checked alone by the server's validator: ``{field: message}``."""
    errors: dict[str, str] = {}
    for field_name in list(dict.fromkeys(names))[:64]:
        single = single_field_parameters(parameters, field_name)
        if not single:
            continue
        one = {field_name: answers[field_name]} if field_name in answers else {}
        try:
            validate_answers(single, one, context=context)
        except ValidationFailed as exc:
            errors[field_name] = exc.message
    return errors


def _is_update(form: Mapping[str, Sequence[str]]) -> bool:
    return (form.get("update") or [""])[0] == "true"


def _fixed(registry: Registry, name: str, update: bool) -> frozenset[str]:
    return registry.get(name, field_name="name").identity_fields if update else frozenset()


async def _form_data(request: Request) -> dict[str, list[str]]:
    form = await request.form()
    data: dict[str, list[str]] = {}
    for key, value in form.multi_items():
        if isinstance(value, str):
            data.setdefault(key, []).append(value)
    return data


def _scaffold_request(name: str, answers: Mapping[str, object], *,
                      update: bool = False) -> ScaffoldRequest:
    try:
        return ScaffoldRequest(template=name, answers=dict(answers), update=update)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ValidationFailed(f"answers: {first.get('msg', 'invalid')}", field="answers",
                               rule=str(first.get("type", "invalid"))) from exc


def _answers_from_hidden(form: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    raw = (form.get("answers") or [""])[0]
    if len(raw) > MAX_ANSWERS_CHARS:
        raise ValidationFailed("answers are too large", field="answers", rule="max-size")
    try:
        answers = json.loads(raw)
    except ValueError as exc:
        raise ValidationFailed("answers must be a JSON object", field="answers",
                               rule="type") from exc
    if not isinstance(answers, dict):
        raise ValidationFailed("answers must be a JSON object", field="answers", rule="type")
    return answers


@router.get("/templates")
def gallery(request: Request, principal: PrincipalDep, registry: RegistryDep) -> Response:
    templates = [t.model_copy(update={"target_path": readable_path(t.target_path)})
                 for t in scaffolder_service.list_templates(registry=registry)]
    return render(request, "gallery.html", title="Request", templates=templates)


_PARAMETER = re.compile(r"\$\{\{\s*parameters\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


def readable_path(path: str) -> str:
    """``tenants/${{ parameters.team }}/…`` → ``tenants/<team>/…``: no template syntax on a
    page."""
    return _PARAMETER.sub(lambda m: f"<{m.group(1)}>", path)


@router.get("/templates/{name}")
def request_form(request: Request, name: str, principal: PrincipalDep, registry: RegistryDep,
                 forge: ForgeDep, session: SessionDep) -> Response:
    detail = scaffolder_service.get_template(registry=registry, forge=forge,
                                             principal=principal, name=name)
    return _form_page(request, detail, session=session, principal=principal, values={})


@router.get("/change")
def change_form(request: Request, unit: Annotated[str, Query(max_length=300)],
                principal: PrincipalDep, registry: RegistryDep, forge: ForgeDep,
                session: SessionDep,
                installed: Annotated[str, Query(pattern="^(|true|false)$")] = "") -> Response:
    """"Change" on an entity page: the unit's template form, pre-filled from its
    ``.caas-answers.yaml``, the identifying fields read-only; it previews an update.
    ``installed=false`` ("Uninstall" on an environment page) pre-sets that answer."""
    stored = unit_answers(forge=forge, registry=registry, unit=unit)
    detail = scaffolder_service.get_template(registry=registry, forge=forge,
                                             principal=principal, name=stored.template)
    values = dict(stored.answers)
    if installed and "installed" in {f.name for f in form_fields(detail.parameters)}:
        values["installed"] = installed == "true"
    return _form_page(request, detail, session=session, principal=principal,
                      values=values, update=True,
                      fixed=frozenset(stored.fixed))


@router.post("/decommission")
async def decommission(request: Request, principal: PrincipalDep, session: SessionDep,
                       registry: RegistryDep, forge: ForgeDep) -> Response:
    """"Remove" on an entity page: the decommission PR's task, followed on its page; a
    refusal (dependants, permission) is the error page naming the reason."""
    unit = ((await _form_data(request)).get("unit") or [""])[0]
    task = scaffolder_service.decommission_task(session, registry=registry, forge=forge,
                                                principal=principal, unit=unit[:300],
                                                ip=client_ip(request))
    return RedirectResponse(f"/tasks/{task.id}", status_code=303)


@router.post("/templates/{name}/check")
async def check_fields(request: Request, name: str, principal: PrincipalDep,
                       registry: RegistryDep, forge: ForgeDep) -> Response:
    """Inline validation: the server's validator on each touched field alone; for a row
    editor also each row (``cells``: ``{cell input id: message}``)."""
    template = registry.get(name, field_name="name")
    form = await _form_data(request)
    specs = form_fields(template.parameters)
    read = read_form(specs, form)
    context = parameter_context(forge, principal, registry)
    touched = form.get("_fields", [])
    errors = _field_errors(template.parameters, read.answers, touched, context)
    rows = cell_errors([s for s in specs if s.name in touched], read, context)
    cells = {cell_id(field, row, column): message
             for field, by_row in rows.items() for row, by_column in by_row.items()
             for column, message in by_column.items()}
    return JSONResponse({"errors": errors, "cells": cells})


@router.post("/templates/{name}/preview")
async def preview(request: Request, name: str, principal: PrincipalDep, session: SessionDep,
                  registry: RegistryDep, forge: ForgeDep, settings: SettingsDep) -> Response:
    detail = scaffolder_service.get_template(registry=registry, forge=forge,
                                             principal=principal, name=name)
    form = await _form_data(request)
    specs = form_fields(detail.parameters)
    read = read_form(specs, form)
    answers = read.answers
    update = _is_update(form)
    fixed = _fixed(registry, name, update)
    edit = row_edit(form)
    if edit is not None:  # "Add a row" / "Remove" without JavaScript: the form again
        return _form_page(request, detail, session=session, principal=principal,
                          values=answers, update=update, fixed=fixed,
                          posted=edit)
    if read.problems:  # rows the answer cannot hold (a repeated map key): refused first
        first = next(iter(read.problems))
        return _form_page(request, detail, session=session, principal=principal,
                          values=answers, update=update, fixed=fixed,
                          error=ValidationFailed(f"{first}: rows need a change", field=first,
                                                 rule="rows"),
                          posted=Posted(form=form, cell_errors=read.problems))
    try:
        result = scaffolder_service.dry_run(
            session, registry=registry, forge=forge, principal=principal,
            request=_scaffold_request(name, answers, update=update))
    except CaasError as exc:
        more: dict[str, str] = {}
        cells: dict[str, dict[int, dict[str, str]]] = {}
        if isinstance(exc, ValidationFailed):  # every field's problem at once, not the first
            template = registry.get(name, field_name="name")
            context = parameter_context(forge, principal, registry)
            more = _field_errors(template.parameters, answers, [f.name for f in specs], context)
            cells = cell_errors(specs, read, context)
        return _form_page(request, detail, session=session, principal=principal,
                          values=answers, error=exc, update=update,
                          fixed=fixed, more=more, posted=Posted(form=form, cell_errors=cells))
    files = [{"path": f.path, "status": f.status, "anchor": "file-" + str(i),
              "lines": highlight_file(f.path, f.content or "")}
             for i, f in enumerate(result.files)]
    costs = cost_table(result.environments, load_price_sheet(settings.price_sheet))
    return render(request, "preview.html", title=f"Preview {detail.title}", tmpl=detail,
                  result=result, files=files, answers_json=json.dumps(answers), update=update,
                  costs=costs)


@router.post("/templates/{name}/edit")
async def edit(request: Request, name: str, principal: PrincipalDep, registry: RegistryDep,
               forge: ForgeDep, session: SessionDep) -> Response:
    detail = scaffolder_service.get_template(registry=registry, forge=forge,
                                             principal=principal, name=name)
    form = await _form_data(request)
    update = _is_update(form)
    return _form_page(request, detail, session=session, principal=principal,
                      values=_answers_from_hidden(form), update=update,
                      fixed=_fixed(registry, name, update))


class _Started:
    """Hands the task id from the worker thread to the request as soon as it exists."""

    def __init__(self) -> None:
        self.ready = threading.Event()
        self.task_id: int | None = None
        self.error: CaasError | None = None


def _run_task(engine: Engine, registry: Registry, forge: Forge, principal: Principal,
              request: ScaffoldRequest, ip: str, started: _Started) -> None:
    with Session(engine, expire_on_commit=False) as session:
        try:
            reservation = scaffolder_service.reserve_task(
                session, registry=registry, forge=forge, principal=principal, request=request,
                ip=ip)
            started.task_id = reservation.task_id
            started.ready.set()
            scaffolder_service.run_task(session, reservation=reservation, forge=forge)
        except CaasError as exc:
            started.error = exc
        except Exception as exc:  # logged by the thread's caller: the page says it failed
            started.error = Unavailable(f"the request could not start: {type(exc).__name__}")
            raise
        finally:
            started.ready.set()


@router.post("/templates/{name}/submit")
async def submit(request: Request, name: str, principal: PrincipalDep, engine: EngineDep,
                 registry: RegistryDep, forge: ForgeDep, session: SessionDep) -> Response:
    """Start the task in the background and go to its page at once, so the step log is
    followed live; refusals (validation, permission, conflict) come back to the form."""
    detail = scaffolder_service.get_template(registry=registry, forge=forge,
                                             principal=principal, name=name)
    form = await _form_data(request)
    answers, update = _answers_from_hidden(form), _is_update(form)
    fixed = _fixed(registry, name, update)
    try:
        scaffold = _scaffold_request(name, answers, update=update)
    except CaasError as exc:
        return _form_page(request, detail, session=session, principal=principal,
                          values=answers, error=exc, update=update,
                          fixed=fixed)
    started = _Started()
    thread = threading.Thread(
        target=_run_task, name="caas-ui-task", daemon=True,
        args=(engine, registry, forge, principal, scaffold, client_ip(request), started))
    thread.start()
    await _wait(started)
    if started.task_id is None:
        error = started.error or Unavailable("the request did not start in time")
        return _form_page(request, detail, session=session, principal=principal,
                          values=answers, error=error, update=update,
                          fixed=fixed)
    return RedirectResponse(f"/tasks/{started.task_id}", status_code=303)


async def _wait(started: _Started) -> None:
    import anyio.to_thread

    await anyio.to_thread.run_sync(started.ready.wait, START_TIMEOUT_S)


@router.get("/tasks/{task_id}")
def task_page(request: Request, task_id: PathId, principal: PrincipalDep,
              session: SessionDep) -> Response:
    task = scaffolder_service.get_task(session, principal=principal, task_id=task_id)
    change = (scaffolder_review.get_change(session, change_id=task.change_id)
              if task.status == "succeeded" and task.change_id else None)
    failing = [c.name for c in change.checks if c.state in ("failure", "error")] if change else []
    running = pr_checks.running(change.checks) if change and change.status == "open" else []
    return render(request, "task.html", title=f"Request #{task.id}", task=task, change=change,
                  failing=failing, running=running, refresh_s=CHECKS_REFRESH_S)


@router.post("/tasks/{task_id}/retry")
def retry(request: Request, task_id: PathId, principal: PrincipalDep, session: SessionDep,
          registry: RegistryDep, forge: ForgeDep) -> Response:
    scaffolder_service.retry_task(session, registry=registry, forge=forge, principal=principal,
                                  task_id=task_id, ip=client_ip(request))
    return RedirectResponse(f"/tasks/{task_id}", status_code=303)
