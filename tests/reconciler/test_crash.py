"""Crash safety: `kill -9` a worker (its whole process group: Terraform and the provisioner
die with it) in the middle of a Terraform apply; a new worker claims the job once the lease
expires and the unit ends applied exactly once. The worker is the real `caas worker` process."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlmodel import Session, select

from gitops.forges.base import MergeEvent
from gitops.forges.local import LocalForge
from gitops.git import seed_repository
from portal import db
from portal.settings import Settings
from reconciler import service
from reconciler.models import Job, MergeRecord, UnitApply
from tests.conftest import REPO_ROOT, make_settings
from tests.harness.databases import SqliteFactory
from tests.reconciler.conftest import push

# The slow resource comes last in the unit: Terraform writes its in-memory state whenever a
# resource completes, and a resource still provisioning would be written as created, so
# nothing else may complete while it provisions.
SLOW_UNIT = """
resource "terraform_data" "slow" {
  depends_on = [terraform_data.kms_key, terraform_data.state_bucket, terraform_data.lock_table,
                terraform_data.environment_parameter]
  provisioner "local-exec" {
    command = "echo started >> {started} && sleep 8 && echo applied >> {marker}"
  }
}
"""


def wait_for(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(predicate) and predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def start_worker(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ,
           "CAAS_DATABASE_URL": settings.resolved_database_url,
           "CAAS_DATA_DIR": str(settings.data_dir),
           "CAAS_SECRET_KEY": "test-secret-key-not-for-production",
           "CAAS_TERRAFORM_MODULES_DIR": str(settings.terraform_modules_dir),
           "CAAS_WORKER_LEASE_S": str(settings.worker_lease_s),
           "CAAS_WORKER_POLL_INTERVAL_S": "0.1",
           "CAAS_MAIN_POLL_INTERVAL_S": "3600",
           "CAAS_LOG_FORMAT": "text"}
    with log.open("ab") as out:
        # Its own process group: kill -9 of the group is a node or pod going away.
        return subprocess.Popen([sys.executable, "-m", "portal.cli", "worker"], env=env,
                                cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


@pytest.mark.terraform
@pytest.mark.slow
def test_kill_9_mid_apply_then_a_new_worker_applies_exactly_once(
        tmp_path: Path, sqlite_factory: SqliteFactory) -> None:
    modules = tmp_path / "modules"
    shutil.copytree(REPO_ROOT / "terraform" / "local", modules / "local")
    started, marker = tmp_path / "started.txt", tmp_path / "applied.txt"
    (modules / "local" / "backend" / "slow.tf").write_text(
        SLOW_UNIT.replace("{started}", str(started)).replace("{marker}", str(marker)))
    settings = make_settings(tmp_path, sqlite_factory.new(tmp_path / "db"),
                             terraform_modules_dir=modules, worker_lease_s=5)
    engine = db.make_engine(settings)
    seed_repository(settings.resolved_gitops_repo, REPO_ROOT / "gitops-skeleton")
    forge = LocalForge(settings, engine)
    infra = (REPO_ROOT / "gitops-skeleton" / "envs" / "dev" / "infra.yaml").read_text()
    before, commit = push(forge, {"envs/qa/infra.yaml": infra.replace("name: dev", "name: qa")})
    with Session(engine) as session:
        service.record_merge_event(session, event=MergeEvent(commit=commit, before=before))

    log = tmp_path / "worker.log"
    first = start_worker(settings, log)
    try:
        wait_for(started.exists, 120, "the backend apply to start")
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    assert not marker.exists()
    with Session(engine) as session:
        backend = session.exec(select(Job).where(Job.unit == "terraform:qa/backend")).one()
        assert (backend.state, backend.attempts) == ("running", 1)  # a lease nobody renews

    second = start_worker(settings, log)
    try:
        def settled() -> bool:
            with Session(engine) as s:
                return s.exec(select(MergeRecord.state).where(
                    MergeRecord.commit == commit)).one() in ("applied", "failed")
        wait_for(settled, 240, "the merge to be applied")
    finally:
        second.send_signal(signal.SIGTERM)  # graceful: finishes its job, then exits
        assert second.wait(timeout=60) == 0, log.read_text()[-3000:]

    with Session(engine) as session:
        jobs = [(j.unit, j.state, j.attempts, j.message) for j in session.exec(select(Job))]
    assert marker.exists() and marker.read_text().splitlines() == ["applied"], (
        jobs, log.read_text()[-4000:])
    with Session(engine) as session:
        assert session.exec(select(MergeRecord.state).where(
            MergeRecord.commit == commit)).one() == "applied"
        backend = session.exec(select(Job).where(Job.unit == "terraform:qa/backend")).one()
        assert (backend.state, backend.attempts) == ("succeeded", 2)
        applies = session.exec(select(UnitApply.unit).where(UnitApply.commit == commit)).all()
    assert sorted(applies) == sorted(["backend", "network", "domain", "kubernetes", "addons"])
    state = (settings.data_dir / "terraform" / "qa" / "backend" / "terraform.tfstate").read_text()
    assert state.count('"name": "slow"') == 1
    engine.dispose()
