"""Pick the forge the settings name. GitHub's adapter is imported only when configured.

A GitHub forge is kept per (URL, repository, token, wait bound) for the life of the process, so
its remembered ETags make repeated reads conditional across requests and jobs.
"""

from __future__ import annotations

import importlib
import threading
from typing import cast

from sqlalchemy import Engine

from gitops.forges.base import Forge
from portal.settings import ForgeKind, Settings

_github: dict[tuple[str, str | None, str | None, float], Forge] = {}
_lock = threading.Lock()


def make_forge(settings: Settings, engine: Engine) -> Forge:
    if settings.forge is ForgeKind.github:
        token = settings.github_token.get_secret_value() if settings.github_token else None
        key = (settings.github_url, settings.github_repo, token, settings.github_max_wait_s)
        with _lock:
            if key not in _github:
                # Imported lazily: PyGithub is loaded only by deployments that use it.
                github = importlib.import_module("gitops.forges.github")
                _github[key] = cast(Forge, github.GitHubForge.from_settings(settings))
            return _github[key]
    from gitops.forges.local import LocalForge

    return LocalForge(settings, engine)
