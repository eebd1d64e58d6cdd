"""Promotion API: open a promotion (an application's or a tenant's), read the matrix,
re-evaluate or override a gate."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request

from portal.deps import PrincipalDep, SessionDep, SettingsDep, client_ip
from portal.errors import error_responses
from portal.params import PathId
from scaffolder import (
    promotion,
    promotion_matrix,
    promotion_review,
    promotion_tenant,
    review,
)
from scaffolder.deps import ForgeDep, RegistryDep
from scaffolder.models import ChangePublic, TaskPublic
from scaffolder.promotion_models import OverrideRequest, PromotionMatrix, PromotionRequest

ERRORS = error_responses(400, 401, 403, 404, 409, 422)
router = APIRouter(prefix="/api", tags=["promotion"], responses=ERRORS)
Label = Annotated[str, Path(min_length=1, max_length=63,
                            pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")]


@router.post("/applications/{team}/{app}/promotions", response_model=TaskPublic,
             status_code=201)
def promote(team: Label, app: Label, body: PromotionRequest, request: Request,
            principal: PrincipalDep, session: SessionDep, registry: RegistryDep,
            forge: ForgeDep, settings: SettingsDep) -> TaskPublic:
    """Open the PR that carries the version and values of `from`'s overlay to `to`'s, with
    the gates (source-health, approval, target-policies) as checks. 403 outside the team; 409
    while another change of the application is open or nothing differs; 422 for an unknown
    environment or a source without an overlay."""
    return promotion.promote(session, registry=registry, forge=forge, settings=settings,
                             principal=principal, team=team, app=app, source=body.source,
                             target=body.target, ip=client_ip(request))


@router.post("/namespaces/{team}/{namespace}/promotions", response_model=TaskPublic,
             status_code=201)
def promote_tenant(team: Label, namespace: Label, body: PromotionRequest, request: Request,
                   principal: PrincipalDep, session: SessionDep, registry: RegistryDep,
                   forge: ForgeDep, settings: SettingsDep) -> TaskPublic:
    """Open the PR that carries the tenant's CPU and memory quota of `from` to `to` (the
    target's `quota.yaml` and the stored answers), with the same gates as an application's
    promotion. 403 outside the team; 409 while another change of the tenant is open, when the
    quotas already match or the tenant does not run in an environment; 422 for an unknown
    environment."""
    return promotion_tenant.promote(session, registry=registry, forge=forge,
                                    settings=settings, principal=principal, team=team,
                                    namespace=namespace, source=body.source,
                                    target=body.target, ip=client_ip(request))


@router.get("/applications/{team}/{app}/promotions", response_model=PromotionMatrix)
def get_matrix(team: Label, app: Label, _principal: PrincipalDep, session: SessionDep,
               forge: ForgeDep, settings: SettingsDep) -> PromotionMatrix:
    """Per environment: source, chart or path, revision, sync policy, since when and by which
    PR, and ArgoCD's sync and health when a cluster is connected."""
    return promotion_matrix.matrix(session, forge=forge, settings=settings, team=team, app=app)


@router.post("/promotions/{change_id}/gates", response_model=ChangePublic)
def refresh_gates(change_id: PathId, principal: PrincipalDep, session: SessionDep,
                  forge: ForgeDep, settings: SettingsDep) -> ChangePublic:
    """Evaluate the promotion's gates again (the merge does this itself)."""
    change = promotion_review.refresh_by_id(session, forge=forge, settings=settings,
                                            principal=principal, change_id=change_id)
    return review.list_one(session, change_id=change.id or change_id)


@router.post("/promotions/{change_id}/override", response_model=ChangePublic)
def override(change_id: PathId, body: OverrideRequest, request: Request,
             principal: PrincipalDep, session: SessionDep, forge: ForgeDep,
             settings: SettingsDep) -> ChangePublic:
    """A platform-admin passes the `source-health` gate with a reason (audited); 403 for
    anyone else."""
    change = promotion_review.override(session, forge=forge, settings=settings,
                                       principal=principal, change_id=change_id,
                                       gate=body.gate, reason=body.reason,
                                       ip=client_ip(request))
    return review.list_one(session, change_id=change.id or change_id)
