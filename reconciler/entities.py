"""Which catalog entities a changed path belongs to: the catalog's own mapping, sorted."""

from __future__ import annotations

from collections.abc import Iterable

from catalog import service as catalog_service


def entities_for_paths(paths: Iterable[str]) -> list[str]:
    """``team:<t>``, ``namespace:<t>/<ns>``, ``environment:<env>``, ``application:<t>/<app>``;
    paths outside those folders (bootstrap, platform, appsets, CODEOWNERS) map to nothing."""
    return sorted(catalog_service.entities_for_paths(paths))
