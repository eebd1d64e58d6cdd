"""Reconciler benchmark on PostgreSQL: prints figures beside their floor, asserts nothing.

Jobs without Terraform: catalog indexing, ArgoCD against a Kubernetes API emulator (kmock) and
Keycloak against its fake admin API (both from ``devtools``, served by this process). Every
merge is independent of the others (a new tenant; every 4th also changes a team's members, so it
has a Keycloak job too): nothing orders one merge's jobs after another's.

1. floor: a raw ``SELECT 1`` round trip, and a no-op job's claim + finish through the queue
   (an in-process worker whose handler does nothing); the worker's own CPU per job by kind
   (an in-process worker's thread CPU clock: what the product costs, without the fakes,
   PostgreSQL or the machine's other load);
2. throughput: MERGES merges recorded at once (one transaction, as a burst of webhooks would),
   drained by 1 and then by 2 idle, warmed-up ``caas worker`` processes (woken by PostgreSQL
   NOTIFY; a few merges per worker run first, not measured), ROUNDS times alternately (the
   median ratio is the verdict; a burst of other load lands in one round only):
   jobs/s, the ratio, lost merges and jobs run twice, and the CPU each job cost in the workers,
   in PostgreSQL and in this process (fakes + polling) — their sum bounds what 2 cores allow;
3. merge-to-applied: SAMPLES merges one at a time, each recorded (as the API or the webhook
   does) while one ``caas worker`` process idles at the default 1 s poll interval, until the
   merge is ``applied`` (every job of it succeeded);
4. the planner's time for a one-tenant change in a repository of TENANTS tenants (0 skips it).

    .venv/bin/python bench/reconciler.py [--merges 120] [--samples 30] [--tenants 2000]
        [--rounds 3] [--only cpu|throughput] [--profile DIR]
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from sqlalchemy import create_engine, func, text
from sqlalchemy.engine import make_url
from sqlmodel import Session, col, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devtools.keycloak import FakeKeycloak  # noqa: E402
from devtools.kubernetes import running_emulator, write_kubeconfig  # noqa: E402
from devtools.postgres import postgres_server  # noqa: E402
from devtools.server import serve  # noqa: E402
from gitops import gittree  # noqa: E402
from gitops.forges.base import FileChange, MergeEvent  # noqa: E402
from gitops.forges.local import LocalForge  # noqa: E402
from gitops.git import commit_directory, init_bare, seed_repository  # noqa: E402
from portal import db  # noqa: E402
from portal.settings import Settings  # noqa: E402
from reconciler import queue, service  # noqa: E402
from reconciler.context import JobContext, Result  # noqa: E402
from reconciler.models import Cursor, Job, JobLog, MergeRecord, WorkerRecord  # noqa: E402
from reconciler.planner import plan_merge  # noqa: E402
from reconciler.poller import CURSOR  # noqa: E402
from reconciler.worker import Worker  # noqa: E402

SKELETON = ROOT / "gitops-skeleton"
SOURCE = SKELETON / "tenants" / "platform" / "platform-tools"
USERS = [f"user-{i}" for i in range(20)]
ADMIN_CLIENT = ("portal-admin", "s3cr3t")  # the fake Keycloak's admin client (not a secret)
OPEN = ["recorded", "planned"]
WARM_UP_PER_WORKER = 3  # merges run before the throughput is measured
PROFILE: Path | None = None  # --profile: each worker process runs under cProfile, its stats here
# ``caas worker`` under cProfile timed by the process's CPU clock (not the wall clock: on a
# shared machine, waiting for a core is not the code's cost); the stats are written on exit.
PROFILED = """
import cProfile, runpy, sys, time
profile = cProfile.Profile(time.process_time)
sys.argv = ["caas", "worker"]
profile.enable()
try:
    runpy.run_module("portal.cli", run_name="__main__")
finally:
    profile.disable()
    profile.dump_stats({out!r})
"""


def tenant(team: str, name: str) -> list[FileChange]:
    return [FileChange(f"tenants/{team}/{name}/{p.relative_to(SOURCE)}",
                       p.read_text().replace("platform-tools", name).encode())
            for p in sorted(SOURCE.rglob("*")) if p.is_file()]


def merge_files(i: int) -> list[FileChange]:
    """Merge ``i``: a new tenant; every 4th also changes the platform team's members."""
    files = tenant("platform", f"t-{i}")
    if i % 4 == 0:
        team = (SKELETON / "teams" / "platform" / "team.yaml").read_text()
        files.append(FileChange("teams/platform/team.yaml", (
            team.rstrip("\n") + f"\n# member rotation {i}\n").encode()))
    return files


def push(forge: LocalForge, files: list[FileChange]) -> tuple[str, str]:
    before = forge.head()
    commit = gittree.commit_files(forge.git_dir, parent=before, files=files, message="bench",
                                  author="bench")
    assert gittree.update_ref(forge.git_dir, "main", commit, before)
    return before, commit


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (5 min {five:.1f}) on {os.cpu_count()} CPUs"


# ---- the peers: PostgreSQL, the cluster, Keycloak ----------------------------------------------


class Platform:
    """A PostgreSQL server, kmock and the fake Keycloak, and a fresh database per phase."""

    def __init__(self, server: str, kube_url: str, keycloak_url: str, work: Path) -> None:
        self.server, self.work = server, work
        self.kubeconfig = write_kubeconfig(work / "kubeconfig", kube_url, context="bench")
        self.extra = {"kubeconfig": self.kubeconfig, "kube_context": "bench",
                      "keycloak_url": keycloak_url, "keycloak_realm": "caas",
                      "keycloak_admin_client_id": ADMIN_CLIENT[0],
                      "keycloak_admin_client_secret": ADMIN_CLIENT[1]}

    def database(self, name: str) -> tuple[Settings, LocalForge]:
        admin = create_engine(self.server, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        url = make_url(self.server).set(database=name).render_as_string(hide_password=False)
        settings = Settings.model_validate({
            "data_dir": self.work / name / ".caas", "database_url": url, "secret_key": "bench",
            "log_level": "WARNING", "log_format": "text", "main_poll_interval_s": 3600,
            **self.extra})
        engine = db.make_engine(settings)
        db.upgrade(engine)
        seed_repository(settings.resolved_gitops_repo, SKELETON)
        return settings, LocalForge(settings, engine)

    def env(self, settings: Settings) -> dict[str, str]:
        """``caas worker``'s environment: the same settings; the default poll interval."""
        return {**os.environ, "CAAS_DATABASE_URL": settings.resolved_database_url,
                "CAAS_DATA_DIR": str(settings.data_dir), "CAAS_SECRET_KEY": "bench",
                "CAAS_MAIN_POLL_INTERVAL_S": "3600", "CAAS_LOG_LEVEL": "WARNING",
                "CAAS_LOG_FORMAT": "text", "CAAS_KUBECONFIG": str(self.kubeconfig),
                "CAAS_KUBE_CONTEXT": "bench", "CAAS_KEYCLOAK_URL": self.extra["keycloak_url"],
                "CAAS_KEYCLOAK_REALM": "caas", "CAAS_KEYCLOAK_ADMIN_CLIENT_ID": ADMIN_CLIENT[0],
                "CAAS_KEYCLOAK_ADMIN_CLIENT_SECRET": ADMIN_CLIENT[1]}


@contextmanager
def platform(work: Path) -> Iterator[Platform]:
    keycloak = FakeKeycloak(client_id=ADMIN_CLIENT[0], client_secret=ADMIN_CLIENT[1])
    realm = keycloak.add_realm("caas")
    for user in ("admin", "platform-admin", *USERS):
        realm.add_user(user)
    with postgres_server() as server, running_emulator() as (_emulator, kube_url), \
            serve(keycloak.app) as keycloak_url:
        yield Platform(server, kube_url, keycloak_url, work)


def postgres_cpu(url: str) -> float:
    """CPU seconds PostgreSQL has used so far: the postmaster, its live children and the
    children it has reaped (``/proc``; the server runs on this machine)."""
    with psycopg.connect(make_url(url).set(drivername="postgresql")
                         .render_as_string(hide_password=False)) as conn:
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
        assert row is not None
        postmaster = _stat(int(row[0]))[1]  # while this backend lives
    ticks = float(os.sysconf("SC_CLK_TCK"))
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            pid = int(entry.name)
            fields, ppid = _stat(pid)
        except (OSError, IndexError, ValueError):
            continue
        if pid == postmaster:
            total += sum(int(f) for f in fields[11:15]) / ticks  # utime stime cutime cstime
        elif ppid == postmaster:
            total += sum(int(f) for f in fields[11:13]) / ticks
    return total


def _stat(pid: int) -> tuple[list[str], int]:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return fields, int(fields[1])


def _cpu(pid: int) -> float:
    fields, _ = _stat(pid)
    return sum(int(f) for f in fields[11:13]) / float(os.sysconf("SC_CLK_TCK"))


def busy_cores_s() -> float:
    """Core-seconds the whole machine has been busy so far (``/proc/stat``: all but idle and
    iowait), to tell how much of a window other processes took."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    ticks = [int(f) for f in fields[:8]]
    return (sum(ticks) - ticks[3] - ticks[4]) / float(os.sysconf("SC_CLK_TCK"))


def self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# ---- workers ------------------------------------------------------------------------------------


class Workers:
    """``count`` idle ``caas worker`` processes, registered before any work is recorded. Their
    main-branch poller is told it has seen main's head already: the bench records each merge
    itself (a poller's first look would otherwise reconcile the whole repository, Terraform
    included)."""

    def __init__(self, plat: Platform, settings: Settings, count: int, head: str) -> None:
        engine = db.make_engine(settings)
        with Session(engine) as session:
            session.merge(Cursor(name=CURSOR, commit=head))
            session.commit()
        engine.dispose()
        def command(i: int) -> list[str]:
            if PROFILE is None:
                return [sys.executable, "-m", "portal.cli", "worker"]
            out = PROFILE / f"{settings.data_dir.parent.name}-worker{i}.prof"
            return [sys.executable, "-c", PROFILED.format(out=str(out))]

        # Each worker's stderr goes to a file (a pipe nobody drains would stall a worker that
        # writes more than the pipe holds); its tail is shown when workers fail to start.
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.logs = [settings.data_dir / f"worker{i}.stderr" for i in range(count)]
        self.procs = []
        for i, log in enumerate(self.logs):
            with log.open("wb") as stderr:
                self.procs.append(subprocess.Popen(command(i), env=plat.env(settings), cwd=ROOT,
                                                   stdout=subprocess.DEVNULL, stderr=stderr))
        self.settings = settings
        self.started_cpu = 0.0

    def wait_registered(self, engine: object) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with Session(engine) as session:  # type: ignore[arg-type]
                live = session.exec(select(func.count()).select_from(WorkerRecord).where(
                    col(WorkerRecord.stopped_at).is_(None))).one()
            if live >= len(self.procs):
                time.sleep(1.0)  # past start-up: reaping, the first sweep, LISTEN
                self.mark()
                return
            time.sleep(0.05)
        raise RuntimeError("workers did not start: " + "".join(
            log.read_text(errors="replace")[-2000:] for log in self.logs))

    def mark(self) -> None:
        """From now on: the CPU :meth:`used` reports."""
        self.started_cpu = sum(_cpu(p.pid) for p in self.procs)

    def used(self) -> float:
        """The CPU seconds the workers used since :meth:`mark` (every thread; their own,
        whatever the load), read while they run: their exit (interpreter teardown, ~1 s of
        CPU for 195 jobs) is not the jobs' cost."""
        return sum(_cpu(p.pid) for p in self.procs) - self.started_cpu

    def stop(self) -> None:
        """SIGTERM, and wait for them to exit."""
        for proc in self.procs:
            proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            proc.wait()


def wait_merges(engine: object, commits: list[str] | None = None, *,
                poll_s: float = 0.005, timeout_s: float = 900) -> None:
    """Until no merge (of ``commits``) is open. One plain psycopg connection and one prepared
    query: this process shares the cores with the workers, and an ORM session per look (a
    pre-ping, the statement built anew) cost ~1 ms of CPU each, every 5 ms while a merge-to-
    applied sample runs."""
    url = make_url(engine.url).set(drivername="postgresql")  # type: ignore[attr-defined]
    query = "SELECT count(*) FROM reconciler_merges WHERE state = ANY(%s)"
    args: list[object] = [OPEN]
    if commits is not None:
        query += " AND commit = ANY(%s)"
        args.append(commits)
    deadline = time.monotonic() + timeout_s
    with psycopg.connect(url.render_as_string(hide_password=False), autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(query, args, prepare=True).fetchone()
            if row is not None and row[0] == 0:
                return
            time.sleep(poll_s)
    raise RuntimeError("merges still open after the timeout")


# ---- 1. floor -----------------------------------------------------------------------------------


def floor(plat: Platform, jobs: int) -> None:
    settings, forge = plat.database("bench_floor")
    raw = make_url(settings.resolved_database_url).set(drivername="postgresql")
    with psycopg.connect(raw.render_as_string(hide_password=False)) as conn:
        for _ in range(50):
            conn.execute("SELECT 1")
        started = time.perf_counter()
        for _ in range(1000):
            conn.execute("SELECT 1")
        rtt = (time.perf_counter() - started) / 1000
    engine = db.make_engine(settings)
    # Each no-op job as a real one is: of a merge commit on main (so the worker's "is it on
    # main?" check passes: a commit that is not is refused, audited, and costs more), naming
    # one entity (its timeline gets the start and the end), its merge finalised by it.
    with Session(engine) as session:
        for i in range(jobs):
            before, commit = push(forge, [FileChange(f"notes/floor-{i}.txt", b"floor\n")])
            session.add(MergeRecord(commit=commit, before=before, state="planned",
                                    entities=["namespace:platform/floor"]))
            queue.enqueue(session, commit=commit, jobs=[queue.NewJob(
                unit="noop", kind="noop", entities=("namespace:platform/floor",))])
        session.commit()

    def noop(_ctx: JobContext) -> Result:
        return Result()

    worker = Worker(settings, engine, forge, handlers={"noop": noop})
    worker.run_one()  # warm: registration, first connections
    started, cpu0 = time.perf_counter(), time.process_time()
    ran = 1
    while worker.run_one():
        ran += 1
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu0
    print(f"  raw SELECT 1 round trip (psycopg): {rtt * 1000:.2f} ms")
    print(f"  no-op job (a merge's only job, one entity), claim + finish through the queue "
          f"(in-process worker, {ran - 1} jobs): "
          f"{elapsed / (ran - 1) * 1000:.1f} ms/job, {cpu / (ran - 1) * 1000:.1f} ms CPU/job "
          f"in the worker; {load()}")
    engine.dispose()


# ---- 1b. CPU per job, by kind ------------------------------------------------------------------


def cpu_by_kind(plat: Platform, merges: int) -> None:
    """The worker's own CPU per job (claim, handler, finish) by job kind: an in-process worker
    on the same merges, timed by its thread's CPU clock — not the fakes' (their threads), not
    PostgreSQL's, and hardly moved by other load on the machine (unlike a rate)."""
    settings, forge = plat.database("bench_cpu")
    engine = db.make_engine(settings)
    head = forge.head()
    with Session(engine) as session:
        session.merge(Cursor(name=CURSOR, commit=head))
        session.commit()
    worker = Worker(settings, engine, forge)
    claimed: list[str] = []
    execute = worker.execute

    def spy(job: Job) -> None:
        claimed.append(job.kind)
        execute(job)

    worker.execute = spy  # type: ignore[method-assign]
    per_kind: dict[str, list[float]] = {}
    for i in range(merges + WARM_UP_PER_WORKER):
        before, commit = push(forge, merge_files(i))
        with Session(engine) as session:
            service.record_merge_event(session, event=MergeEvent(commit=commit, before=before))
        while True:
            claimed.clear()
            cpu = time.thread_time()
            if not worker.run_one():
                break
            if i >= WARM_UP_PER_WORKER:  # the first merges pay one-time costs
                per_kind.setdefault(claimed[0], []).append(time.thread_time() - cpu)
    everything = [t for times in per_kind.values() for t in times]
    print("  " + ", ".join(f"{kind} {statistics.median(times) * 1000:.1f}"
                           for kind, times in sorted(per_kind.items()))
          + f" ms (medians); mean over all {len(everything)} jobs "
          f"{statistics.fmean(everything) * 1000:.1f} ms; {load()}")
    engine.dispose()


# ---- 2. throughput ------------------------------------------------------------------------------


def throughput(plat: Platform, merges: int, workers: int, round_: int = 1) -> float:
    settings, forge = plat.database(f"bench_tp{workers}_{round_}")
    engine = db.make_engine(settings)
    warm_up = [push(forge, merge_files(i)) for i in range(WARM_UP_PER_WORKER * workers)]
    events = [push(forge, merge_files(len(warm_up) + i)) for i in range(merges)]
    pool = Workers(plat, settings, workers, forge.head())
    try:
        pool.wait_registered(engine)
        # Each process's first jobs pay one-time costs (first connections, compiled
        # statements, the adapters' first clients): run a few merges before measuring.
        with Session(engine) as session:
            for before, commit in warm_up:
                service.record_merge_event(session, event=MergeEvent(commit=commit,
                                                                     before=before))
        wait_merges(engine, poll_s=0.05)
        pool.mark()
        pg0, me0 = postgres_cpu(settings.resolved_database_url), self_cpu()
        busy0 = busy_cores_s()
        start = time.perf_counter()
        with Session(engine) as session:
            for before, commit in events:
                service.record_merge_event(session, event=MergeEvent(commit=commit,
                                                                     before=before))
        wait_merges(engine, poll_s=0.05)
        elapsed = time.perf_counter() - start
        busy = busy_cores_s() - busy0
        worker_cpu = pool.used()
        pg_cpu = postgres_cpu(settings.resolved_database_url) - pg0
        me_cpu = self_cpu() - me0
    finally:
        pool.stop()
    measured = [commit for _, commit in events]
    with Session(engine) as session:
        states = dict(session.exec(select(MergeRecord.state, func.count()).where(
            col(MergeRecord.commit).in_(measured)).group_by(col(MergeRecord.state))).all())
        jobs = session.exec(select(func.count()).select_from(Job).where(
            col(Job.commit).in_(measured))).one()
        kinds = dict(session.exec(select(Job.kind, func.count()).where(
            col(Job.commit).in_(measured)).group_by(col(Job.kind))).all())
        job_states = dict(session.exec(select(Job.state, func.count()).where(
            col(Job.commit).in_(measured)).group_by(col(Job.state))).all())
        runs = session.exec(select(JobLog.job_id, func.count()).where(
            col(JobLog.message).startswith("attempt ")).group_by(col(JobLog.job_id))).all()
    twice = sum(1 for _, n in runs if n > 1)
    rate = jobs / elapsed
    per_job = (worker_cpu + pg_cpu + me_cpu) / jobs
    print(f"  {workers} worker(s): {merges} merges, {jobs} jobs "
          f"({', '.join(f'{k} {n}' for k, n in sorted(kinds.items()))}) in {elapsed:.2f} s = "
          f"{rate:.1f} jobs/s ({merges / elapsed:.1f} merges/s); merges {states}, jobs "
          f"{job_states}; lost {merges - states.get('applied', 0)}, run twice {twice}; "
          f"{load()}")
    print(f"    CPU per job: workers {worker_cpu / jobs * 1000:.0f} ms, "
          f"PostgreSQL {pg_cpu / jobs * 1000:.0f} ms, bench process (fakes, recording the "
          f"merges, polling) "
          f"{me_cpu / jobs * 1000:.0f} ms; total {per_job * 1000:.0f} ms → at most "
          f"{2 / per_job:.1f} jobs/s on 2 idle cores; other processes kept "
          f"{max(0.0, busy - per_job * jobs) / elapsed:.2f} of the {os.cpu_count()} cores "
          "busy meanwhile")
    engine.dispose()
    return rate


# ---- 3. merge to applied ------------------------------------------------------------------------


def merge_to_applied(plat: Platform, samples: int) -> None:
    settings, forge = plat.database("bench_m2a")
    engine = db.make_engine(settings)
    pool = Workers(plat, settings, 1, forge.head())
    times: list[float] = []
    failed = 0
    try:
        pool.wait_registered(engine)
        for i in range(samples):
            before, commit = push(forge, merge_files(i))
            start = time.perf_counter()
            with Session(engine) as session:
                service.record_merge_event(session, event=MergeEvent(commit=commit,
                                                                     before=before))
            wait_merges(engine, [commit], timeout_s=60)
            times.append(time.perf_counter() - start)
            with Session(engine) as session:
                failed += session.exec(select(MergeRecord.state).where(
                    MergeRecord.commit == commit)).one() != "applied"
            time.sleep(0.2)  # the worker is idle again (waiting on its poll interval or NOTIFY)
    finally:
        pool.stop()
    print(f"  PostgreSQL, 1 `caas worker` process (poll interval "
          f"{settings.worker_poll_interval_s:.0f} s, woken by NOTIFY): median "
          f"{statistics.median(times) * 1000:.0f} ms, p95 {pct(times, 0.95) * 1000:.0f} ms, "
          f"min {min(times) * 1000:.0f} ms ({samples} merges: plan + catalog + argocd, "
          f"+ keycloak for every 4th; {failed} not applied); {load()}")
    engine.dispose()


# ---- 4. planner at scale ------------------------------------------------------------------------


def planner(work: Path, tenants: int, samples: int) -> None:
    tree = work / "tree"
    for path in SKELETON.rglob("*"):
        if path.is_file():
            target = tree / path.relative_to(SKELETON)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    for i in range(tenants):
        for change in tenant(f"team-{i % 50}", f"ns-{i}"):
            target = tree / change.path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(change.content or b"")
    settings = Settings.model_validate({"data_dir": work / ".caas", "secret_key": "bench",
                                        "database_url": f"sqlite:///{work / 'planner.db'}"})
    init_bare(settings.resolved_gitops_repo)
    started = time.perf_counter()
    commit_directory(settings.resolved_gitops_repo, tree, branch="main", message="big")
    print(f"  repository of {tenants} tenants written in {time.perf_counter() - started:.1f} s "
          f"({len(gittree.list_paths(settings.resolved_gitops_repo, 'main'))} files)")
    engine = db.make_engine(settings)
    forge = LocalForge(settings, engine)
    full, pure = [], []
    for i in range(samples):
        quota = tenant(f"team-{i % 50}", f"ns-{i}")
        before, commit = push(forge, [FileChange(quota[-1].path, (quota[-1].content or b"")
                                                 + b"#\n")])
        t0 = time.perf_counter()
        paths = forge.changed_paths(before, commit)
        t1 = time.perf_counter()
        jobs = plan_merge(paths, terraform=lambda env: [])
        t2 = time.perf_counter()
        assert [j.unit for j in jobs] == ["catalog", "argocd"], jobs
        full.append(t2 - t0)
        pure.append(t2 - t1)
    print(f"  one-tenant change: diff + plan median {statistics.median(full) * 1000:.1f} ms, "
          f"p95 {pct(full, 0.95) * 1000:.1f} ms; paths → jobs alone median "
          f"{statistics.median(pure) * 1000:.3f} ms")
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--merges", type=int, default=120)
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--floor-jobs", type=int, default=200)
    parser.add_argument("--tenants", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3,
                        help="throughput: how many times 1 then 2 workers run")
    parser.add_argument("--profile", type=Path, default=None, metavar="DIR",
                        help="run each worker process under cProfile, its stats in DIR "
                        "(the figures then include the profiler's own cost)")
    parser.add_argument("--only", choices=["cpu", "throughput"], default=None,
                        help="run only that phase")
    args = parser.parse_args()
    global PROFILE
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
        PROFILE = args.profile.resolve()
    os.environ.setdefault("CHECKPOINT_DISABLE", "1")
    print(f"== {' '.join(sys.argv)}; {load()}")
    with tempfile.TemporaryDirectory(prefix="caas-bench-rec-") as tmp:
        work = Path(tmp)
        with platform(work) as plat:
            if args.only is None:
                print("== floor")
                floor(plat, args.floor_jobs)
            if args.only in (None, "cpu"):
                print(f"== CPU per job in the worker (claim + handler + finish), {args.merges // 2}"
                      " merges one after another, in-process worker, its thread's CPU clock")
                cpu_by_kind(plat, args.merges // 2)
            if args.only == "cpu":
                return
            print(f"== throughput: {args.merges} independent merges recorded at once")
            # 1 then 2 workers, ROUNDS times: a burst of load from elsewhere on the machine
            # lands in one round, not in every figure of one worker count.
            ratios = []
            for round_ in range(1, args.rounds + 1):
                print(f"  round {round_}:")
                rates = {n: throughput(plat, args.merges, n, round_) for n in (1, 2)}
                ratios.append(rates[2] / rates[1])
                print(f"  round {round_}: 2 workers / 1 worker: {ratios[-1]:.2f} times")
            print(f"  2 workers / 1 worker: median {statistics.median(ratios):.2f} times "
                  f"over {len(ratios)} rounds ({', '.join(f'{r:.2f}' for r in ratios)})")
            if args.only is None:
                print("== merge-to-applied, no Terraform")
                merge_to_applied(plat, args.samples)
        if args.tenants and args.only is None:
            print(f"== planner, repository of {args.tenants} tenants")
            planner(work / "planner", args.tenants, min(args.samples, 20))


if __name__ == "__main__":
    main()
