"""The environment page: catalog facts (when indexed), Terraform units with their last plan and
apply, non-sensitive outputs, and the reconciler jobs that touched the environment."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from frontend.catalog_pages import environment_entity
from frontend.pages import render
from frontend.services import ForgeDep
from portal.deps import PrincipalDep, SessionDep, SettingsDep
from portal.errors import NotFound, ValidationFailed
from portal.redact import redact
from reconciler import service as reconciler_service
from reconciler.models import EnvironmentStatus

router = APIRouter(include_in_schema=False)

UNIT_ORDER = ("backend", "network", "domain", "kubernetes", "addons")


def shown_outputs(outputs: dict[str, Any]) -> list[tuple[str, str]]:
    """Outputs as (name, text); sensitive ones are named but never shown."""
    rows: list[tuple[str, str]] = []
    for name in sorted(outputs):
        value = outputs[name]
        if isinstance(value, dict) and "value" in value:
            if value.get("sensitive"):
                rows.append((name, "(sensitive — not shown)"))
                continue
            value = value["value"]
        text = value if isinstance(value, str) else repr(value)
        rows.append((name, redact(text)[:500]))
    return rows


def plan_counts(plan: dict[str, Any] | None) -> dict[str, int] | None:
    """add/change/destroy from a stored plan summary, whatever its nesting."""
    if not plan:
        return None
    summary = plan.get("summary")
    source: dict[str, Any] = summary if isinstance(summary, dict) else plan
    counts = {k: source.get(k) for k in ("add", "change", "destroy")}
    if all(isinstance(v, int) for v in counts.values()):
        return {k: int(v) for k, v in counts.items() if v is not None}
    return None


def _unit_key(name: str) -> tuple[int, str]:
    return (UNIT_ORDER.index(name) if name in UNIT_ORDER else len(UNIT_ORDER), name)


@router.get("/catalog/environments/{name}")
def environment_page(request: Request, name: str, principal: PrincipalDep,
                     session: SessionDep, settings: SettingsDep, forge: ForgeDep) -> Response:
    catalog_part = environment_entity(session, settings, name, forge=forge, principal=principal)
    try:
        status: EnvironmentStatus | None = reconciler_service.environment_status(
            session, environment=name)
    except NotFound:
        status = None
    except ValidationFailed as exc:
        raise NotFound(f"no environment named {name[:63]!r}", field="environment") from exc
    if status is None and not catalog_part:
        raise NotFound(f"no environment named {name[:63]!r} in the catalog",
                       field="environment")
    jobs = reconciler_service.list_jobs(session, environment=name, limit=30).items
    units = []
    if status is not None:
        for unit in sorted(status.units, key=lambda u: _unit_key(u.unit)):
            units.append({"unit": unit.unit, "last_job": unit.last_job,
                          "plan": plan_counts(unit.last_plan), "apply": unit.last_apply,
                          "outputs": shown_outputs(unit.outputs)})
    return render(request, "environment.html", title=f"Environment {name}", name=name,
                  env_status=status, units=units, jobs=jobs, **catalog_part)
