"""Catalog benchmark: prints figures, asserts nothing.

Generates a GitOps repository of TEAMS x TENANTS tenants in 3 environments (default 50 x 100 x 3
= 15,000 tenant-environment pairs, ~70,000 files, written with ``git fast-import``), then
measures:

- full reindex (``catalog.service.reindex``) into a fresh database;
- incremental reindex after one merge that changes one tenant's quota (``index_commit``);
- throughput and latency (p50/p99, errors) of list and tab search (``?q=``: 1,000 queries the
  cache serves after their first answer; then ones never repeated, through the trigram index,
  and 1-2 character ones, which scan: ``catalog.substring``) on
  ``/api/catalog/namespaces`` and of the search box across every kind
  (``/api/catalog/search``: typeahead queries, 5 hits per kind, one to three words) with an API
  token, at 64 and 256 connections, measured by ``wrk`` (a separate process) against
  ``caas serve`` (a subprocess on a free port), beside its floor: ``/healthz`` on the same
  server at 64 connections; the machine's load average before each run;
- each serving process's peak RSS (VmHWM).

    .venv/bin/python bench/catalog.py [--teams 50] [--tenants 100] [--seconds 10]
                                      [--workers N] [--database sqlite|postgres]
                                      [--database-url postgresql://...]

``--database postgres`` starts a throwaway PostgreSQL (``devtools/postgres.py``, the one the tests
use) for the run; ``--database-url`` uses a server you started.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from sqlmodel import Session

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.gitgen import fast_import  # noqa: E402
from catalog import service  # noqa: E402
from devtools.ports import free_port  # noqa: E402
from devtools.postgres import postgres_server  # noqa: E402
from gitops.git import init_bare, out  # noqa: E402
from gitops.gitreader import GitReader  # noqa: E402
from portal import db  # noqa: E402
from portal.auth import service as auth_service  # noqa: E402
from portal.settings import Settings  # noqa: E402

ENVS = (("dev", "dev"), ("stage", "staging"), ("prod", "prod"))
PASSWORD = "bench-password-1"  # noqa: S105 - a throwaway user in a throwaway database


def tenant_files(team: str, ns: str) -> dict[str, str]:
    root = f"tenants/{team}/{ns}"
    quota = ("apiVersion: v1\nkind: ResourceQuota\nmetadata:\n  name: tenant-quota\n"
             f"  namespace: {ns}\nspec:\n  hard:\n    requests.cpu: \"{{cpu}}\"\n"
             "    limits.cpu: \"{cpu}\"\n    requests.memory: {mem}\n    limits.memory: {mem}\n"
             "    requests.storage: 50Gi\n    pods: \"50\"\n")
    files = {
        f"{root}/.caas-answers.yaml": f"template: tenant\nversion: abc\nanswers:\n  team: {team}\n"
                                      f"  namespace: {ns}\n",
        f"{root}/base/namespace.yaml": f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n"
                                       f"  labels:\n    team: {team}\n",
        f"{root}/base/resourcequota.yaml": quota.format(cpu="4", mem="8Gi"),
        f"{root}/base/limitrange.yaml": "apiVersion: v1\nkind: LimitRange\nmetadata:\n"
                                        "  name: defaults\nspec:\n  limits:\n  - type: Container\n"
                                        "    default: {cpu: 500m, memory: 512Mi}\n",
        f"{root}/base/networkpolicy.yaml": "apiVersion: cilium.io/v2\n"
                                           "kind: CiliumNetworkPolicy\nmetadata:\n"
                                           "  name: default-deny\nspec:\n  endpointSelector: {}\n"
                                           "  ingress: [{}]\n",
        f"{root}/base/rolebindings.yaml": "apiVersion: rbac.authorization.k8s.io/v1\n"
                                          "kind: RoleBinding\nmetadata:\n  name: team-edit\n"
                                          f"subjects:\n- kind: Group\n  name: team-{team}\n"
                                          "roleRef: {kind: ClusterRole, name: edit}\n",
        f"{root}/base/kustomization.yaml": "resources: [namespace.yaml, resourcequota.yaml, "
                                           "limitrange.yaml, networkpolicy.yaml, "
                                           "rolebindings.yaml]\n",
        f"{root}/base/catalog-info.yaml": "apiVersion: backstage.io/v1alpha1\nkind: Resource\n"
                                          f"metadata:\n  name: {ns}\n  description: Tenant {ns}\n"
                                          "spec:\n  type: kubernetes-namespace\n"
                                          f"  owner: group:default/{team}\n  system: caas\n",
    }
    for i, (env, _tier) in enumerate(ENVS):
        files[f"{root}/envs/{env}/kustomization.yaml"] = (
            "resources: [../../base]\npatches:\n  - path: quota.yaml\n")
        files[f"{root}/envs/{env}/quota.yaml"] = quota.format(cpu=str(i + 1), mem=f"{2 * i + 2}Gi")
    return files


def repo_files(teams: int, tenants: int) -> dict[str, str]:
    files: dict[str, str] = {}
    for env, tier in ENVS:
        files[f"envs/{env}/infra.yaml"] = (
            f"name: {env}\nprovider: local\nregion: local\ntier: {tier}\ninstalled: true\n"
            "capacity:\n  cpu: \"40000\"\n  memory: 80000Gi\n  storage: 2000Ti\n")
    for t in range(teams):
        team = f"team{t:02d}"
        files[f"teams/{team}/team.yaml"] = (
            f"apiVersion: caas.io/v1\nkind: Team\nmetadata:\n  name: {team}\nspec:\n"
            f"  displayName: Team {t}\n  owners: [owner{t}]\n  members: [dev{t}a, dev{t}b]\n")
        files[f"teams/{team}/catalog-info.yaml"] = (
            f"apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata:\n  name: {team}\n"
            "spec:\n  type: team\n  children: []\n")
        for n in range(tenants):
            files.update(tenant_files(team, f"{team}-ns{n:03d}"))
        files[f"applications/{team}/web/application.yaml"] = (
            "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n"
            f"  name: {team}-web\nspec:\n  destination:\n    name: prod\n"
            f"    namespace: {team}-ns000\n  source:\n    repoURL: https://git/x\n")
    return files


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


WRK_SCRIPT = """
-- Rotates through the request paths given in PATHS (one per line); every request carries the
-- API token. Written by bench/catalog.py.
local paths = {}
for line in io.lines(os.getenv("PATHS")) do paths[#paths + 1] = line end
local token = os.getenv("TOKEN")
-- Thread k of THREADS takes paths k+1, k+1+THREADS, ...: no two threads send the same path
-- at once (an uncached run stays uncached).
local step = tonumber(os.getenv("THREADS") or "1")
local threads = 0
function setup(thread)
  thread:set("start", threads)
  threads = threads + 1
end
local i = nil
request = function()
  if i == nil then i = start or 0 end
  local path = paths[i % #paths + 1]
  i = i + step
  return wrk.format("GET", path, {["Authorization"] = "Bearer " .. token})
end
"""


def wrk(base: str, token: str, paths: list[str], *, connections: int, seconds: int,
        work: Path) -> dict[str, float]:
    """Run wrk (a separate process) against ``base`` and parse its summary: req/s, p50/p99 in
    ms, errors (socket errors + non-2xx/3xx)."""
    script, listing = work / "rotate.lua", work / "paths.txt"
    script.write_text(WRK_SCRIPT)
    listing.write_text("\n".join(paths) + "\n")
    threads = min(2, connections)
    result = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency",
         "--timeout", "10s", "-s", str(script), base],
        env={**os.environ, "PATHS": str(listing), "TOKEN": token, "THREADS": str(threads)},
        capture_output=True, text=True, check=True)
    text = result.stdout
    figures = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)),  # type: ignore[union-attr]
               "p50": _ms(re.search(r"\s50%\s+(\S+)", text).group(1)),  # type: ignore[union-attr]
               "p99": _ms(re.search(r"\s99%\s+(\S+)", text).group(1))}  # type: ignore[union-attr]
    errors = sum(int(n) for n in re.findall(
        r"(?:connect|read|write|timeout) (\d+)", text.split("Socket errors:", 1)[-1][:200])
        ) if "Socket errors:" in text else 0
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    figures["errors"] = errors + (int(bad.group(1)) if bad else 0)
    return figures


def _ms(value: str) -> float:
    number = float(re.match(r"[\d.]+", value).group(0))  # type: ignore[union-attr]
    unit = value[len(re.match(r"[\d.]+", value).group(0)):]  # type: ignore[union-attr]
    return number * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[unit]


def search_box_queries(teams: int, n: int) -> list[str]:
    """What people type into the search box, keystroke by keystroke (URL-encoded): a team name
    growing from 1 character, a tenant name, two words, an owner, a description word, an
    environment; prefixes like "t" match every entity of a kind."""
    out: list[str] = []
    i = 0
    while len(out) < n:
        team = f"team{i % teams:02d}"
        tenant = f"{team}-ns{i % 100:03d}"
        out += [team[:k] for k in range(1, len(team) + 1)]
        out += [tenant[:k] for k in range(len(team) + 1, len(tenant) + 1)]
        out += [f"ns{i % 100:03d}", f"{team}+ns{i % 10}", f"owner{i % teams}", "tenant",
                ENVS[i % 3][0], "web", "zzz-nothing"]
        i += 1
    return out[:n]


def tab_search_uncached(teams: int, tenants: int) -> list[str]:
    """Namespace-list paths whose ``q`` (7-14 characters) no other path repeats: per tenant
    ``team07-ns042``, ``eam07-ns042``, ``am07-ns042``, ``m07-ns042``, ``t team07-ns042`` (its
    description "Tenant team07-ns042"; each one row), ``ns042-07`` (no row) and, for the first
    ten teams, ``7-ns042`` (one row per team ending in 7). Interleaved: any slice mixes them."""
    queries: list[str] = []
    for n in range(tenants):
        for t in range(teams):
            name = f"{t:02d}-ns{n:03d}"
            queries += [f"team{name}", f"eam{name}", f"am{name}", f"m{name}",
                        f"t%20team{name}", f"ns{n:03d}-{t:02d}"]
            if t < 10:
                queries.append(name[1:])
    return [f"/api/catalog/namespaces?limit=20&q={q}" for q in queries]


def tab_search_scan() -> list[str]:
    """Paths with a 1-2 character ``q`` (letters and digits: most match nothing), which no
    trigram can answer: the scan. Distinct by ``limit`` (10-49) where ``q`` repeats."""
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    queries = list(alphabet) + [a + b for a in alphabet for b in alphabet]
    return [f"/api/catalog/namespaces?limit={limit}&q={q}"
            for limit in range(10, 50) for q in queries]


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def server_pids(parent: int) -> list[int]:
    """The serving processes: ``parent`` and its children (uvicorn's workers)."""
    children = Path(f"/proc/{parent}/task/{parent}/children")
    kids = [int(p) for p in children.read_text().split()] if children.exists() else []
    return kids or [parent]


def vm_hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teams", type=int, default=50)
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--seconds", type=int, default=10, help="Length of each wrk run.")
    parser.add_argument("--workers", type=int, default=None,
                        help="caas serve --workers (default: its own, from the CPU count).")
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite",
                        help="postgres: a throwaway PostgreSQL started for this run.")
    parser.add_argument("--database-url", default=None, help="A database you started.")
    parser.add_argument("--no-serve", action="store_true", help="Only the indexing figures.")
    parser.add_argument("--verbose", action="store_true", help="Print the server's log tail.")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} CPUs, load average {loadavg()} (uptime)")
    if args.database == "postgres" and not args.database_url:
        with postgres_server() as url:
            run(args, url)
    else:
        run(args, args.database_url)


def run(args: argparse.Namespace, database_url: str | None) -> None:
    with tempfile.TemporaryDirectory(prefix="caas-bench-") as tmp:
        work = Path(tmp)
        git_dir = work / "gitops.git"
        init_bare(git_dir)
        started = time.perf_counter()
        files = repo_files(args.teams, args.tenants)
        first = fast_import(git_dir, dict(files), parent=None, message="bootstrap")
        pairs = args.teams * args.tenants * len(ENVS)
        print(f"repository: {args.teams} teams x {args.tenants} tenants x {len(ENVS)} envs = "
              f"{pairs} tenant-environment pairs, {len(files)} files "
              f"(generated in {time.perf_counter() - started:.1f} s)")
        del files

        settings = Settings(data_dir=work / ".caas", database_url=database_url,
                            gitops_repo=git_dir, secret_key="bench-secret-key",  # noqa: S106
                            log_level="WARNING", log_format="text")
        engine = db.make_engine(settings)
        db.upgrade(engine)
        reader = GitReader(git_dir)
        with Session(engine, expire_on_commit=False) as session:
            result = service.reindex(session, forge=reader)
        print(f"full reindex ({engine.dialect.name}): {result.seconds:.2f} s, "
              f"{len(result.added)} entities, {len(result.flagged)} flagged")

        target = "tenants/team07/team07-ns042/envs/prod/quota.yaml"
        changed = tenant_files("team07", "team07-ns042")[target].replace('"3"', '"5"')
        second = fast_import(git_dir, {target: changed}, parent=first, message="one merge")
        paths = out(git_dir, "diff", "--name-only", first, second).split()
        timings = []
        for commit in (second, first, second):  # a few merges back and forth
            with Session(engine, expire_on_commit=False) as session:
                r = service.index_commit(session, forge=reader, commit=commit, changed=paths)
            timings.append(r.seconds * 1000)
        print(f"incremental reindex after one merge ({len(paths)} path, 1 entity): "
              f"median {statistics.median(timings):.1f} ms (runs: "
              + ", ".join(f"{t:.1f}" for t in timings) + ")")

        with Session(engine, expire_on_commit=False) as session:
            auth_service.create_user(session, username="bench", password=PASSWORD)
            _token, token = auth_service.create_token(session, username="bench", name="bench")
        engine.dispose()
        print(f"bench process peak RSS (indexing): "
              f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")

        if args.no_serve:
            return
        if shutil.which("wrk") is None:
            raise SystemExit("wrk is not installed (make system-deps installs it)")
        port = free_port()
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("CAAS_")},
               "CAAS_DATA_DIR": str(settings.data_dir), "CAAS_GITOPS_REPO": str(git_dir),
               "CAAS_PORT": str(port), "CAAS_LOG_LEVEL": "WARNING", "CAAS_LOG_FORMAT": "text",
               "CAAS_SECRET_KEY": "bench-secret-key",
               **({"CAAS_DATABASE_URL": database_url} if database_url else {})}
        command = [sys.executable, "-m", "portal.cli", "serve"] + (
            ["--workers", str(args.workers)] if args.workers else [])
        print(f"server: {' '.join(command[2:])}; load: wrk, {args.seconds} s per run, "
              "API token")
        server = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                                  stderr=(work / "server.log").open("wb"))
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 180
            while True:
                try:
                    if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        raise SystemExit("caas serve did not start: "
                                         f"exit status {server.poll()}") from None
                    time.sleep(0.2)
            time.sleep(1)  # every worker up
            n = 3000
            lists = [f"/api/catalog/namespaces?limit=50&owner=team{i % args.teams:02d}"
                     if i % 3 == 0 else
                     f"/api/catalog/namespaces?limit=50&env={ENVS[i % 3][0]}" if i % 3 == 1
                     else "/api/catalog/namespaces?limit=50" for i in range(n)]
            searches = [f"/api/catalog/namespaces?limit=20&q=ns{i % 1000:03d}" for i in range(n)]
            box = [f"/api/catalog/search?limit=5&q={q}" for q in search_box_queries(args.teams,
                                                                                      n)]
            # Tab search with no query twice in a run, so no page comes from the cache: the
            # trigram index (q of 3+ characters) and the scan it leaves short queries to.
            fresh = tab_search_uncached(args.teams, args.tenants)
            scans = tab_search_scan()
            # One connection: the latency one person typing sees, without queueing.
            runs = [("healthz (floor)", ["/healthz"], c) for c in (64, 256, 1)] + [
                    ("search box", box, 1)] + [
                (label, paths_, c) for label, paths_ in (
                    ("list", lists), ("tab search", searches), ("search box", box))
                for c in (64, 256)] + [
                (label, paths_[c // 64 % 2::2], c) for label, paths_ in (
                    ("tab search uncached", fresh), ("tab scan q<3", scans))
                for c in (64, 256)]
            print(f"distinct queries: list {len(set(lists))}, search {len(set(searches))}, "
                  f"search box {len(set(box))} (not cached); each server process computes a "
                  "list page once per catalog generation; uncached tab search (q of 7-14 "
                  f"characters through the trigram index, 1 in 6 matching nothing) "
                  f"{len(fresh)}, and 1-2 character q (scanned) {len(scans)}, half per "
                  "connection count, none repeated")
            floor: dict[int, dict[str, float]] = {}  # connections → /healthz in this run
            for label, paths_, connections in runs:
                if label not in ("healthz (floor)", "tab search uncached", "tab scan q<3") \
                        and connections == 64:
                    # The first pass after a start (or a merge): pages computed, then cached.
                    before = loadavg()
                    f = wrk(base, token, paths_, connections=connections, seconds=args.seconds,
                            work=work)
                    print(f"{label + ' (cold)':<16} {connections:>3} connections: "
                          f"{f['rps']:7.0f} req/s, p50 {f['p50']:6.1f} ms, p99 {f['p99']:6.1f} "
                          f"ms, {f['errors']:.0f} errors (loadavg before {before})")
                if "q<3" not in label and "uncached" not in label:  # its warm-up would cache
                    wrk(base, token, paths_[:50], connections=8, seconds=1, work=work)
                before = loadavg()
                f = wrk(base, token, paths_, connections=connections, seconds=args.seconds,
                        work=work)
                if label == "healthz (floor)":
                    floor[connections] = f
                same = floor.get(connections)
                beside = (f"; floor /healthz {same['rps']:.0f} req/s p99 {same['p99']:.1f} ms"
                          if same and label != "healthz (floor)" else "")
                print(f"{label:<16} {connections:>3} connections: {f['rps']:7.0f} req/s, "
                      f"p50 {f['p50']:6.1f} ms, p99 {f['p99']:6.1f} ms, "
                      f"{f['errors']:.0f} errors (loadavg before {before}{beside})")
            rss = ", ".join(f"{vm_hwm_mb(pid):.0f}" for pid in server_pids(server.pid))
            print(f"server processes' peak RSS (VmHWM): {rss} MB; load average now {loadavg()}")
            if args.verbose:
                print((work / "server.log").read_text()[-3000:])
        finally:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=30)


if __name__ == "__main__":
    main()
