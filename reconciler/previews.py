"""The latest Terraform plan preview of an open change, typed for the pages and the API.

A preview is a ``plan_preview`` job keyed ``plan-preview#<PR number>`` (queued by
``service.request_plan_preview`` for each new head); its result holds, per ``<env>/<unit>``,
what ``terraform plan`` would add, change and destroy (``terraform.PlanSummary.to_dict``).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, ValidationError
from sqlmodel import Session, col, select

from reconciler.models import Job, JobKind

MAX_RESOURCES = 30  # per unit on a page; the PR comment has the whole table


class UnitPlanPreview(BaseModel):
    """One unit's planned changes (``unit`` is ``<env>/<unit>``; ``resources`` are
    ``"<action> <address>"``, never attribute values)."""

    unit: str
    add: int = Field(ge=0)
    change: int = Field(ge=0)
    destroy: int = Field(ge=0)
    resources: list[str] = Field(default_factory=list)


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
        return UnitPlanPreview(unit=name, add=plan.get("add"), change=plan.get("change"),
                               destroy=plan.get("destroy"), resources=resources)
    except ValidationError:
        return None


def latest_plan_preview(session: Session, *, change_number: int) -> PlanPreview | None:
    """The newest plan preview job of PR ``change_number``; None when none was queued."""
    job = session.exec(select(Job).where(Job.kind == JobKind.plan_preview.value,
                                         Job.unit == preview_unit(change_number))
                       .order_by(col(Job.id).desc()).limit(1)).first()
    if job is None:
        return None
    plans = job.result.get("plans") if isinstance(job.result, dict) else None
    units = [u for name, plan in sorted((plans or {}).items())
             if (u := _unit(str(name), plan)) is not None] if isinstance(plans, dict) else []
    return PlanPreview(change_number=change_number, state=job.state, head_sha=job.commit,
                       units=units)
