"""Production shape: two `caas serve` and two `caas worker` processes on one PostgreSQL.

One user's flow alternates between the web processes (sign in on one, request on the other,
follow the task's live log on the first, approve and merge on the second): sessions, CSRF and
the sign-in rate limit are the database's, so they hold across processes; the merge's jobs
each run exactly once although two workers compete for them.
"""

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
from sqlmodel import Session, col, select

from devtools.ports import free_port
from portal.auth.models import Role
from portal.settings import Settings
from reconciler.models import Job, JobLog, WorkerRecord
from tests.conftest import PASSWORD, UserFactory
from tests.scaffolder.conftest import seed

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900),
              pytest.mark.parametrize("db_backend", ["postgresql"], indirect=True)]
ROOT = Path(__file__).resolve().parents[2]
TENANT = {"team": "payments", "name": "web", "cost_center": "cc-1", "environments": ["dev"]}


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()[-3000:]
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{url} not ready: {log.read_text()[-3000:]}")


@pytest.fixture
def cluster(settings: Settings, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """web A, web B, worker 1, worker 2: one database, one GitOps repository, one key."""
    gitops = seed(settings, tmp_path)
    base_env = {k: v for k, v in os.environ.items()
                if not k.startswith(("CAAS_", "OTEL_"))}
    base_env.update({"CAAS_DATABASE_URL": settings.resolved_database_url,
                     "CAAS_GITOPS_REPO": str(gitops),
                     "CAAS_SECRET_KEY": "replicas-share-this-key-0123456789",
                     "CAAS_LOGIN_RATE_LIMIT": "3", "CAAS_LOG_FORMAT": "text",
                     "CAAS_WORKER_POLL_INTERVAL_S": "0.1", "CAAS_MAIN_POLL_INTERVAL_S": "3600"})
    processes: list[subprocess.Popen[bytes]] = []
    urls: list[str] = []
    try:
        for name, args in (("web-a", ["serve"]), ("web-b", ["serve"]),
                           ("worker-1", ["worker"]), ("worker-2", ["worker"])):
            port = free_port()
            data = tmp_path / name
            data.mkdir()
            env = {**base_env, "CAAS_DATA_DIR": str(data), "CAAS_HOST": "127.0.0.1",
                   "CAAS_PORT": str(port)}
            if args == ["worker"]:
                args = ["worker", "--health-port", str(port)]
            log = tmp_path / f"{name}.log"
            with log.open("wb") as out:
                process = subprocess.Popen([sys.executable, "-m", "portal.cli", *args], env=env,
                                           cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                           start_new_session=True)
            processes.append(process)
            wait_ready(f"http://127.0.0.1:{port}/readyz", process, log)
            urls.append(f"http://127.0.0.1:{port}")
        yield urls[0], urls[1]
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def sign_in(client: httpx.Client, username: str, password: str = PASSWORD) -> httpx.Response:
    return client.post("/api/auth/login", json={"username": username, "password": password})


def test_one_flow_across_two_web_and_two_worker_processes(
        cluster: tuple[str, str], make_user: UserFactory, engine: Engine) -> None:
    make_user("alice", teams={"payments": Role.developer})
    make_user("bob", teams={"payments": Role.developer})
    a_url, b_url = cluster
    a = httpx.Client(base_url=a_url, timeout=120)

    # Sign in on A; the session works on B, and B checks the CSRF token A issued.
    signed = sign_in(a, "alice")
    assert signed.status_code == 200, signed.text
    b = httpx.Client(base_url=b_url, cookies=a.cookies, timeout=120)  # the same browser
    csrf = {"X-CSRF-Token": signed.json()["csrf_token"]}
    assert b.get("/api/auth/me").json()["username"] == "alice"
    body = {"template": "tenant", "answers": TENANT}
    refused = b.post("/api/scaffolder/tasks", json=body)
    assert refused.status_code == 403 and refused.json()["error"]["field"] == "csrf_token"
    created = b.post("/api/scaffolder/tasks", json=body, headers=csrf)
    assert created.status_code == 201, created.text
    task = created.json()

    # The live log on A: every step B wrote, then the end.
    with a.stream("GET", f"/api/scaffolder/tasks/{task['id']}/events") as stream:
        text = "".join(stream.iter_text())
    assert "event: end" in text and '"status": "succeeded"' in text
    for step in ("validate", "checks", "pull-request", "done"):
        assert f'"step":"{step}"' in text.replace(" ", ""), step

    # Bob approves and merges on B (signed in there; his session works on A too).
    bob_b = httpx.Client(base_url=b_url, timeout=120)
    bob_signed = sign_in(bob_b, "bob")
    bob_a = httpx.Client(base_url=a_url, cookies=bob_b.cookies, timeout=120)
    bob_csrf = {"X-CSRF-Token": bob_signed.json()["csrf_token"]}
    assert bob_a.get("/api/auth/me").json()["username"] == "bob"
    cid = task["change_id"]
    assert bob_b.post(f"/api/changes/{cid}/approve", headers=bob_csrf).status_code == 200
    # The PR opened with manifests, kustomize, policies and capacity pending; one of the two
    # workers reports them (README "The check lifecycle"); merging waits until they are green.
    deadline = time.monotonic() + 120
    while not (change := bob_a.get(f"/api/changes/{cid}").json())["checks_green"]:
        assert all(c["state"] in ("pending", "success") for c in change["checks"]), change
        assert time.monotonic() < deadline, change["checks"]
        time.sleep(0.2)
    merged = bob_b.post(f"/api/changes/{cid}/merge", headers=bob_csrf)
    assert merged.status_code == 200, merged.text
    commit = merged.json()["merge_sha"]

    # Both workers compete; each job of the merge runs exactly once.
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        with Session(engine) as session:
            jobs = session.exec(select(Job).where(Job.commit == commit)).all()
        if len(jobs) >= 3 and all(j.state in ("succeeded", "skipped", "failed") for j in jobs):
            break
        time.sleep(0.5)
    assert {j.unit: j.state for j in jobs} == {
        "plan": "succeeded", "catalog": "succeeded", "argocd": "skipped"}
    with Session(engine) as session:
        assert len(session.exec(select(WorkerRecord)).all()) == 2  # both competed
        for job in jobs:
            assert job.attempts == 1, job.unit
            starts = session.exec(select(JobLog.message).where(
                JobLog.job_id == job.id, col(JobLog.message).startswith("attempt "))).all()
            assert len(starts) == 1, (job.unit, starts)

    # The sign-in rate limit counts failures from both processes: 2 on A + 1 on B = 3.
    mallory = {"X-Forwarded-For": "198.51.100.23"}  # another client than the flow's
    for client in (a, a, b):
        got = client.post("/api/auth/login", headers=mallory,
                          json={"username": "alice", "password": "wrong-password-123"})
        assert got.status_code == 401, got.text
    limited = b.post("/api/auth/login", headers=mallory,
                     json={"username": "alice", "password": PASSWORD})
    assert limited.status_code == 429 and limited.json()["error"]["rule"] == "rate_limit"
    for client in (a, b, bob_a, bob_b):
        client.close()
