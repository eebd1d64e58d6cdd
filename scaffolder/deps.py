"""FastAPI dependencies of the scaffolder, shared by its API and the portal's pages: one
template registry per app (cached on the app state) and the configured forge."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from gitops.forges.base import Forge
from gitops.forges.factory import make_forge
from portal.deps import EngineDep, SettingsDep
from scaffolder.registry import Registry


def get_registry(request: Request, settings: SettingsDep) -> Registry:
    registry: Registry | None = getattr(request.app.state, "scaffolder_registry", None)
    if registry is None:
        registry = Registry(settings)
        request.app.state.scaffolder_registry = registry
    return registry


def get_forge(settings: SettingsDep, engine: EngineDep) -> Forge:
    return make_forge(settings, engine)


RegistryDep = Annotated[Registry, Depends(get_registry)]
ForgeDep = Annotated[Forge, Depends(get_forge)]
