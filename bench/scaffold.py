"""Scaffolder latency: dry-run and request-to-PR on LocalForge, with a GitOps repository of 10
and of 5,000 tenants, against a bare in-process ``cookiecutter()`` render of the same template.

    .venv/bin/python bench/scaffold.py [--sizes 10 5000] [--samples 10]

Prints median and p95 (milliseconds). Figures only, never a pass/fail.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from cookiecutter.main import cookiecutter  # noqa: E402
from sqlmodel import Session  # noqa: E402

from gitops.forges.local import LocalForge  # noqa: E402
from gitops.git import commit_directory, init_bare  # noqa: E402
from portal import db  # noqa: E402
from portal.auth.principal import Principal  # noqa: E402
from portal.settings import Settings  # noqa: E402
from scaffolder import service  # noqa: E402
from scaffolder.models import ScaffoldRequest  # noqa: E402
from scaffolder.registry import Registry  # noqa: E402
from scaffolder.render import render  # noqa: E402

TEAMS = 50
ADMIN = Principal(user_id=1, username="bench", is_platform_admin=True)


def answers(team: str, name: str) -> dict[str, object]:
    return {"team": team, "name": name, "cost_center": "cc-1", "environments": ["dev"],
            "cpu_quota": "100m", "memory_quota": "128Mi", "storage_quota": "1Gi"}


def build_repository(root: Path, settings: Settings, tenants: int) -> None:
    """The skeleton plus ``tenants`` rendered tenants spread over 50 teams (one render,
    copied with the names replaced, so seeding 5,000 stays quick)."""
    tree = root / "tree"
    shutil.copytree(REPO / "gitops-skeleton", tree)
    infra = tree / "envs" / "dev" / "infra.yaml"
    text = infra.read_text()
    infra.write_text(text.replace('cpu: "8"', 'cpu: "100000"').replace(
        'memory: "16Gi"', 'memory: "100Ti"').replace('storage: "200Gi"', 'storage: "100Pi"'))
    template = Registry(settings).get("tenant")
    sample = render(template, {**answers("zzteam", "zzname"), **_defaults()},
                    target="tenants/zzteam/zzteam-zzname")
    for t in range(TEAMS):
        (tree / "teams" / f"team{t}").mkdir(parents=True, exist_ok=True)
        (tree / "teams" / f"team{t}" / "team.yaml").write_text(f"name: team{t}\n")
    for i in range(tenants):
        team, name = f"team{i % TEAMS}", f"t{i}"
        for path, content in sample.items():
            out = tree / path.replace("zzteam", team).replace("zzname", name)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(content.replace(b"zzteam", team.encode())
                            .replace(b"zzname", name.encode()))
    init_bare(settings.resolved_gitops_repo)
    commit_directory(settings.resolved_gitops_repo, tree, branch="main", message="bench seed")


def _defaults() -> dict[str, object]:
    return {"description": "", "max_pods": 50, "default_cpu_limit": "100m",
            "default_memory_limit": "128Mi", "environment_quotas": {},
            "allow_ingress_controller": True, "allow_monitoring": True,
            "allow_egress_world": False, "http_allow": []}


def timed(samples: int, run: Callable[[int], object]) -> tuple[float, float]:
    run(-1)  # warm caches (schemas, compiled policies, per-commit capacity)
    times = []
    for i in range(samples):
        start = time.perf_counter()
        run(i)
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    return statistics.median(times), p95


def bench_size(tenants: int, samples: int) -> dict[str, tuple[float, float]]:
    with tempfile.TemporaryDirectory(prefix="caas-bench-") as tmp:
        root = Path(tmp)
        settings = Settings(data_dir=root / ".caas", log_format="text")
        engine = db.make_engine(settings)
        db.upgrade(engine)
        seeded = time.perf_counter()
        build_repository(root, settings, tenants)
        print(f"  seeded {tenants} tenants in {time.perf_counter() - seeded:.1f} s")
        forge, registry = LocalForge(settings, engine), Registry(settings)

        def dry(i: int) -> object:
            request = ScaffoldRequest(template="tenant", answers=answers("team1", f"dry{i + 1}"))
            with Session(engine, expire_on_commit=False) as s:
                return service.dry_run(s, registry=registry, forge=forge, principal=ADMIN,
                                       request=request)

        def pr(i: int) -> object:
            request = ScaffoldRequest(template="tenant", answers=answers("team2", f"pr{i + 1}"))
            with Session(engine, expire_on_commit=False) as s:
                task = service.create_task(s, registry=registry, forge=forge, principal=ADMIN,
                                           request=request)
            if task.status != "succeeded":
                raise SystemExit(f"request failed: {task.error}")
            return task

        result = {"dry-run": timed(samples, dry), "request-to-PR": timed(samples, pr)}
        engine.dispose()
        return result


def bare_render(samples: int) -> tuple[float, float]:
    template = REPO / "templates" / "tenant"

    def run(i: int) -> object:
        with tempfile.TemporaryDirectory() as out:
            return cookiecutter(str(template), no_input=True, output_dir=out,
                                extra_context={"team": "team1", "name": f"bare{i + 1}"})
    return timed(samples, run)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 5000])
    parser.add_argument("--samples", type=int, default=10)
    args = parser.parse_args()
    median, p95 = bare_render(args.samples)
    print(f"bare cookiecutter() render of templates/tenant: median {median:.0f} ms, "
          f"p95 {p95:.0f} ms")
    for size in args.sizes:
        print(f"GitOps repository with {size} tenants ({args.samples} samples each):")
        for name, (m, p) in bench_size(size, args.samples).items():
            print(f"  {name:14s} median {m:6.0f} ms  p95 {p:6.0f} ms  "
                  f"({m / median:.1f}x the bare render)")


if __name__ == "__main__":
    main()
