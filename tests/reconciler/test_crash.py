"""Crash safety with the real `caas worker` process, the real `terraform` and both databases:
`kill -9` of the worker's PID alone (not its group) in the middle of a `local-exec` provisioner.
Terraform, in its own session, gets one interrupt from the worker's death: it stops, saves its
state (the half-provisioned resource tainted) and releases its lock — it is not left applying
on its own. A new worker reaps what is left, reclaims the job once the dead worker's heartbeat
is older than the grace (long before the lease ends) and applies the unit once: the
provisioner's side effect completes exactly once."""

from __future__ import annotations

import json
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
from reconciler import service, tfproc
from reconciler.models import Job, MergeRecord, UnitApply
from tests.conftest import REPO_ROOT, make_settings
from tests.reconciler.conftest import push

# The slow resource comes last in the unit: Terraform writes its in-memory state whenever a
# resource completes, and a resource still provisioning would be written as created, so
# nothing else may complete while it provisions. The marker is written at the provisioner's
# end: it counts completed side effects.
SLOW_UNIT = """
resource "terraform_data" "slow" {
  depends_on = [terraform_data.kms_key, terraform_data.state_bucket, terraform_data.lock_table,
                terraform_data.environment_parameter]
  provisioner "local-exec" {
    command = "echo started >> {started} && sleep 8 && echo applied >> {marker}"
  }
}
"""
GRACE_S = 3


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
           "CAAS_WORKER_HEARTBEAT_GRACE_S": str(settings.worker_heartbeat_grace_s),
           "CAAS_WORKER_POLL_INTERVAL_S": "0.1",
           "CAAS_MAIN_POLL_INTERVAL_S": "3600",
           "CAAS_LOG_FORMAT": "text"}
    with log.open("ab") as out:
        # A session of its own, so that killing it never touches pytest.
        return subprocess.Popen([sys.executable, "-m", "portal.cli", "worker"], env=env,
                                cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


@pytest.mark.terraform
@pytest.mark.slow
def test_kill_9_of_the_worker_pid_mid_provisioner_then_a_new_worker_applies_once(
        tmp_path: Path, database_url: str) -> None:
    modules = tmp_path / "modules"
    shutil.copytree(REPO_ROOT / "terraform" / "local", modules / "local")
    started, marker = tmp_path / "started.txt", tmp_path / "applied.txt"
    (modules / "local" / "backend" / "slow.tf").write_text(
        SLOW_UNIT.replace("{started}", str(started)).replace("{marker}", str(marker)))
    # A long lease and a short heartbeat grace: recovery must not wait for the lease.
    settings = make_settings(tmp_path, database_url, terraform_modules_dir=modules,
                             worker_lease_s=600, worker_heartbeat_grace_s=GRACE_S)
    engine = db.make_engine(settings)
    seed_repository(settings.resolved_gitops_repo, REPO_ROOT / "gitops-skeleton")
    forge = LocalForge(settings, engine)
    infra = (REPO_ROOT / "gitops-skeleton" / "envs" / "dev" / "infra.yaml").read_text()
    before, commit = push(forge, {"envs/qa/infra.yaml": infra.replace("name: dev", "name: qa")})
    with Session(engine) as session:
        service.record_merge_event(session, event=MergeEvent(commit=commit, before=before))
    work = settings.data_dir / "terraform" / "qa" / "backend"

    log = tmp_path / "worker.log"
    first = start_worker(settings, log)
    try:
        wait_for(started.exists, 120, "the backend's provisioner to start")
        owner = tfproc.read_owner(work)
        assert owner is not None and owner.command == "apply" and owner.worker_pid == first.pid
    finally:
        os.kill(first.pid, signal.SIGKILL)  # the worker's PID alone, not its group
        first.wait()
    # Its terraform was interrupted, stopped the provisioner, saved its state and exited: no
    # terraform of the dead worker goes on applying on its own.
    wait_for(lambda: not owner.running(), 60, "the dead worker's terraform to exit")
    assert not marker.exists()
    state = json.loads((work / "terraform.tfstate").read_text())
    slow = [r for r in state["resources"] if r["name"] == "slow"]
    assert [i.get("status") for i in slow[0]["instances"]] == ["tainted"]
    assert tfproc.read_owner(work) == owner  # what the dead worker left: reaped by the next
    with Session(engine) as session:
        backend = session.exec(select(Job).where(Job.unit == "terraform:qa/backend")).one()
        assert (backend.state, backend.attempts) == ("running", 1)  # nobody renews it
        lease_end = backend.lease_expires_at
    assert lease_end is not None

    second = start_worker(settings, log)
    try:
        def settled() -> bool:
            with Session(engine) as s:
                return s.exec(select(MergeRecord.state).where(
                    MergeRecord.commit == commit)).one() in ("applied", "failed")
        wait_for(settled, 300, "the merge to be applied")
    finally:
        second.send_signal(signal.SIGTERM)  # graceful: finishes its job, then exits
        assert second.wait(timeout=60) == 0, log.read_text()[-3000:]

    with Session(engine) as session:
        jobs = [(j.unit, j.state, j.attempts, j.message) for j in session.exec(select(Job))]
    # The side effect completed once (started twice: the interrupted run never finished).
    assert marker.read_text().splitlines() == ["applied"], (jobs, log.read_text()[-4000:])
    assert started.read_text().splitlines() == ["started", "started"]
    with Session(engine) as session:
        assert session.exec(select(MergeRecord.state).where(
            MergeRecord.commit == commit)).one() == "applied"
        backend = session.exec(select(Job).where(Job.unit == "terraform:qa/backend")).one()
        assert (backend.state, backend.attempts) == ("succeeded", 2)
        # reclaimed after the grace, while the dead worker's lease still had minutes to run
        assert backend.started_at is not None and backend.started_at < lease_end
        applies = session.exec(select(UnitApply.unit).where(UnitApply.commit == commit)).all()
    assert sorted(applies) == sorted(["backend", "network", "domain", "kubernetes", "addons"])
    state = json.loads((work / "terraform.tfstate").read_text())
    slow = [r for r in state["resources"] if r["name"] == "slow"]
    assert len(slow) == 1 and [i.get("status") for i in slow[0]["instances"]] == [None]
    assert tfproc.read_owner(work) is None and not (work / tfproc.LOCK_INFO).exists()
    assert "reaped what terraform apply" in log.read_text()
    engine.dispose()
