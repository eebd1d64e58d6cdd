"""Reconciler benchmark: prints figures, asserts nothing.

- merge-to-applied for a tenant change (no Terraform: plan + catalog + ArgoCD jobs, ArgoCD not
  connected so skipped) with an in-process worker, on SQLite and on PostgreSQL;
- throughput for MERGES tenant merges queued at once, drained by one and by two `caas worker`
  processes on PostgreSQL, with lost and duplicate job counts;
- the planner's time for a one-tenant change in a repository of TENANTS tenants (git diff of the
  merge + turning the paths into jobs), and the pure path → jobs step alone.

    .venv/bin/python bench/reconciler.py [--merges 200] [--tenants 5000] [--samples 20]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from sqlalchemy import create_engine, func, text
from sqlalchemy.engine import make_url
from sqlmodel import Session, col, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.postgres import postgres_server  # noqa: E402
from gitops import gittree  # noqa: E402
from gitops.forges.base import FileChange, MergeEvent  # noqa: E402
from gitops.forges.local import LocalForge  # noqa: E402
from gitops.git import commit_directory, init_bare, seed_repository  # noqa: E402
from portal import db  # noqa: E402
from portal.settings import Settings  # noqa: E402
from reconciler import service  # noqa: E402
from reconciler.models import Job, JobLog, MergeRecord  # noqa: E402
from reconciler.planner import plan_merge  # noqa: E402
from reconciler.worker import Worker  # noqa: E402

SKELETON = ROOT / "gitops-skeleton"
SOURCE = SKELETON / "tenants" / "platform" / "platform-tools"


def tenant(team: str, name: str) -> list[FileChange]:
    return [FileChange(f"tenants/{team}/{name}/{p.relative_to(SOURCE)}",
                       p.read_text().replace("platform-tools", name).encode())
            for p in sorted(SOURCE.rglob("*")) if p.is_file()]


def push(forge: LocalForge, files: list[FileChange]) -> tuple[str, str]:
    before = forge.head()
    commit = gittree.commit_files(forge.git_dir, parent=before, files=files, message="bench",
                                  author="bench")
    assert gittree.update_ref(forge.git_dir, "main", commit, before)
    return before, commit


def settings_for(work: Path, url: str, **extra: object) -> Settings:
    return Settings.model_validate({"data_dir": work / ".caas", "database_url": url,
                                    "secret_key": "bench", "log_level": "WARNING",
                                    "log_format": "text", "worker_poll_interval_s": 0.05,
                                    **extra})


def pg_database(server: str, name: str) -> str:
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(server).set(database=name).render_as_string(hide_password=False)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# ---- 1. merge to applied ------------------------------------------------------------------------


def merge_to_applied(work: Path, url: str, samples: int) -> list[float]:
    settings = settings_for(work, url)
    engine = db.make_engine(settings)
    db.upgrade(engine)
    seed_repository(settings.resolved_gitops_repo, SKELETON)
    forge = LocalForge(settings, engine)
    stop = threading.Event()
    worker = Worker(settings, engine, forge)
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    times: list[float] = []
    for i in range(samples):
        before, commit = push(forge, tenant("platform", f"bench-{i}"))
        start = time.perf_counter()
        with Session(engine) as session:
            service.record_merge_event(session, event=MergeEvent(commit=commit, before=before))
        while True:
            with Session(engine) as session:
                state = session.exec(select(MergeRecord.state).where(
                    MergeRecord.commit == commit)).one()
            if state in ("applied", "committed", "failed"):
                break
            time.sleep(0.002)
        times.append(time.perf_counter() - start)
        if state not in ("applied", "committed"):
            print(f"  merge {i} ended {state}")
    stop.set()
    from reconciler import queue

    queue.notify()
    thread.join()
    engine.dispose()
    return times


# ---- 2. throughput ------------------------------------------------------------------------------


def throughput(work: Path, url: str, merges: int, workers: int) -> None:
    settings = settings_for(work, url, main_poll_interval_s=3600)
    engine = db.make_engine(settings)
    db.upgrade(engine)
    seed_repository(settings.resolved_gitops_repo, SKELETON)
    forge = LocalForge(settings, engine)
    events = [push(forge, tenant("platform", f"t-{i}")) for i in range(merges)]
    with Session(engine) as session:
        for before, commit in events:
            service.record_merge_event(session, event=MergeEvent(commit=commit, before=before))
    env = {**os.environ, "CAAS_DATABASE_URL": url, "CAAS_DATA_DIR": str(settings.data_dir),
           "CAAS_SECRET_KEY": "bench", "CAAS_WORKER_POLL_INTERVAL_S": "0.05",
           "CAAS_MAIN_POLL_INTERVAL_S": "3600", "CAAS_LOG_LEVEL": "WARNING",
           "CAAS_LOG_FORMAT": "text"}
    start = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-m", "portal.cli", "worker"], env=env, cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for _ in range(workers)]
    while True:
        with Session(engine) as session:
            open_merges = session.exec(select(func.count()).select_from(MergeRecord).where(
                col(MergeRecord.state).in_(["recorded", "planned"]))).one()
        if open_merges == 0:
            break
        time.sleep(0.05)
    elapsed = time.perf_counter() - start
    cpu = 0.0
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
        _, _, usage = os.wait4(proc.pid, 0)  # the worker's own CPU time, whatever the load
        cpu += usage.ru_utime + usage.ru_stime
    with Session(engine) as session:
        applied = session.exec(select(func.count()).select_from(MergeRecord).where(
            col(MergeRecord.state).in_(["applied", "committed"]))).one()
        jobs = session.exec(select(func.count()).select_from(Job)).one()
        runs = session.exec(select(func.count()).select_from(JobLog).where(
            col(JobLog.message).startswith("attempt "))).one()
        by_worker = session.exec(select(Job.id, func.count()).join(
            JobLog, col(JobLog.job_id) == col(Job.id)).where(
            col(JobLog.message).startswith("attempt ")).group_by(col(Job.id))).all()
    duplicates = sum(1 for _, n in by_worker if n > 1)
    print(f"  {workers} worker(s): {merges} merges ({jobs} jobs) in {elapsed:.1f} s = "
          f"{merges / elapsed:.1f} merges/s, {jobs / elapsed:.1f} jobs/s; "
          f"lost {merges - applied}, jobs run twice {duplicates} (runs {runs} for {jobs} jobs); "
          f"worker CPU {cpu:.1f} s ({cpu / jobs * 1000:.0f} ms/job incl. start-up), "
          f"load average {os.getloadavg()[0]:.1f}")
    engine.dispose()


# ---- 3. planner at scale ------------------------------------------------------------------------


def planner(work: Path, tenants: int, samples: int) -> None:
    tree = work / "tree"
    for path in SKELETON.rglob("*"):
        if path.is_file():
            target = tree / path.relative_to(SKELETON)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    for i in range(tenants):
        team = f"team-{i % 50}"
        for change in tenant(team, f"ns-{i}"):
            target = tree / change.path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(change.content or b"")
    settings = settings_for(work, f"sqlite:///{work / 'planner.db'}")
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
        before, commit = push(forge, [FileChange(quota[-1].path, quota[-1].content + b"#\n"
                                                 if quota[-1].content else b"#\n")])
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
    parser.add_argument("--merges", type=int, default=200)
    parser.add_argument("--tenants", type=int, default=5000)
    parser.add_argument("--samples", type=int, default=20)
    args = parser.parse_args()
    os.environ.setdefault("CHECKPOINT_DISABLE", "1")
    with tempfile.TemporaryDirectory(prefix="caas-bench-rec-") as tmp:
        work = Path(tmp)
        print("== merge-to-applied, tenant change, in-process worker")
        times = merge_to_applied(work / "sqlite", f"sqlite:///{work / 'sqlite.db'}",
                                 args.samples)
        print(f"  (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
        print(f"  SQLite: median {statistics.median(times) * 1000:.0f} ms, "
              f"p95 {pct(times, 0.95) * 1000:.0f} ms ({len(times)} merges)")
        with postgres_server() as server:
            times = merge_to_applied(work / "pg", pg_database(server, "bench_m2a"),
                                     args.samples)
            print(f"  PostgreSQL: median {statistics.median(times) * 1000:.0f} ms, "
                  f"p95 {pct(times, 0.95) * 1000:.0f} ms ({len(times)} merges)")
            print(f"== throughput, {args.merges} merges queued at once, PostgreSQL")
            for workers in (1, 2):
                throughput(work / f"tp{workers}", pg_database(server, f"bench_tp{workers}"),
                           args.merges, workers)
        print(f"== planner, repository of {args.tenants} tenants")
        planner(work / "planner", args.tenants, args.samples)


if __name__ == "__main__":
    main()
