"""The Upgrades page: the units behind their template, per template with what changed between
the versions, and the button that opens their upgrade PRs (``scaffolder.upgrade_service``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError

from frontend.catalog_pages import entity_url
from frontend.pages import render
from frontend.services import ForgeDep, RegistryDep
from portal.deps import PrincipalDep, SessionDep, client_ip
from portal.errors import CaasError, ValidationFailed
from scaffolder import upgrade_service
from scaffolder.models import BehindUnit, UpgradeOutcome, UpgradeRequest

router = APIRouter(include_in_schema=False)
MAX_DIFF = 60_000  # characters of "what changed" shown per version pair


def _by_template(forge: ForgeDep, registry: RegistryDep, units: list[BehindUnit]
                 ) -> list[dict[str, Any]]:
    """Per template: its current version, and per old version the units and the diff."""
    groups: dict[str, dict[str, list[BehindUnit]]] = {}
    for unit in units:
        groups.setdefault(unit.template, {}).setdefault(unit.version, []).append(unit)
    shown = []
    for template, versions in sorted(groups.items()):
        rows = []
        for version, members in sorted(versions.items()):
            try:
                diff = upgrade_service.what_changed(registry=registry, template=template,
                                                    version=version)[:MAX_DIFF]
                missing = ""
            except CaasError as exc:
                diff, missing = "", exc.message
            rows.append({"version": version, "diff": diff, "missing": missing,
                         "units": [(u, entity_url(u.entity)) for u in members]})
        shown.append({"name": template, "current": registry.get(template).version,
                      "versions": rows, "count": sum(len(v) for v in versions.values())})
    return shown


def _page(request: Request, forge: ForgeDep, registry: RegistryDep, principal: PrincipalDep,
          outcomes: list[UpgradeOutcome] | None = None) -> Response:
    units = upgrade_service.list_behind(forge=forge, registry=registry, principal=principal)
    return render(request, "upgrades.html", title="Upgrades",
                  templates=_by_template(forge, registry, units), outcomes=outcomes)


@router.get("/upgrades")
def upgrades_page(request: Request, principal: PrincipalDep, registry: RegistryDep,
                  forge: ForgeDep) -> Response:
    return _page(request, forge, registry, principal)


@router.post("/upgrades")
async def open_upgrades(request: Request, principal: PrincipalDep, session: SessionDep,
                        registry: RegistryDep, forge: ForgeDep) -> Response:
    """The button: open the upgrade PRs of one template (per unit or per team)."""
    form = await request.form()
    template, per = str(form.get("template") or ""), str(form.get("per") or "unit")
    try:
        body = UpgradeRequest.model_validate({"template": template[:63] or None, "per": per})
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first.get("loc", ())) or "form"
        raise ValidationFailed(f"{field}: {first.get('msg', 'invalid')}", field=field,
                               rule=str(first.get("type", "invalid"))) from None
    outcomes = upgrade_service.run_upgrades(session, forge=forge, registry=registry,
                                            principal=principal, request=body,
                                            ip=client_ip(request))
    return _page(request, forge, registry, principal, outcomes)
