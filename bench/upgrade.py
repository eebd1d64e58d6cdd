"""Upgrade benchmark: prints figures, asserts nothing.

Generates a GitOps repository (the skeleton plus TEAMS x TENANTS tenant units, default
50 x 100 = 5,000, written with ``git fast-import``) whose tenants were rendered by an older
version of the tenant template (the shipped one without its ``pods`` quota line and with a
``legacy_tier`` answer; kept in the versioned template store). Then measures a dry-run upgrade
of every unit (``upgrade_service.run_upgrades(dry_run=True)``: per unit two renders, one read of
the unit's folder and a three-way merge of its files), beside its floor, a bare render of one
unit (``scaffolder.render.render``): time per unit, the run's peak RSS (ru_maxrss).

Also: the discovery of the units behind over the whole repository (``units_behind``: one
listing and one batched read of the answers files). ``--upgrade-teams K`` dry-runs the units of
the first K teams only (each team's run separately, ``--team``) when the full run would take
longer than you have: the repository keeps all its units, so the per-unit figure is the same.

    .venv/bin/python bench/upgrade.py [--teams 50] [--tenants 100] [--floor-renders 20]
                                      [--upgrade-teams K]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlmodel import Session  # noqa: E402

from bench.gitgen import fast_import  # noqa: E402
from gitops.forges.factory import make_forge  # noqa: E402
from gitops.git import seed_repository  # noqa: E402
from portal import db  # noqa: E402
from portal.auth.principal import Principal  # noqa: E402
from portal.settings import Settings  # noqa: E402
from scaffolder import upgrade as upgrade_module  # noqa: E402
from scaffolder.changeset import parameter_context  # noqa: E402
from scaffolder.models import UpgradeRequest  # noqa: E402
from scaffolder.parameters import validate_answers  # noqa: E402
from scaffolder.registry import Registry, load_template  # noqa: E402
from scaffolder.render import render  # noqa: E402
from scaffolder.upgrade import units_behind  # noqa: E402
from scaffolder.upgrade_service import run_upgrades  # noqa: E402

PODS = "    pods: '{{ cookiecutter.max_pods | int }}'\n"
MAX_PODS = ("        max_pods:\n          title: Maximum pods\n          type: integer\n"
            "          default: 50\n          minimum: 1\n          maximum: 1000\n")
LEGACY = ("        legacy_tier:\n          title: Legacy tier\n          type: string\n"
          "          default: gold\n")
TOKEN = "zzunit"  # noqa: S105 - a placeholder name, replaced per generated unit


def old_tenant(root: Path) -> Path:
    folder = root / "tenant"
    shutil.copytree(ROOT / "templates" / "tenant", folder)
    project = folder / "{{cookiecutter.namespace}}"
    for quota in (project / "base" / "resourcequota.yaml",
                  project / "{{cookiecutter._overlay}}" / "quota.yaml"):
        quota.write_text(quota.read_text().replace(PODS, ""))
    manifest = folder / "template.yaml"
    manifest.write_text(manifest.read_text().replace(MAX_PODS, LEGACY))
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--teams", type=int, default=50)
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--floor-renders", type=int, default=20)
    parser.add_argument("--upgrade-teams", type=int, default=None)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="caas-bench-upgrade-"))
    try:
        run(work, args.teams, args.tenants, args.floor_renders,
            args.teams if args.upgrade_teams is None else args.upgrade_teams)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(work: Path, teams: int, tenants: int, floor_renders: int, upgrade_teams: int) -> None:
    settings = Settings(data_dir=work / ".caas", log_level="WARNING")
    engine = db.make_engine(settings)
    db.upgrade(engine)
    skeleton = work / "skeleton"
    shutil.copytree(ROOT / "gitops-skeleton", skeleton)
    names = [f"team{t:03d}" for t in range(teams)]
    for team in names:
        (skeleton / "teams" / team).mkdir(parents=True)
        (skeleton / "teams" / team / "team.yaml").write_text(f"name: {team}\n")
    seed_repository(settings.resolved_gitops_repo, skeleton)
    registry, forge = Registry(settings), make_forge(settings, engine)
    root = Principal(user_id=0, username="bench", is_platform_admin=True, via="system")
    folder = old_tenant(work / "old")
    old = load_template(folder, trusted=True)
    registry.store.remember("tenant", folder, old.version)
    context = parameter_context(forge, root, registry)

    started = time.perf_counter()
    files: dict[str, bytes] = {}
    for team in names:
        answers = validate_answers(old.parameters, {
            "team": team, "name": TOKEN, "cost_center": "cc-1", "environments": ["dev"]},
            context=context)
        one = render(old, answers, target=f"tenants/{team}/{team}-{TOKEN}")
        for n in range(tenants):
            unit = f"u{n:04d}"
            for path, data in one.items():
                files[path.replace(TOKEN, unit)] = data.replace(TOKEN.encode(), unit.encode())
    fast_import(settings.resolved_gitops_repo, files, parent=forge.head(),
                message="bench tenants")
    print(f"generated {teams * tenants} tenant units ({len(files)} files) in "
          f"{time.perf_counter() - started:.1f} s")
    shutil.rmtree(folder)

    # Floor: a bare render of one unit with the current template (the unit of work).
    current = registry.get("tenant")
    answers = validate_answers(current.parameters, {
        "team": names[0], "name": "floor", "cost_center": "cc-1", "environments": ["dev"]},
        context=context)
    times = []
    for _ in range(floor_renders):
        t0 = time.perf_counter()
        render(current, answers, target=f"tenants/{names[0]}/{names[0]}-floor")
        times.append(time.perf_counter() - t0)
    floor = statistics.median(times)

    t0 = time.perf_counter()
    behind = units_behind(forge, registry, template="tenant")
    found = time.perf_counter() - t0
    print(f"units behind: {len(behind)} found in {found:.2f} s "
          f"({found / max(len(behind), 1) * 1000:.2f} ms per unit)")

    # How much of the run is rendering (the unit of work) under the same load as the rest.
    rendering = [0.0, 0]

    def timed_render(*args: Any, **kwargs: Any) -> dict[str, bytes]:
        start = time.perf_counter()
        try:
            return render(*args, **kwargs)
        finally:
            rendering[0] += time.perf_counter() - start
            rendering[1] += 1

    upgrade_module.render = timed_render  # type: ignore[assignment]
    t0 = time.perf_counter()
    outcomes = []
    with Session(engine) as session:
        if upgrade_teams >= teams:
            outcomes = run_upgrades(session, forge=forge, registry=registry, principal=root,
                                    request=UpgradeRequest(template="tenant", dry_run=True))
        else:
            for team in names[:upgrade_teams]:
                outcomes += run_upgrades(session, forge=forge, registry=registry,
                                         principal=root, request=UpgradeRequest(
                                             template="tenant", team=team, dry_run=True))
    total = time.perf_counter() - t0
    units = sum(len(o.units) for o in outcomes)
    states: dict[str, int] = {}
    for o in outcomes:
        states[o.state] = states.get(o.state, 0) + 1
    self_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"dry-run upgrade: {units} units in {total:.1f} s -> {total / max(units, 1) * 1000:.1f} "
          f"ms per unit; outcomes {states}")
    print(f"of which rendering: {rendering[0]:.1f} s in {rendering[1]} renders "
          f"({rendering[0] / max(rendering[1], 1) * 1000:.1f} ms each); everything else "
          f"{(total - rendering[0]) / max(units, 1) * 1000:.1f} ms per unit")
    print(f"floor (bare render of one unit, median of {floor_renders}): {floor * 1000:.1f} ms;"
          f" per unit / floor = {total / max(units, 1) / floor:.2f} (two renders + a merge "
          "would be ~2)")
    print(f"peak RSS of the run (this process, ru_maxrss): {self_mb:.0f} MB")


if __name__ == "__main__":
    main()
