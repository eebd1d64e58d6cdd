"""The GitOps repository's layout: unit kind + names <-> paths (DESIGN.md, "GitOps repository").

```
teams/<team>/                   kind ``team``         key ``team:<team>``
tenants/<team>/<namespace>/     kind ``namespace``    key ``namespace:<team>/<namespace>``
envs/<env>/                     kind ``environment``  key ``environment:<env>``
applications/<team>/<app>/      kind ``application``  key ``application:<team>/<app>``
```

Every unit is one folder; the catalog's entity keys, the scaffolder's change sets and the
reconciler's planner all map paths through this module.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

FOLDERS = {"team": "teams", "namespace": "tenants", "environment": "envs",
           "application": "applications"}
_DEPTH = {"teams": ("team", 1), "tenants": ("namespace", 2), "envs": ("environment", 1),
          "applications": ("application", 2)}
INFRA_FILE = "infra.yaml"
_INFRA = re.compile(r"^envs/([^/]+)/infra\.yaml$")
# Folders whose content ArgoCD applies (the root Application's sources and what it generates).
ARGOCD_FOLDERS = ("bootstrap/", "appsets/", "platform/", "teams/", "tenants/", "applications/")


def key_for_path(path: str) -> str | None:
    """``tenants/<t>/<ns>/…`` → ``namespace:<t>/<ns>``; None outside the unit folders (the file
    must sit inside the unit's folder)."""
    parts = path.split("/")
    spec = _DEPTH.get(parts[0])
    if spec is None or len(parts) < spec[1] + 2 or not all(parts[1:spec[1] + 1]):
        return None
    return f"{spec[0]}:{'/'.join(parts[1:spec[1] + 1])}"


def key_for_unit(folder: str) -> str:
    """The key of the unit at ``folder`` (``teams/payments`` → ``team:payments``); "" when the
    folder is no unit's."""
    return key_for_path(folder.rstrip("/") + "/_") or ""


def keys_for_paths(paths: Iterable[str]) -> set[str]:
    """The unit keys that ``paths`` belong to (other paths map to nothing)."""
    return {key for path in paths if (key := key_for_path(path)) is not None}


def unit_dir(key: str) -> str:
    """``namespace:a/b`` → ``tenants/a/b``: the folder that holds the unit's files."""
    kind, _, name = key.partition(":")
    return f"{FOLDERS[kind]}/{name}"


def infra_path(env: str) -> str:
    """The environment manifest of ``env``: ``envs/<env>/infra.yaml``."""
    return f"envs/{env}/{INFRA_FILE}"


def changed_environments(paths: Sequence[str]) -> list[str]:
    """Environments whose manifest is among ``paths``, sorted."""
    return sorted({m.group(1) for p in paths if (m := _INFRA.match(p))})


def changed_teams(paths: Sequence[str]) -> list[str]:
    """Teams with a file under ``teams/<team>/`` among ``paths``, sorted."""
    return sorted({p.split("/")[1] for p in paths if p.startswith("teams/") and p.count("/") >= 2})
