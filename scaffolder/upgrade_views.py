"""Upgrade API: the units behind their template, what changed between versions, and the
upgrade pull requests (``scaffolder.upgrade_service``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from portal.deps import PrincipalDep, SessionDep, client_ip
from portal.errors import error_responses
from scaffolder import upgrade_service
from scaffolder.deps import ForgeDep, RegistryDep
from scaffolder.models import BehindUnit, UpgradeOutcome, UpgradeRequest

router = APIRouter(prefix="/api", tags=["scaffolder"],
                   responses=error_responses(400, 401, 403, 404, 409, 422))
NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
Name = Annotated[str | None, Query(max_length=63, pattern=NAME)]


class TemplateDiff(BaseModel):
    template: str
    version: str
    current: str
    diff: str


@router.get("/upgrades", response_model=list[BehindUnit])
def list_behind(principal: PrincipalDep, registry: RegistryDep, forge: ForgeDep,
                template: Name = None, team: Name = None) -> list[BehindUnit]:
    """Units whose stored template version is not the current one, that the caller may
    upgrade (platform-admin: all; team reviewer: the team's units)."""
    return upgrade_service.list_behind(forge=forge, registry=registry, principal=principal,
                                       template=template, team=team)


@router.get("/upgrades/diff", response_model=TemplateDiff)
def what_changed(_principal: PrincipalDep, registry: RegistryDep,
                 template: Annotated[str, Query(max_length=63, pattern=NAME)],
                 version: Annotated[str, Query(pattern=r"^[0-9a-f]{40}$")]) -> TemplateDiff:
    """The diff of the template from ``version`` to its current version (409 when the old
    version is in no template store)."""
    diff = upgrade_service.what_changed(registry=registry, template=template, version=version)
    return TemplateDiff(template=template, version=version,
                        current=registry.get(template).version, diff=diff)


@router.post("/upgrades", response_model=list[UpgradeOutcome])
def run_upgrades(body: UpgradeRequest, request: Request, principal: PrincipalDep,
                 session: SessionDep, registry: RegistryDep, forge: ForgeDep
                 ) -> list[UpgradeOutcome]:
    """Open (or with ``dry_run`` preview) the upgrade PRs: three-way merges per file, one PR
    per unit or per team; a rerun opens nothing new while a PR for the version is open."""
    return upgrade_service.run_upgrades(session, forge=forge, registry=registry,
                                        principal=principal, request=body,
                                        ip=client_ip(request))
