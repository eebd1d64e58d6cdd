"""Decommissioning a unit: the change set that deletes its files and keeps every list that
names it true, refused while something still depends on it.

- ``dependants(forge, unit, ref)`` names what still needs the unit: a team's namespaces and
  applications (``tenants/<team>/*``, ``applications/<team>/*``), a namespace's applications
  (those whose stored answers place them in it). An application has none.
- An environment's dependants (what ``installed: false`` is refused for) are
  ``scaffolder.uninstall``'s.
- ``prepare_decommission(...) -> Prepared`` (action ``decommission``): every file under the unit
  deleted; the lists derived from the tenants (``gitops.lists.derived_updates``: the team's
  AppProject destinations) and ``CODEOWNERS`` (``scaffolder.codeowners``) rewritten in the
  same change set. Nothing is written here; refusals (``refusal(...)``, which an entity page
  shows beside a disabled "Remove") are ``Conflict`` (``rule="dependants"``,
  naming them; ``rule="open-changes"`` for a team with open changes, naming them: each would
  be red once the team is gone, ``merge_checks``' ``team`` check), ``NotFound`` (no unit),
  ``Forbidden`` (not the unit's team), ``BadRequest`` for an environment (it is removed with
  ``installed: false``, a Change).

After the merge the reconciler removes what the files described (ArgoCD prunes what the
ApplicationSets no longer generate).
"""

from __future__ import annotations

from collections.abc import Sequence

from gitops import layout
from gitops.environment import read_manifest
from gitops.forges.base import FileChange, Forge
from gitops.paths import is_safe
from portal.auth import policy
from portal.auth.principal import Principal
from portal.errors import BadRequest, CaasError, Conflict, Forbidden, ValidationFailed
from scaffolder.changeset import (
    Prepared,
    derived_lists,
    touched_envs,
    unified,
)
from scaffolder.codeowners import codeowners_changes
from scaffolder.models import ChangePublic, RenderedFile
from scaffolder.registry import Registry
from scaffolder.render import ANSWERS_FILE, read_answers
from scaffolder.units import unit_answers

KINDS = ("team", "namespace", "application")


def _children(forge: Forge, top: str, ref: str) -> list[str]:
    prefix = top.rstrip("/") + "/"
    return sorted({p[len(prefix):].split("/", 1)[0] for p in forge.list_files(prefix, ref)
                   if "/" in p[len(prefix):]})


def dependants(forge: Forge, *, unit: str, ref: str = "main") -> list[str]:
    """Catalog keys of the units that still need ``unit`` (empty: it may go)."""
    parts = unit.split("/")
    if parts[0] == "teams" and len(parts) == 2:
        team = parts[1]
        return ([f"namespace:{team}/{ns}" for ns in _children(forge, f"tenants/{team}", ref)]
                + [f"application:{team}/{a}"
                   for a in _children(forge, f"applications/{team}", ref)])
    if parts[0] == "tenants" and len(parts) == 3:
        team, namespace = parts[1], parts[2]
        found = []
        for app in _children(forge, f"applications/{team}", ref):
            answers = read_answers(forge.read_file(f"applications/{team}/{app}/{ANSWERS_FILE}",
                                                   ref)) or {}
            placed = answers.get("destination_namespace") or f"{team}-{answers.get('tenant')}"
            if placed == namespace:
                found.append(f"application:{team}/{app}")
        return found
    return []


def refusal(forge: Forge, principal: Principal, *, unit: str, ref: str = "main",
            open_changes: Sequence[ChangePublic] = ()) -> CaasError | None:
    """Why ``principal`` may not decommission ``unit`` at ``ref`` — the error
    ``prepare_decommission`` raises (an entity page shows its message beside a disabled
    "Remove") — or None when it may go. ``open_changes``: the open changes of the unit's team
    (``review.open_changes(team=…)``); a team is refused while it has any."""
    if not is_safe(unit):
        return ValidationFailed(f"unit: {unit[:80]!r} is not a safe repository folder",
                                field="unit", rule="safe-path")
    entity = layout.key_for_unit(unit)
    kind = entity.partition(":")[0]
    if kind == "environment":
        return BadRequest("unit: an environment is removed by changing it to `installed: "
                          "false` (its Terraform units are destroyed in reverse order)",
                          field="unit", rule="environment-installed")
    if kind not in KINDS or unit.count("/") != (1 if kind == "team" else 2):
        return BadRequest(f"unit: {unit!r} is not a team, namespace or application folder",
                          field="unit", rule="decommissionable")
    decision = policy.can_request(principal, team=unit.split("/")[1], touches_envs=False)
    if not decision:
        return Forbidden(decision.reason, field="unit", rule="can-request")
    still = dependants(forge, unit=unit, ref=ref)
    if still:
        return Conflict(f"unit: {entity} still has dependants; decommission them first: "
                        + ", ".join(still), field="unit", rule="dependants")
    if kind == "team" and open_changes:
        return Conflict(f"unit: {entity} has open changes; merge or close them first: "
                        + ", ".join(f"change {c.id} ({c.unit_key})" for c in open_changes),
                        field="unit", rule="open-changes")
    return None


def prepare_decommission(forge: Forge, registry: Registry, principal: Principal, *,
                         unit: str, open_changes: Sequence[ChangePublic] = ()) -> Prepared:
    """The change set that removes ``unit`` (a folder such as ``tenants/pay/pay-web``)."""
    unit = unit.strip().strip("/")
    base_sha = forge.head()
    refused = refusal(forge, principal, unit=unit, ref=base_sha, open_changes=open_changes)
    if refused is not None:
        raise refused
    entity = layout.key_for_unit(unit)
    kind = entity.partition(":")[0]
    team = unit.split("/")[1]
    stored = unit_answers(forge=forge, registry=registry, unit=unit)
    template = registry.get(stored.template, field_name="unit")
    paths = forge.list_files(unit + "/", base_sha)
    changes = [FileChange(p, None) for p in paths]
    files = [RenderedFile(path=p, status="deleted", content=None) for p in paths]
    diff_parts = [unified(p, forge.read_file(p, base_sha), None) for p in paths]
    rendered: dict[str, bytes] = {}
    derived_lists(forge, base_sha, rendered, changes, files, diff_parts)
    org, admins = registry.code_owners
    # CODEOWNERS names teams and environments only: a removed team leaves it (as in prepare).
    owners = codeowners_changes(forge, changes, org=org, admins=admins, ref=base_sha) \
        if kind == "team" else []
    for extra in owners:
        old = forge.read_file(extra.path, base_sha)
        changes.append(extra)
        files.append(RenderedFile(path=extra.path, status="modified",
                                  content=(extra.content or b"").decode()))
        diff_parts.append(unified(extra.path, old, extra.content))
        rendered[extra.path] = extra.content or b""
    # Removing a namespace from prod is reviewed like any prod change of it.
    envs = touched_envs(paths, stored.answers)
    tier = policy.strictest_tier(
        read_manifest(forge.read_file(f"envs/{e}/infra.yaml", base_sha)).tier for e in envs)
    routing = policy.describe_routing(tier=tier, touches_envs=False, team=team)
    slug = unit.replace("/", "-")
    title = f"Decommission {entity}"
    return Prepared(
        template=template, answers=dict(stored.answers), action="decommission", target=unit,
        entity=entity, team=team, rendered=rendered, changes=changes, files=files,
        diff="".join(diff_parts), envs=envs, tier=tier, touches_envs=False,
        routing=routing, base_sha=base_sha, branch=f"caas/decommission-{slug}"[:200],
        title=title, body=f"{title}: deletes `{unit}/` ({len(paths)} files) and updates the "
        "lists that name it.", unit_exists=True)
