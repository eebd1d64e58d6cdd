"""Expensive set-up once per session: every template rendered for every case, policies compiled."""

from __future__ import annotations

from pathlib import Path

import pytest

from scaffolder.checks.policy import PolicySet
from tests.templates.support import (
    EDGE_ALL_OFF,
    EDGE_ALL_ON,
    KUSTOMIZE_APP,
    NAMES,
    SKELETON,
    TYPICAL,
    render,
)

CASES = {
    **{f"{name}-typical": (name, TYPICAL[name]) for name in NAMES},
    **{f"{name}-all-on": (name, EDGE_ALL_ON[name]) for name in NAMES},
    **{f"{name}-all-off": (name, EDGE_ALL_OFF[name]) for name in NAMES},
    "application-kustomize": ("application", KUSTOMIZE_APP),
}


@pytest.fixture(scope="session")
def policies() -> PolicySet:
    return PolicySet.from_directory(SKELETON / "platform" / "policies")


@pytest.fixture(scope="session")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for case, (name, answers) in CASES.items():
        out[case] = render(name, answers, tmp_path_factory.mktemp(case))
    return out
