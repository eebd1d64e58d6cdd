"""Uninstalling an environment (``installed: false``): refused while something runs there.

``installed: false`` destroys the environment's Terraform units, its cluster among them. Like a
team that still has namespaces (``scaffolder.decommission``), it is refused while namespaces or
applications have an overlay in the environment, naming them; ``scaffolder.changeset.prepare``
asks before it renders anything (409, ``field="installed"``, ``rule="dependants"``).
"""

from __future__ import annotations

from gitops.forges.base import Forge
from portal.errors import Conflict


def environment_dependants(forge: Forge, *, env: str, ref: str = "main") -> list[str]:
    """Catalog keys of the namespaces and applications with an overlay in ``env``
    (``tenants/<team>/<ns>/envs/<env>/``, ``applications/<team>/<app>/envs/<env>/``): what
    ``installed: false`` would leave without a cluster."""
    found: set[str] = set()
    for top, kind in (("tenants", "namespace"), ("applications", "application")):
        for path in forge.list_files(f"{top}/", ref):
            parts = path.split("/")
            if len(parts) > 5 and parts[3] == "envs" and parts[4] == env:
                found.add(f"{kind}:{parts[1]}/{parts[2]}")
    return sorted(found)


def uninstall_refusal(forge: Forge, *, env: str, ref: str) -> Conflict | None:
    """Why environment ``env`` may not be uninstalled (``installed: false``) at ``ref``: the
    rule ``refusal`` applies to a team with namespaces, applied to what runs there."""
    still = environment_dependants(forge, env=env, ref=ref)
    if not still:
        return None
    return Conflict(f"installed: environment:{env} still has dependants; remove them from it "
                    "first: " + ", ".join(still), field="installed", rule="dependants")
