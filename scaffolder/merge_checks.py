"""The checks that depend on ``main``, evaluated again on the merge result with the current main.

A change's checks ran against the ``main`` it was opened from. By the time it merges, other
changes may have landed: the capacity it fitted into is taken, a name it generates exists, a
policy or CODEOWNERS changed. ``recheck`` evaluates those checks on *current main + the change's
own edits* (the paths its branch changed since its base, read from its head — what a merge of
the branch writes) and returns them as ``CheckResult`` rows:

- ``policies``: the Gatekeeper constraints of current main on every object the change writes;
- ``collisions``: the unit's generated names against every unit of current main and the open
  changes (``checks_runner.collisions``);
- ``capacity``: per environment the change touches, the quotas of current main with the
  change's quota files in place must fit the environment's ``capacity``; an environment already
  over capacity fails only when the change adds to it (a change that adds no quota merges);
- ``codeowners``: when the change touches a team's ``team.yaml`` or an environment's
  ``infra.yaml``, the CODEOWNERS of current main + the change equals what their ownership and
  tiers generate;
- ``team``: the team that owns the change still exists on current main
  (``changeset.teams_on_main``, the choices of the request's ``team`` answer rule), or the
  change creates it. A team's decommission that merged leaves its other open changes red
  here: they edit lists in ``teams/<team>/`` that are gone, and can never merge.

Callers serialise merges per environment and name (``scaffolder.merge_lock``) around this and
the merge itself, so two merges never both take the last capacity.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from gitops import layout
from gitops.forges.base import FileChange, Forge
from scaffolder import capacity, checks_runner
from scaffolder.changeset import load_yaml, teams_on_main
from scaffolder.checks.manifests import DEFAULT_KUBERNETES_VERSION
from scaffolder.codeowners import codeowners_changes
from scaffolder.models import Change, CheckResult
from scaffolder.upgrade import check_conflicts

MAIN_DEPENDENT = ("policies", "collisions", "capacity", "codeowners", "team")


def overlay_of(forge: Forge, change: Change) -> dict[str, bytes | None]:
    """The change's own edits: path → content at its head (None: deleted)."""
    paths = forge.changed_paths(change.base_sha or "", change.head_sha or "")
    return {p: forge.read_file(p, change.head_sha or "") for p in paths}


def _policies(forge: Forge, main: str, overlay: Mapping[str, bytes | None]) -> CheckResult:
    written = {p: c for p, c in overlay.items() if c is not None}
    schemas, objects = checks_runner.check_manifests(
        written, kubernetes_version=DEFAULT_KUBERNETES_VERSION)
    if schemas.state != "success":
        return CheckResult(name="policies", state="failure",
                           summary="the change's manifests do not load", details=schemas.details)
    return checks_runner.check_policies(forge, main, objects)


def _capacity(forge: Forge, main: str, overlay: Mapping[str, bytes | None],
              envs: Sequence[str]) -> CheckResult:
    def infra(env: str) -> dict[str, object]:
        path = f"envs/{env}/infra.yaml"
        return load_yaml(overlay[path] if path in overlay else forge.read_file(path, main))

    return capacity.capacity_result(
        (capacity.usage(forge, main, env, infra=infra(env), overlay=overlay) for env in envs),
        context=" with current main")


def _codeowners(forge: Forge, main: str, overlay: Mapping[str, bytes | None], *,
                org: str | None, admins: Sequence[str]) -> CheckResult:
    # Only team.yaml (owners) and infra.yaml (tier) feed CODEOWNERS; an AppProject list update
    # in teams/<team>/ does not.
    if not any(p.startswith(("teams/", "envs/")) and p.endswith(("/team.yaml", "/infra.yaml"))
               for p in overlay):
        return CheckResult(name="codeowners", state="success",
                           summary="ownership and tiers untouched")
    stale = codeowners_changes(forge, [FileChange(p, c) for p, c in overlay.items()],
                               org=org, admins=admins, ref=main)
    if stale:
        return CheckResult(name="codeowners", state="failure",
                           summary="CODEOWNERS differs from what current main + this change "
                           "generates; update the change", details=[stale[0].path])
    return CheckResult(name="codeowners", state="success", summary="CODEOWNERS is current")


def _team(forge: Forge, main: str, change: Change, overlay: Mapping[str, bytes | None]
          ) -> CheckResult:
    team = change.team
    if not team:
        return CheckResult(name="team", state="success", summary="owned by no team")
    if team in teams_on_main(forge, main):
        return CheckResult(name="team", state="success", summary=f"team {team} exists on main")
    if overlay.get(f"teams/{team}/team.yaml") is not None:
        return CheckResult(name="team", state="success", summary=f"creates team {team}")
    return CheckResult(name="team", state="failure",
                       summary=f"team {team} no longer exists on main; close this change"[:140],
                       details=[f"teams/{team}/ is gone from main (the team was "
                                "decommissioned): a change of the team can never merge"])


def recheck(forge: Forge, change: Change, *, open_units: Iterable[str],
            code_owners: tuple[str | None, Sequence[str]]) -> list[CheckResult]:
    """The main-dependent checks of ``change`` on current main + its edits (see module doc)."""
    main = forge.head()
    overlay = overlay_of(forge, change)
    org, admins = code_owners
    # An upgrade merges only once its conflict markers are resolved on the branch; the
    # manifests and overlays the markers broke are evaluated again on its head.
    conflicts = _upgrade_checks(forge, change, overlay) if change.action == "upgrade" else []
    return [
        _policies(forge, main, overlay),
        checks_runner.collisions(forge, change.unit_key, main, open_units),
        _capacity(forge, main, overlay, change.envs),
        _codeowners(forge, main, overlay, org=org, admins=admins),
        _team(forge, main, change, overlay),
        *conflicts,
    ]


def _upgrade_checks(forge: Forge, change: Change, overlay: Mapping[str, bytes | None]
                    ) -> list[CheckResult]:
    units = sorted({layout.unit_dir(k) for k in layout.keys_for_paths(overlay)})
    files = forge.read_tree(units, change.head_sha or "") if units else {}
    schemas, _objects = checks_runner.check_manifests(
        files, kubernetes_version=DEFAULT_KUBERNETES_VERSION)
    builds, _built = checks_runner.check_kustomize(files)
    return [schemas, builds, check_conflicts(overlay)]


def merged_into(stored: Sequence[Mapping[str, object]], fresh: Sequence[CheckResult]
                ) -> list[dict[str, object]]:
    """The change's check list with the re-evaluated checks replacing (or joining) theirs."""
    by_name = {c.name: c.model_dump() for c in fresh}
    out = [by_name.pop(str(c.get("name")), dict(c)) for c in stored]
    return out + list(by_name.values())
