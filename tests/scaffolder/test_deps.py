"""scaffolder.deps: one registry per app, and its templates loaded before the process serves."""

from __future__ import annotations

import pytest
from fastapi import FastAPI

from portal.settings import Settings
from scaffolder import deps, registry, service


def test_warm_loads_every_template_once_before_the_first_request(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    app = FastAPI()
    loaded: list[str] = []
    real = registry.load_template

    def counting(path, **kwargs):  # type: ignore[no-untyped-def]
        loaded.append(path.name)
        return real(path, **kwargs)

    monkeypatch.setattr(registry, "load_template", counting)
    deps.warm(app, settings)
    names = deps.app_registry(app, settings).names()
    assert sorted(loaded) == sorted(names) and names  # every template, once
    assert deps.app_registry(app, settings) is app.state.scaffolder_registry
    # The search box's first request finds them loaded: nothing parsed on the event loop.
    documents = service.template_documents(registry=deps.app_registry(app, settings))
    assert {d.name for d in documents} == set(names)
    assert sorted(loaded) == sorted(names)
