"""`caas serve --workers 2`, a second `caas serve` and a `caas worker` on one database (SQLite
and PostgreSQL) agree: a merge the worker indexes shows on the next list of every server
process (a new ETag), and a token revoked through one server is refused by the other on its
next request — the generations keying their caches are the database's."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from catalog import service
from devtools.ports import free_port
from gitops.gitreader import GitReader
from portal.auth import service as auth_service
from portal.auth.models import ApiToken
from portal.settings import Settings
from reconciler.models import Cursor
from tests.catalog import gitops
from tests.catalog.conftest import base_files
from tests.conftest import UserFactory
from tests.deploy.test_replicas import wait_ready

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
ROOT = Path(__file__).resolve().parents[2]
LIST = "/api/catalog/namespaces?limit=50"
NEW = "namespace:search/search-crawl"


@pytest.fixture
def repo(tmp_path: Path, engine: Engine) -> gitops.Repo:
    """The catalog fixture repository, indexed, with the poller's cursor at its head (so the
    worker reconciles only what merges next)."""
    r = gitops.Repo(tmp_path / "gitops.git")
    head = r.commit(base_files(), "bootstrap")
    with Session(engine) as s:
        service.reindex(s, forge=GitReader(r.git_dir))
        s.add(Cursor(name="main", commit=head))
        s.commit()
    return r


@pytest.fixture
def servers(settings: Settings, repo: gitops.Repo, tmp_path: Path) -> Iterator[list[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CAAS_", "OTEL_"))}
    env.update({"CAAS_DATABASE_URL": settings.resolved_database_url,
                "CAAS_GITOPS_REPO": str(repo.git_dir), "CAAS_DATA_DIR": str(tmp_path / "data"),
                "CAAS_SECRET_KEY": "workers-share-this-key-0123456789",
                "CAAS_LOG_FORMAT": "text", "CAAS_LOG_LEVEL": "WARNING",
                "CAAS_WORKER_POLL_INTERVAL_S": "0.1", "CAAS_MAIN_POLL_INTERVAL_S": "0.3"})
    processes: list[subprocess.Popen[bytes]] = []
    urls = []
    try:
        for name, args in (("web-a", ["serve", "--workers", "2"]), ("web-b", ["serve"]),
                           ("worker", ["worker"])):
            port = free_port()
            if name == "worker":
                args = [*args, "--health-port", str(port)]
            else:
                args = [*args, "--port", str(port)]
            log = tmp_path / f"{name}.log"
            with log.open("wb") as out:
                process = subprocess.Popen([sys.executable, "-m", "portal.cli", *args],
                                           env=env, cwd=ROOT, stdout=out,
                                           stderr=subprocess.STDOUT, start_new_session=True)
            processes.append(process)
            wait_ready(f"http://127.0.0.1:{port}/readyz", process, log)
            urls.append(f"http://127.0.0.1:{port}")
        children = Path(f"/proc/{processes[0].pid}/task/{processes[0].pid}/children")
        assert len(children.read_text().split()) >= 2, "caas serve --workers 2: two processes"
        yield urls[:2]
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def test_servers_and_a_worker_agree(servers: list[str], repo: gitops.Repo, engine: Engine,
                                    make_user: UserFactory) -> None:
    make_user("dora")
    with Session(engine, expire_on_commit=False) as s:
        _token, clear = auth_service.create_token(s, username="dora", name="agree")
    headers = {"Authorization": f"Bearer {clear}"}
    clients = [httpx.Client(base_url=url, headers=headers, timeout=30) for url in servers]
    etags = set()
    for client in clients:
        for _ in range(4):  # every process of web-a, and the caches warm
            response = client.get(LIST)
            assert response.status_code == 200, response.text
            assert NEW not in {i["key"] for i in response.json()["items"]}
            etags.add(response.headers["etag"])
    assert len(etags) == 1

    repo.commit(gitops.tenant("search", "search-crawl", {"dev": ("1", "2Gi", "5Gi")}),
                "merge: new tenant")  # the worker's poller sees main move and indexes it
    deadline = time.monotonic() + 120
    while NEW not in {i["key"] for i in clients[1].get(LIST).json()["items"]}:
        assert time.monotonic() < deadline, "the worker never indexed the merge"
        time.sleep(0.3)
    for client in clients:
        for _ in range(4):
            response = client.get(LIST, headers={"If-None-Match": etags.pop() if etags else ""})
            assert response.status_code == 200
            assert NEW in {i["key"] for i in response.json()["items"]}

    with Session(engine) as s:
        token_id = s.exec(select(ApiToken.id).where(ApiToken.name == "agree")).one()
    assert clients[0].delete(f"/api/auth/tokens/{token_id}").status_code == 200
    for client in clients:
        for _ in range(4):
            assert client.get(LIST).status_code == 401
