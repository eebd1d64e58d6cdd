"""Mounts every domain's API router. Only this module, ``portal.app`` and ``portal.cli`` import
the domain packages."""

from __future__ import annotations

from fastapi import APIRouter

from catalog.drift.views import router as drift_router
from catalog.views import router as catalog_router
from portal.auth.oidc_views import router as oidc_router
from portal.auth.views import router as identity_router
from reconciler.views import router as reconciler_router
from scaffolder.promotion_views import router as promotion_router
from scaffolder.upgrade_views import router as upgrade_router
from scaffolder.views import router as scaffolder_router


def api_router() -> APIRouter:
    router = APIRouter()
    router.include_router(identity_router)
    router.include_router(catalog_router)
    router.include_router(drift_router)
    router.include_router(oidc_router)
    router.include_router(scaffolder_router)
    router.include_router(promotion_router)
    router.include_router(upgrade_router)
    router.include_router(reconciler_router)
    return router
