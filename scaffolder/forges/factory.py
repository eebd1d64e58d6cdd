"""Pick the forge the settings name. GitHub's adapter is imported only when configured."""

from __future__ import annotations

import importlib
from typing import cast

from sqlalchemy import Engine

from portal.settings import ForgeKind, Settings
from scaffolder.forges.base import Forge


def make_forge(settings: Settings, engine: Engine) -> Forge:
    if settings.forge is ForgeKind.github:
        # Imported lazily: PyGithub is loaded only by deployments that use it.
        github = importlib.import_module("scaffolder.forges.github")
        return cast(Forge, github.GitHubForge.from_settings(settings))
    from scaffolder.forges.local import LocalForge

    return LocalForge(settings, engine)
