"""FastAPI dependencies of the scaffolder, shared by its API and the portal's pages: one
template registry per app (cached on the app state) and the configured forge."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, FastAPI, Request

from gitops.forges.base import Forge
from gitops.forges.factory import make_forge
from portal.deps import EngineDep, SettingsDep
from portal.settings import Settings
from scaffolder import service as scaffolder_service
from scaffolder.registry import Registry


def app_registry(app: FastAPI, settings: Settings) -> Registry:
    """The app's one template registry (made on first use, kept on ``app.state``)."""
    registry: Registry | None = getattr(app.state, "scaffolder_registry", None)
    if registry is None:
        registry = Registry(settings)
        app.state.scaffolder_registry = registry
    return registry


def warm(app: FastAPI, settings: Settings) -> None:
    """Load every template and its search documents before the process serves: the first
    load (~0.7 s: each template parsed and stored for upgrades) otherwise ran on the event
    loop inside the first search-box request, stalling every connection of that process."""
    scaffolder_service.template_documents(registry=app_registry(app, settings))


def get_registry(request: Request, settings: SettingsDep) -> Registry:
    return app_registry(request.app, settings)


def get_forge(settings: SettingsDep, engine: EngineDep) -> Forge:
    return make_forge(settings, engine)


RegistryDep = Annotated[Registry, Depends(get_registry)]
ForgeDep = Annotated[Forge, Depends(get_forge)]
