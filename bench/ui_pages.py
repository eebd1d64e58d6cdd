"""Portal pages benchmark: prints figures, asserts nothing.

Builds a GitOps repository of TEAMS x TENANTS tenants in 3 environments (the catalog
benchmark's generator), indexes it, signs a user in, and times server-side rendering of the
pages a person opens most, sequentially over loopback HTTP against the app under uvicorn (in a
thread of this process; no browser): median and p95 per page over REQUESTS requests. The machine
is shared, so figures vary between runs.

    .venv/bin/python bench/ui_pages.py [--teams 10] [--tenants 100] [--requests 200]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import uvicorn
from sqlmodel import Session

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from catalog import service as catalog_service  # noqa: E402
from gitops.git import init_bare  # noqa: E402
from gitops.gitreader import GitReader  # noqa: E402
from portal import db  # noqa: E402
from portal.app import create_app  # noqa: E402
from portal.auth import service as auth_service  # noqa: E402
from portal.auth.models import Role  # noqa: E402
from portal.deps import SESSION_COOKIE  # noqa: E402
from portal.settings import Settings  # noqa: E402

_spec = importlib.util.spec_from_file_location("bench_catalog", ROOT / "bench" / "catalog.py")
assert _spec is not None and _spec.loader is not None
generator = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(generator)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teams", type=int, default=10)
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="caas-bench-ui-") as tmp:
        work = Path(tmp)
        git_dir = work / "gitops.git"
        init_bare(git_dir)
        generator.fast_import(git_dir, generator.repo_files(args.teams, args.tenants),
                              parent=None, message="bootstrap")
        settings = Settings(data_dir=work / ".caas", gitops_repo=git_dir,
                            secret_key="bench-secret-key",  # noqa: S106
                            log_level="WARNING", log_format="text")
        engine = db.make_engine(settings)
        db.upgrade(engine)
        with Session(engine, expire_on_commit=False) as session:
            result = catalog_service.reindex(session, forge=GitReader(git_dir))
            auth_service.create_user(session, username="bench", password=generator.PASSWORD)
            auth_service.ensure_team(session, name="team07")
            auth_service.add_member(session, team="team07", username="bench",
                                    role=Role.developer)
            _web, cookie, _user = auth_service.login(
                session, username="bench", password=generator.PASSWORD, ip="127.0.0.1",
                ttl_hours=2, rate_limit=100, rate_window_s=60)
        print(f"catalog: {len(result.added)} entities from {args.teams} teams x "
              f"{args.tenants} tenants x 3 environments ({engine.dialect.name})")

        pages = {
            "home": "/",
            "catalog list (50 namespaces)": "/catalog",
            "catalog search": "/catalog?q=ns042",
            "catalog filtered (owner+env)": "/catalog?owner=team07&env=prod",
            "team page": "/catalog/teams/team07",
            "namespace page": "/catalog/namespaces/team07/team07-ns042",
            "environment page": "/catalog/environments/prod",
            "templates gallery": "/templates",
            "request form (tenant)": "/templates/tenant",
        }
        port = generator.free_port()
        server = uvicorn.Server(uvicorn.Config(create_app(settings, engine=engine),
                                               host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60,
                          headers={"accept": "text/html"},
                          cookies={SESSION_COOKIE: cookie}) as client:
            print(f"{'page':32} {'median ms':>10} {'p95 ms':>8} {'KiB':>6}")
            for label, path in pages.items():
                timings = []
                size = 0
                for _ in range(args.requests):
                    started = time.perf_counter()
                    response = client.get(path)
                    timings.append((time.perf_counter() - started) * 1000)
                    if response.status_code != 200:
                        print(f"{label}: HTTP {response.status_code}")
                        break
                    size = len(response.content)
                print(f"{label:32} {statistics.median(timings):10.1f} "
                      f"{percentile(timings, 95):8.1f} {size / 1024:6.1f}")
        server.should_exit = True
        thread.join(timeout=30)
        engine.dispose()


if __name__ == "__main__":
    main()
