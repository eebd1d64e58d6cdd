"""Dependencies the page routes share: the scaffolder's registry and forge, the very ones its
API uses (``scaffolder.deps``), so pages and API read one registry instance."""

from __future__ import annotations

from scaffolder.deps import ForgeDep, RegistryDep, get_forge, get_registry

__all__ = ["ForgeDep", "RegistryDep", "get_forge", "get_registry"]
