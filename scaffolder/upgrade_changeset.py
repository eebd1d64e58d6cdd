"""An upgrade's change set: the merges of one PR's units (``scaffolder.upgrade.plan_unit``) as a
``Prepared`` the scaffolder's task machinery opens like any other (``service.upgrade_task``).

- ``group_key(behind, per)`` — what one PR covers: the unit's folder (``per="unit"``), or
  ``upgrade/<template>/<team>`` (``per="team"``: every unit of one team and template);
- ``may_upgrade(principal, team)`` — a platform-admin upgrades every unit, a reviewer of a team
  that team's units (environments: platform-admins only);
- ``prepare_upgrade(forge, registry, *, key, plans, base_sha)`` — the ``Prepared`` (action
  ``upgrade``): the merged files, the lists derived from the tenants and CODEOWNERS kept true,
  labels ``upgrade`` (+ ``upgrade-conflict``), a body naming the answers added and dropped and
  the conflicted files. Nothing is written here.
"""

from __future__ import annotations

from collections.abc import Sequence

from gitops import layout
from gitops.environment import read_manifest
from gitops.forges.base import Forge
from portal.auth import policy
from portal.auth.models import Role
from portal.auth.principal import Principal
from portal.errors import Conflict
from scaffolder.changeset import ChangeList, Prepared, derived_lists, load_yaml, touched_envs
from scaffolder.registry import Registry
from scaffolder.upgrade import Behind, Run, UnitPlan, answers_changes, behind_at, plan_unit

CONFLICT_LABEL = "upgrade-conflict"
UPGRADE_LABEL = "upgrade"


def group_key(behind: Behind, per: str) -> str:
    """The key (and reserved unit) of the PR that upgrades ``behind``."""
    if per == "team" and behind.team is not None:
        return f"upgrade/{behind.template}/{behind.team}"
    return behind.unit


def may_upgrade(principal: Principal, team: str | None) -> bool:
    """A platform-admin: every unit; a team reviewer: the units of that team."""
    if principal.is_platform_admin:
        return True
    return team is not None and principal.team_roles.get(team) == Role.reviewer


def prepare_upgrade(forge: Forge, registry: Registry, *, key: str, plans: Sequence[UnitPlan],
                    base_sha: str) -> Prepared:
    """The change set of ``plans`` (all of one template), read at ``base_sha`` (module doc)."""
    first = plans[0].behind
    template = registry.get(first.template)
    diff = ChangeList()
    rendered: dict[str, bytes] = {}
    for plan in plans:
        for change in plan.changes:
            new = change.content
            diff.add(change.path, plan.statuses[change.path], plan.ours.get(change.path), new,
                     new.decode(errors="replace") if new is not None else None)
        rendered.update(plan.files)
    derived_lists(forge, base_sha, rendered, diff.changes, diff.files, diff.diff_parts)
    if any(p.behind.unit.startswith(("teams/", "envs/")) for p in plans):
        diff.add_codeowners(forge, registry, base_sha)
    answers = {k: v for p in plans for k, v in p.answers.items()}
    envs = touched_envs(list(rendered), answers)
    tier = policy.strictest_tier(
        read_manifest(load_yaml(forge.read_file(layout.infra_path(e), base_sha))).tier
        for e in envs)
    touches = any(p.behind.unit.startswith("envs/") for p in plans)
    team = first.team
    conflicts = [c for p in plans for c in p.conflicts]
    entity = layout.key_for_unit(key)
    name = entity or f"{first.template} units of team {team}"
    title = f"Upgrade {name} to template {template.name} {template.version[:12]}"
    return Prepared(
        template=template, answers=answers if len(plans) == 1 else {}, action="upgrade",
        target=key, entity=entity, team=team, rendered=rendered, changes=diff.changes,
        files=diff.files, diff="".join(diff.diff_parts), envs=envs, tier=tier,
        touches_envs=touches,
        routing=policy.describe_routing(tier=tier, touches_envs=touches, team=team),
        base_sha=base_sha, branch=f"caas/upgrade-{key.replace('/', '-')}"[:200],
        title=title[:300], body=body(plans, template.version), unit_exists=True,
        extra_labels=[UPGRADE_LABEL, *([CONFLICT_LABEL] if conflicts else [])])


def replan(forge: Forge, registry: Registry, *, key: str, units: Sequence[str]) -> Prepared:
    """The change set of ``units`` merged again from current main (a retried upgrade task).
    ``Conflict`` when none of them is behind any more."""
    base_sha = forge.head()
    found = [b for u in units if (b := behind_at(forge, registry, u, base_sha)) is not None]
    if not found:
        raise Conflict(f"{key}: no unit is behind its template any more", field="units",
                       rule="upgrade-current")
    with Run(forge, registry) as run:
        plans = [plan_unit(run, b, ref=base_sha) for b in found]
    return prepare_upgrade(forge, registry, key=key, plans=plans, base_sha=base_sha)


def body(plans: Sequence[UnitPlan], version: str) -> str:
    """The PR body's upgrade section: per unit the versions, the answers added and dropped,
    and the conflicted files (with how to resolve them)."""
    lines: list[str] = []
    for plan in plans:
        b = plan.behind
        lines += [f"#### `{b.unit}`: template `{b.template}` `{b.version[:12] or '?'}` → "
                  f"`{version[:12]}`", "", "Answers:", *answers_changes(plan.added, plan.dropped),
                  ""]
    conflicts = [c for p in plans for c in p.conflicts]
    if conflicts:
        lines += ["**Conflicts** (edits on main and the new template change the same lines; "
                  "resolve the markers on this branch — the `caas/conflicts` check stays red "
                  "until then):", *[f"- `{c}`" for c in conflicts], ""]
    else:
        lines += ["Three-way merge without conflicts: edits made on main are kept.", ""]
    return "\n".join(lines)
