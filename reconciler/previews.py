"""The latest Terraform plan preview of an open change, typed for the pages and the API.

A preview is a ``plan_preview`` job keyed ``plan-preview#<PR number>`` (queued by
``service.request_plan_preview`` for each new head). Its result names every unit of each
environment the change touches (``units``, in the order they would run) with a status:
``planned`` (what ``terraform plan`` would add, change and destroy:
``terraform.PlanSummary.to_dict``), ``no-change`` (its inputs did not change, so it is not
planned), ``waiting`` (it needs outputs of units that are not applied yet, e.g. a new
environment's cluster needs the network: it is planned after those are applied) or ``error``.
Results of jobs written before ``units`` existed have only ``plans`` (the planned units).
"""

from __future__ import annotations

from typing import Any, Final, Literal

from pydantic import BaseModel, Field, ValidationError
from sqlmodel import Session, col, select

from reconciler.models import Job, JobKind

MAX_RESOURCES = 30  # per unit on a page; the PR comment has the whole table
PLANNED: Final = "planned"
NO_CHANGE: Final = "no-change"
WAITING: Final = "waiting"
ERROR: Final = "error"
UnitStatus = Literal["planned", "no-change", "waiting", "error"]


def _and(names: list[str]) -> str:
    return " and ".join([", ".join(names[:-1]), names[-1]] if len(names) > 2 else names)


def status_text(outcome: dict[str, Any]) -> str:
    """A unit's preview in words (the PR comment and the change page): "no change",
    "planned after network is applied (needs its outputs)", "error: …", or the counts."""
    status = outcome.get("status", PLANNED)
    if status == NO_CHANGE:
        return "no change"
    if status == WAITING:
        after = [str(u) for u in outcome.get("after") or []]
        if not after:
            return "planned after its upstream units are applied (needs their outputs)"
        verb, whose = ("is", "its") if len(after) == 1 else ("are", "their")
        return f"planned after {_and(after)} {verb} applied (needs {whose} outputs)"
    if status == ERROR:
        return f"error: {outcome.get('message', '')}"
    if not (outcome.get("add") or outcome.get("change") or outcome.get("destroy")):
        return "no change"
    return (f"{outcome.get('add', 0)} to add, {outcome.get('change', 0)} to change, "
            f"{outcome.get('destroy', 0)} to destroy")


class UnitPlanPreview(BaseModel):
    """One unit of the preview (``unit`` is ``<env>/<unit>``). ``status``: see the module;
    the counts and ``resources`` (``"<action> <address>"``, never attribute values) are those
    of a ``planned`` unit, zero otherwise; ``text`` says it in words."""

    unit: str
    status: UnitStatus = PLANNED
    add: int = Field(default=0, ge=0)
    change: int = Field(default=0, ge=0)
    destroy: int = Field(default=0, ge=0)
    resources: list[str] = Field(default_factory=list)
    after: list[str] = Field(default_factory=list)  # waiting: the units to apply first
    message: str = ""  # error
    text: str = ""


class PlanPreview(BaseModel):
    """The newest preview of a change: the job's state, the head it planned, per-unit plans."""

    change_number: int
    state: str
    head_sha: str
    units: list[UnitPlanPreview] = Field(default_factory=list)


def preview_unit(change_number: int) -> str:
    """The job unit of a change's plan preview."""
    return f"plan-preview#{change_number}"


def _unit(name: str, plan: Any) -> UnitPlanPreview | None:
    if not isinstance(plan, dict):
        return None
    resources = [f"{r.get('action', '')} {r.get('address', '')}"
                 for r in (plan.get("resources") or [])[:MAX_RESOURCES] if isinstance(r, dict)]
    try:
        return UnitPlanPreview(
            unit=name, status=plan.get("status", PLANNED), add=plan.get("add", 0),
            change=plan.get("change", 0), destroy=plan.get("destroy", 0), resources=resources,
            after=[str(u) for u in plan.get("after") or []],
            message=str(plan.get("message", "")), text=status_text(plan))
    except ValidationError:
        return None


def latest_plan_preview(session: Session, *, change_number: int) -> PlanPreview | None:
    """The newest plan preview job of PR ``change_number``; None when none was queued."""
    job = session.exec(select(Job).where(Job.kind == JobKind.plan_preview.value,
                                         Job.unit == preview_unit(change_number))
                       .order_by(col(Job.id).desc()).limit(1)).first()
    if job is None:
        return None
    result = job.result if isinstance(job.result, dict) else {}
    rows, plans = result.get("units"), result.get("plans")
    if isinstance(rows, list):
        units = [u for row in rows if isinstance(row, dict)
                 if (u := _unit(str(row.get("unit", "")), row)) is not None]
    elif isinstance(plans, dict):
        units = [u for name, plan in sorted(plans.items())
                 if (u := _unit(str(name), plan)) is not None]
    else:
        units = []
    return PlanPreview(change_number=change_number, state=job.state, head_sha=job.commit,
                       units=units)
