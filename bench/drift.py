"""Drift benchmark: prints figures beside their floors, asserts nothing.

Builds a GitOps repository of TEAMS x TENANTS tenants in 3 environments (default 50 x 100 x 3 =
15,000 tenant-environment pairs, 5,053 units, ~80,000 files) whose units are the real templates'
renderings with their ``.caas-answers.yaml`` (one tenant and one team are rendered with
cookiecutter; the others are the same bytes with the names swapped — names of equal length, so
nothing reflows — and a sample is checked against a real render), written with
``git fast-import``; the catalog is indexed. Then, each phase in a process of its own so its
peak RSS (VmHWM) is its own, without a cluster (git and catalog sides):

- floor ``walk``: the raw read of every unit's files (``read_tree``: ls-tree + cat-file);
- floor ``render``: a bare render of SAMPLE tenants, per unit and times the number of units;
- ``baseline``: the interpreter with the portal imported (what every phase's RSS includes);
- ``cold``: drift with an empty cache, measured on the large repository itself: every unit
  rendered with cookiecutter and its hooks (side by side on the render pool's workers), every
  row compared, every unit's rendering digests stored;
- ``warm``: drift again in a new process, nothing changed (the cache is read back from the
  database, as after a restart: the walk, the fingerprints, the catalog comparison; nothing
  rendered);
- ``edit``: one hand edit (the catalog was indexed before it, so its row differs from main
  too) and a team removed by hand (its row left behind), then drift: 3 findings expected, one
  unit rendered (for the diff).

    .venv/bin/python bench/drift.py [--teams 50] [--tenants 100] [--sample 20]
                                    [--database-url postgresql://...]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.gitgen import fast_import  # noqa: E402
from catalog import service as catalog_service  # noqa: E402
from catalog.drift import service as drift_service  # noqa: E402
from catalog.drift.snapshot import read_main  # noqa: E402
from gitops import lists  # noqa: E402
from gitops import yaml as gyaml  # noqa: E402
from gitops.git import init_bare  # noqa: E402
from gitops.gitreader import GitReader  # noqa: E402
from portal import db  # noqa: E402
from portal.settings import Settings  # noqa: E402
from scaffolder import render_pool  # noqa: E402
from scaffolder.parameters import parameter_context, validate_answers  # noqa: E402
from scaffolder.registry import Registry  # noqa: E402
from scaffolder.render import render  # noqa: E402

ENVS = (("dev", "dev"), ("stage", "staging"), ("prod", "prod"))
SKELETON = ROOT / "gitops-skeleton"
TEAM_P, NAME_P = "tproto", "nprot"  # prototype names: team00 / ns000 have the same lengths


def _answers(path: Path) -> dict[str, Any]:
    doc = gyaml.load(path.read_bytes())
    assert isinstance(doc, dict)
    return dict(doc["answers"])


def tenant_answers(registry: Registry, team: str, name: str) -> dict[str, Any]:
    context = parameter_context(teams=frozenset({team}),
                                environments=frozenset(e for e, _ in ENVS))
    return dict(validate_answers(registry.get("tenant").parameters, {
        "team": team, "name": name, "cost_center": "cc-1",
        "environments": [e for e, _ in ENVS]}, context=context))


def swap(files: dict[str, bytes], pairs: list[tuple[str, str]]) -> dict[str, bytes]:
    out_files = {}
    for path, content in files.items():
        for old, new in pairs:
            path, content = path.replace(old, new), content.replace(old.encode(), new.encode())
        out_files[path] = content
    return out_files


def repo_files(registry: Registry, teams: int, tenants: int, sample: int) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    env_answers = _answers(SKELETON / "envs/dev/.caas-answers.yaml")
    for env, tier in ENVS:
        answers = {**env_answers, "environment": env, "tier": tier,
                   "domain_name": f"{env}.caas.internal"}
        files.update(render(registry.get("environment"), answers, target=f"envs/{env}"))
    team_answers = _answers(SKELETON / "teams/platform/.caas-answers.yaml")
    team_proto = render(registry.get("team"), {**team_answers, "team": TEAM_P},
                        target=f"teams/{TEAM_P}")
    proto = render(registry.get("tenant"), tenant_answers(registry, TEAM_P, NAME_P),
                   target=f"tenants/{TEAM_P}/{TEAM_P}-{NAME_P}")
    checked = 0
    for t in range(teams):
        team = f"team{t:02d}"
        team_files = swap(team_proto, [(TEAM_P, team)])
        project = f"teams/{team}/appproject.yaml"
        team_files[project] = lists.with_destinations(
            team_files[project], [f"{team}-ns{n:03d}" for n in range(tenants)])
        files.update(team_files)
        for n in range(tenants):
            ns = f"ns{n:03d}"
            made = swap(proto, [(TEAM_P, team), (NAME_P, ns)])
            if checked < sample and n == t % tenants:  # a real render must be byte-equal
                real = render(registry.get("tenant"), tenant_answers(registry, team, ns),
                              target=f"tenants/{team}/{team}-{ns}")
                assert real == made, f"the name swap differs from a render for {team}/{ns}"
                checked += 1
            files.update(made)
    print(f"  name swap checked against {checked} real renders: byte-equal")
    return files


# ---- phases (each in its own process) -----------------------------------------------------------


def _settings(work: Path, database_url: str | None) -> Settings:
    return Settings(data_dir=work / ".caas", gitops_repo=work / "gitops.git",
                    database_url=database_url, log_level="WARNING")


def phase(name: str, work: Path, database_url: str | None, sample: int) -> dict[str, Any]:
    settings = _settings(work, database_url)
    reader = GitReader(settings.resolved_gitops_repo)
    started = time.perf_counter()
    result: dict[str, Any] = {}
    if name == "walk":
        snapshot = read_main(reader)
        result["units"] = len(snapshot.units)
        result["files"] = sum(len(f) for f in snapshot.units.values())
    elif name == "baseline":
        pass
    elif name == "render":
        registry = Registry(settings)
        tenant = registry.get("tenant")
        render(tenant, tenant_answers(registry, "team01", "ns000"),  # starts the pool's worker
               target="tenants/team01/team01-ns000")
        started = time.perf_counter()
        for i in range(sample):
            render(tenant, tenant_answers(registry, "team00", f"ns{i:03d}"),
                   target=f"tenants/team00/team00-ns{i:03d}")
        result["per_unit"] = (time.perf_counter() - started) / sample
    else:
        engine = db.make_engine(settings)
        from sqlmodel import Session

        with Session(engine) as session:
            report = drift_service.run(session, settings=settings, forge=reader,
                                       sides=["git", "catalog"])
        result["findings"] = len(report.findings)
        result["sides"] = {s.side: round(s.seconds, 2) for s in report.sides}
        result["rendered"] = report.run.rendered if report.run else -1
        result["workers_mib"] = [peak_rss_mib(pid) for pid in render_pool.worker_pids()]
        engine.dispose()
    result["seconds"] = time.perf_counter() - started
    result["rss_mib"] = peak_rss_mib()
    return result


def peak_rss_mib(pid: int | None = None) -> float:
    """A process's peak RSS (VmHWM; this one's by default). Not ru_maxrss: Linux keeps that
    across execve, so a child would report its parent's peak (the generated repository) as its
    own."""
    for line in Path(f"/proc/{pid or 'self'}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(name: str, work: Path, database_url: str | None, sample: int) -> dict[str, Any]:
    argv = [sys.executable, __file__, "--phase", name, "--work", str(work),
            "--sample", str(sample)]
    if database_url:
        argv += ["--database-url", database_url]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"phase {name} failed:\n{proc.stderr}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def build(work: Path, database_url: str | None, teams: int, tenants: int,
          sample: int) -> tuple[dict[str, bytes], str]:
    """The repository and the indexed catalog under ``work``; returns (files, head)."""
    settings = _settings(work, database_url)
    git_dir = settings.resolved_gitops_repo
    init_bare(git_dir)
    t0 = time.perf_counter()
    files = repo_files(Registry(settings), teams, tenants, sample)
    head = fast_import(git_dir, dict(files), parent=None, message="bench")
    pairs = teams * tenants * len(ENVS)
    print(f"repository: {pairs} tenant-environment pairs, {len(files)} files, "
          f"generated in {time.perf_counter() - t0:.1f} s")
    engine = db.make_engine(settings)
    db.upgrade(engine)
    from sqlmodel import Session

    with Session(engine) as session:
        indexed = catalog_service.reindex(session, forge=GitReader(git_dir))
    engine.dispose()
    print(f"catalog indexed: {len(indexed.added)} entities in {indexed.seconds:.1f} s")
    return files, head


def _line(label: str, r: dict[str, Any], extra: str = "") -> str:
    return (f"{label:<13}: {r['seconds']:8.2f} s  peak RSS {r['rss_mib']:7.0f} MiB"
            + (f"  sides {r['sides']}  findings {r['findings']}  rendered {r['rendered']}"
               if "sides" in r else "")
            + (f"  render workers' peak RSS {[round(m) for m in r['workers_mib']]} MiB"
               if r.get("workers_mib") else "")
            + extra)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teams", type=int, default=50)
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--sample", type=int, default=20)
    parser.add_argument("--database-url", default=None,
                        help="PostgreSQL URL (an empty database); default: SQLite files.")
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(phase(args.phase, Path(args.work), args.database_url, args.sample)))
        return
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"database: {'PostgreSQL' if args.database_url else 'SQLite'}")
    with tempfile.TemporaryDirectory(prefix="caas-bench-drift-") as tmp:
        work = Path(tmp) / "large"
        files, head = build(work, args.database_url, args.teams, args.tenants, args.sample)
        base = child("baseline", work, args.database_url, args.sample)
        print(_line("baseline", base, "  (interpreter + portal imported: in every RSS below)"))
        walk = child("walk", work, args.database_url, args.sample)
        units = walk["units"]
        print(_line("floor walk", walk, f"  ({units} units, {walk['files']} files read)"))
        bare = child("render", work, args.database_url, args.sample)
        print(f"floor render : {bare['per_unit'] * 1000:8.0f} ms a tenant (bare render through "
              f"the pool, one at a time, {args.sample} sampled) -> x {units} units = "
              f"{bare['per_unit'] * units:.0f} s in series, "
              f"{bare['per_unit'] * units / render_pool.WORKERS:.0f} s on "
              f"{render_pool.WORKERS} workers  peak RSS {bare['rss_mib']:.0f} MiB")
        cold = child("drift", work, args.database_url, args.sample)
        print(_line("drift cold", cold, f"  ({cold['seconds'] / max(1, units) * 1000:.0f} ms "
                    f"a unit over {units} units, {render_pool.WORKERS} render workers)"))
        warm = child("drift", work, args.database_url, args.sample)
        print(_line("drift warm", warm))
        quota = "tenants/team07/team07-ns042/envs/prod/quota.yaml"
        if quota not in files:
            return
        edited = files[quota].replace(b'requests.cpu: "4"', b'requests.cpu: "9"')
        assert edited != files[quota]
        gone = {p: None for p in files if p.startswith("teams/team49/")}
        fast_import(work / "gitops.git", {quota: edited, **gone}, parent=head, message="edits")
        edit = child("drift", work, args.database_url, args.sample)
        print(_line("drift edit", edit, "  (expected 3: the hand edit in git, its catalog row "
                    "indexed before it, team49's row left behind)"))
        print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
