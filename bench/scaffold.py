"""Scaffolder latency: dry-run (every check) and request-to-PR (the PR exists, manifests,
kustomize, policies and capacity pending), the time until those checks are green (a worker
thread of the reconciler's queue running them, as ``caas worker`` would), 20 concurrent
requests, and what each check costs, on LocalForge with a GitOps repository of 10 and of 5,000
tenants, beside their floors measured in the same run:

- a bare in-process ``cookiecutter()`` render of the same template (its hook a subprocess) and
  the portal's render of it (``scaffolder.render``: a render worker, the hook in-process);
- the raw git plumbing for one tenant's pull request (``git hash-object`` of the files, one
  ``git mktree`` per rewritten folder, ``commit-tree``, ``update-ref``: the processes the
  commit needs at least through the git CLI) and the same commit written in-process
  (``gitops.gittree.commit_files``, libgit2) plus its ``update-ref``.

    .venv/bin/python bench/scaffold.py [--sizes 10 5000] [--samples 10]

Prints median and p95 (milliseconds) and the load average. Figures only, never a pass/fail.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from cookiecutter.main import cookiecutter  # noqa: E402
from sqlmodel import Session  # noqa: E402

from gitops import git, gittree  # noqa: E402
from gitops.forges.base import FileChange  # noqa: E402
from gitops.forges.local import LocalForge  # noqa: E402
from gitops.git import commit_directory, init_bare  # noqa: E402
from portal import db  # noqa: E402
from portal.auth.principal import Principal  # noqa: E402
from portal.settings import Settings  # noqa: E402
from reconciler.worker import Worker  # noqa: E402
from scaffolder import checks_runner, service  # noqa: E402
from scaffolder.changeset import prepare  # noqa: E402
from scaffolder.checks import kustomize, kustomize_pool  # noqa: E402
from scaffolder.models import Change, ScaffoldRequest  # noqa: E402
from scaffolder.registry import Registry  # noqa: E402
from scaffolder.render import render  # noqa: E402
from scaffolder.render_pool import hook_scratch  # noqa: E402

TEAMS = 50
CONCURRENT = 20
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

        result = {"dry-run": timed(samples, dry)}
        result |= check_costs(forge, registry, samples)
        # 20 requests at once (threads of this process, through the service layer); no worker
        # runs meanwhile: its checks queue up, as they would for a worker in another process.
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=CONCURRENT) as pool:
            list(pool.map(pr, range(1000, 1000 + CONCURRENT)))
        elapsed = time.perf_counter() - started
        print(f"  {CONCURRENT} concurrent requests-to-PR: {elapsed:.2f} s = "
              f"{CONCURRENT / elapsed:.1f} PRs/s (checks queued)")
        worker = Worker(settings, engine, LocalForge(settings, engine))
        started = time.perf_counter()
        while worker.run_one():
            pass
        print(f"  ... their {CONCURRENT} check jobs, one worker: "
              f"{time.perf_counter() - started:.1f} s")
        result |= request_then_green(settings, engine, pr, samples)
        result |= git_floors(settings, samples)
        engine.dispose()
        return result


def request_then_green(settings: Settings, engine: object, pr: Callable[[int], object],
                       samples: int) -> dict[str, tuple[float, float]]:
    """Request-to-PR, and request-to-green (its checks reported by a worker thread that runs
    the reconciler's queue meanwhile), one request after the other."""
    stop = threading.Event()
    worker = Worker(settings, engine, LocalForge(settings, engine))  # type: ignore[arg-type]
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    to_pr: list[float] = []
    to_green: list[float] = []
    try:
        for i in range(-1, samples):
            start = time.perf_counter()
            task = pr(2000 + i)
            opened = time.perf_counter()
            change_id = getattr(task, "change_id", None)
            deadline = opened + 120
            while True:
                with Session(engine) as s:  # type: ignore[arg-type]
                    row = s.get(Change, change_id)
                    if row is not None and row.checks_green:
                        break
                    if row is not None and any(c.get("state") in ("failure", "error")
                                               for c in row.checks):
                        raise SystemExit(f"checks failed: {row.checks}")
                if time.perf_counter() > deadline:
                    raise SystemExit(f"checks of change {change_id} not green after 120 s")
                time.sleep(0.005)
            if i >= 0:  # the first is a warm-up
                to_pr.append((opened - start) * 1000)
                to_green.append((time.perf_counter() - start) * 1000)
    finally:
        stop.set()
        thread.join(timeout=30)
    return {"request-to-PR": _stats(to_pr), "request-to-green": _stats(to_green)}


def _stats(times: list[float]) -> tuple[float, float]:
    times = sorted(times)
    return statistics.median(times), times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]


def check_costs(forge: LocalForge, registry: Registry, samples: int
                ) -> dict[str, tuple[float, float]]:
    """Each check alone on one prepared request (warm caches; kustomize on content it has not
    built before, and once more on content it has), and the deferred ones together as the job
    runs them (side by side)."""
    prepared = prepare(forge, registry, ADMIN, ScaffoldRequest(
        template="tenant", answers=answers("team4", "costs")))
    rendered = prepared.rendered
    version = checks_runner.manifests.DEFAULT_KUBERNETES_VERSION
    objects = checks_runner.check_manifests(rendered, kubernetes_version=version)[1]
    built = checks_runner.check_kustomize(rendered)[1]
    overlay = next(p for p in rendered if p.endswith("/envs/dev/kustomization.yaml"))

    def fresh(i: int) -> dict[str, bytes]:
        """The same files, one comment different: a build kept for other content is no use."""
        return {**rendered, overlay: rendered[overlay] + f"# sample {i}\n".encode()}

    runs: dict[str, Callable[[int], object]] = {
        "check manifests": lambda _i: checks_runner.check_manifests(
            rendered, kubernetes_version=version),
        "check kustomize": lambda i: checks_runner.check_kustomize(fresh(i)),
        "kustomize, kept build": lambda _i: checks_runner.check_kustomize(rendered),
        "check policies": lambda _i: checks_runner.check_policies(
            forge, prepared.base_sha, objects + built),
        "check collisions": lambda _i: checks_runner.check_collisions(forge, prepared, []),
        "check capacity": lambda _i: checks_runner.check_capacity(forge, prepared),
        "deferred checks": lambda i: checks_runner.deferred_checks(
            forge, replace(prepared, rendered=fresh(1000 + i))),
    }
    return {name: timed(samples, run) for name, run in runs.items()}


def _cli_tree(git_dir: Path, tree: str | None, changes: dict[str, str]) -> str:
    """``tree`` with ``changes`` (path → blob id) through ``git ls-tree`` + ``git mktree``."""
    entries: dict[str, str] = {}
    if tree is not None:
        for record in git.out(git_dir, "ls-tree", "-z", tree).split("\0"):
            if record:
                meta, name = record.split("\t", 1)
                entries[name] = meta
    nested: dict[str, dict[str, str]] = {}
    for path, blob in changes.items():
        head, sep, rest = path.partition("/")
        if sep:
            nested.setdefault(head, {})[rest] = blob
        else:
            entries[head] = f"100644 blob {blob}"
    for name, inner in nested.items():
        meta = entries.get(name, "")
        sub = meta.split()[2] if meta.startswith("040000") else None
        entries[name] = f"040000 tree {_cli_tree(git_dir, sub, inner)}"
    listing = "".join(f"{meta}\t{name}\0" for name, meta in sorted(entries.items()))
    return git.out(git_dir, "mktree", "-z", input_bytes=listing.encode()).strip()


def git_floors(settings: Settings, samples: int) -> dict[str, tuple[float, float]]:
    """One new tenant's files committed on main and put on a branch: git CLI plumbing, and the
    in-process commit the forge uses."""
    git_dir = settings.resolved_gitops_repo
    template = Registry(settings).get("tenant")
    files = render(template, {**answers("team3", "floor"), **_defaults()},
                   target="tenants/team3/team3-floor")

    def cli(i: int) -> object:
        head = git.out(git_dir, "rev-parse", "main").strip()
        with tempfile.TemporaryDirectory() as tmp:
            paths = []
            for n, content in enumerate(files.values()):
                (Path(tmp) / str(n)).write_bytes(content + str(i).encode())
                paths.append(str(Path(tmp) / str(n)))
            blobs = git.out(git_dir, "hash-object", "-w", "--stdin-paths",
                            input_bytes="\n".join(paths).encode()).split()
        root = git.out(git_dir, "rev-parse", "main^{tree}").strip()
        tree = _cli_tree(git_dir, root, dict(zip(files, blobs, strict=True)))
        commit = git.out(git_dir, "commit-tree", tree, "-p", head, "-m", "floor").strip()
        return git.out(git_dir, "update-ref", f"refs/heads/floor-cli-{i}", commit)

    def in_process(i: int) -> object:
        head = gittree.resolve(git_dir, "main") or ""
        commit = gittree.commit_files(
            git_dir, parent=head, message="floor", author="bench",
            files=[FileChange(p, c + str(i).encode()) for p, c in files.items()])
        return gittree.update_ref(git_dir, f"floor-lib-{i}", commit, None)

    return {"git plumbing (CLI)": timed(samples, cli),
            "commit in-process": timed(samples, in_process)}


def kustomize_floors(samples: int) -> dict[str, tuple[float, float]]:
    """One tenant overlay built by ``kubectl kustomize``: a cold process, and a warm spare of
    ``scaffolder.checks.kustomize_pool`` (each sample waits, untimed, for a spare to be ready:
    initialised, waiting at its FIFO)."""
    registry = Registry(Settings(data_dir=Path(tempfile.gettempdir()) / "caas-bench-render"))
    files = render(registry.get("tenant"), {**answers("team1", "kfloor"), **_defaults()},
                   target="tenants/team1/team1-kfloor")
    overlay = next(p for p in files if p.endswith("/envs/dev/kustomization.yaml"))
    result = {}
    with tempfile.TemporaryDirectory(prefix="caas-bench-kustomize-") as tmp:
        for path, content in files.items():
            (Path(tmp) / path).parent.mkdir(parents=True, exist_ok=True)
            (Path(tmp) / path).write_bytes(content)
        folder = Path(tmp) / overlay.rsplit("/", 1)[0]
        kustomize_pool.configure(0, kubectl=checks_runner.KUBECTL)
        result["kubectl cold"] = timed(samples, lambda _i: kustomize.build(
            folder, kubectl=checks_runner.KUBECTL))
        kustomize_pool.configure(1, kubectl=checks_runner.KUBECTL)

        def warm(_i: int) -> object:
            while not kustomize_pool.spare_pids(ready=True):
                time.sleep(0.005)
            start = time.perf_counter()
            kustomize.build(folder, kubectl=checks_runner.KUBECTL)
            return time.perf_counter() - start

        warm(-1)  # the first use starts the pool
        times = sorted(float(warm(i)) * 1000 for i in range(samples))
        result["kubectl warm spare"] = (statistics.median(times),
                                        times[min(len(times) - 1, round(0.95 * (len(times) - 1)))])
        kustomize_pool.configure(Settings().kustomize_warm, kubectl=checks_runner.KUBECTL)
    return result


def portal_render(samples: int) -> tuple[float, float]:
    registry = Registry(Settings(data_dir=Path(tempfile.gettempdir()) / "caas-bench-render"))
    template = registry.get("tenant")

    def run(i: int) -> object:
        return render(template, {**answers("team1", f"render{i + 1}"), **_defaults()},
                      target=f"tenants/team1/team1-render{i + 1}")
    return timed(samples, run)


def bare_render(samples: int) -> tuple[float, float]:
    template = REPO / "templates" / "tenant"

    def run(i: int) -> object:
        with tempfile.TemporaryDirectory() as out, hook_scratch(out):  # its hook's script
            return cookiecutter(str(template), no_input=True, output_dir=out,
                                extra_context={"team": "team1", "name": f"bare{i + 1}"})
    return timed(samples, run)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 5000])
    parser.add_argument("--samples", type=int, default=10)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    median, p95 = bare_render(args.samples)
    print(f"bare cookiecutter() render of templates/tenant: median {median:.0f} ms, "
          f"p95 {p95:.0f} ms")
    m, p = portal_render(args.samples)
    print(f"portal render (scaffolder.render, worker + in-process hook): median {m:.0f} ms, "
          f"p95 {p:.0f} ms")
    for name, (m, p) in kustomize_floors(args.samples).items():
        print(f"{name} build of the tenant overlay (kubectl kustomize): median {m:.0f} ms, "
              f"p95 {p:.0f} ms")
    for size in args.sizes:
        print(f"GitOps repository with {size} tenants ({args.samples} samples each):")
        for name, (m, p) in bench_size(size, args.samples).items():
            print(f"  {name:18s} median {m:6.0f} ms  p95 {p:6.0f} ms  "
                  f"({m / median:.1f}x the bare render)")
        print(f"  (load average {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
