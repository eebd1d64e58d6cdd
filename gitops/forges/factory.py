"""Pick the forge the settings name. GitHub's adapter is imported only when configured."""

from __future__ import annotations

import importlib
from typing import cast

from sqlalchemy import Engine

from gitops.forges.base import Forge
from portal.settings import ForgeKind, Settings


def make_forge(settings: Settings, engine: Engine) -> Forge:
    if settings.forge is ForgeKind.github:
        # Imported lazily: PyGithub is loaded only by deployments that use it.
        github = importlib.import_module("gitops.forges.github")
        return cast(Forge, github.GitHubForge.from_settings(settings))
    from gitops.forges.local import LocalForge

    return LocalForge(settings, engine)
