"""Faults with the real worker, the real `terraform` and both databases: a permanent error whose
output holds a throttling code fails at once and its merge ends failed (catalog included); an
attempt that applied but could not record it is recorded by its retry from the state."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, event
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, col, select

from catalog import service as catalog_service
from catalog.models import Entity
from gitops.forges.base import MergeEvent
from gitops.forges.local import LocalForge
from gitops.git import seed_repository
from portal import db
from portal.settings import Settings
from reconciler import service
from reconciler.models import JobLog, MergeRecord, UnitApply
from reconciler.worker import Worker
from tests.conftest import REPO_ROOT, make_settings
from tests.reconciler.conftest import drain, jobs_of, push

pytestmark = [pytest.mark.terraform, pytest.mark.slow]
SKELETON = REPO_ROOT / "gitops-skeleton"
UNITS = ["backend", "network", "domain", "kubernetes", "addons"]
# A permanent failure whose output (and echoed command) holds a throttling code, even in the
# AWS SDK's documented form: it is a provisioner's output, not a provider's API error.
AWS_FORM = "operation error EC2: RunInstances, api error RequestLimitExceeded: slow down"
THROTTLED_WORDS = """
resource "terraform_data" "broken" {
  provisioner "local-exec" {
    command = "echo 'AWS_FORM' >&2; echo Throttling; exit 3"
  }
}
""".replace("AWS_FORM", AWS_FORM)


@pytest.fixture
def modules(tmp_path: Path) -> Path:
    root = tmp_path / "modules"
    shutil.copytree(REPO_ROOT / "terraform" / "local", root / "local")
    return root


@pytest.fixture
def env(tmp_path: Path, database_url: str, modules: Path) -> Iterator[tuple[Settings, Engine]]:
    settings = make_settings(tmp_path, database_url, terraform_modules_dir=modules,
                             worker_backoff_s=0.05)
    engine = db.make_engine(settings)
    yield settings, engine
    engine.dispose()


def skeleton_forge(settings: Settings, engine: Engine) -> LocalForge:
    seed_repository(settings.resolved_gitops_repo, SKELETON, branch="main")
    forge = LocalForge(settings, engine)
    with Session(engine) as session:
        catalog_service.reindex(session, forge=forge)
    return forge


def merge_qa(forge: LocalForge, engine: Engine) -> str:
    infra = (SKELETON / "envs" / "dev" / "infra.yaml").read_text()
    before, commit = push(forge, {"envs/qa/infra.yaml": infra.replace("name: dev", "name: qa")
                                  .replace("dev.caas.internal", "qa.caas.internal")})
    with Session(engine) as session:
        service.record_merge_event(session, event=MergeEvent(commit=commit, before=before))
    return commit


def test_permanent_error_with_throttling_words_fails_at_once_and_the_merge_fails(
        env: tuple[Settings, Engine], modules: Path) -> None:
    settings, engine = env
    (modules / "local" / "backend" / "broken.tf").write_text(THROTTLED_WORDS)
    forge = skeleton_forge(settings, engine)
    commit = merge_qa(forge, engine)
    drain(Worker(settings, engine, forge), rounds=400)
    jobs = jobs_of(engine, commit)
    backend = jobs["terraform:qa/backend"]
    assert (backend.state, backend.attempts) == ("failed", 1)
    # the cause, not just the headline: the diagnostic's summary and detail
    assert backend.message.startswith(
        "terraform apply failed (exit 1): local-exec provisioner error: Error running command")
    assert "exit status 3" in backend.message
    for unit in UNITS[1:]:
        job = jobs[f"terraform:qa/{unit}"]
        assert (job.state, job.attempts) == ("failed", 0), unit
    with Session(engine) as session:
        assert session.exec(select(MergeRecord.state).where(
            MergeRecord.commit == commit)).one() == "failed"
        assert session.exec(select(Entity.status).where(
            Entity.key == "environment:qa")).one() == "failed"
        logged = session.exec(select(JobLog.message).where(JobLog.job_id == backend.id)).all()
    # the full output (echoed command included) is in the log, where it belongs
    assert any("Throttling" in line for line in logged)


def test_an_apply_that_could_not_be_recorded_is_recorded_by_its_retry(
        env: tuple[Settings, Engine]) -> None:
    settings, engine = env
    forge = skeleton_forge(settings, engine)
    commit = merge_qa(forge, engine)
    failed: list[str] = []

    # The database refuses the first apply record (down at that moment): Terraform applied.
    @event.listens_for(engine, "before_cursor_execute")
    def refuse_once(conn: object, cursor: object, statement: str, *args: object) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO RECONCILER_UNIT_APPLIES") \
                and not failed:
            failed.append(statement)
            raise OperationalError(statement, {}, Exception("server closed the connection"))

    drain(Worker(settings, engine, forge), rounds=400)
    assert failed
    jobs = jobs_of(engine, commit)
    backend = jobs["terraform:qa/backend"]
    assert (backend.state, backend.attempts) == ("succeeded", 2)
    assert backend.message.startswith("apply qa/backend: applied by an earlier attempt")
    with Session(engine) as session:
        records = session.exec(select(UnitApply).where(UnitApply.commit == commit)
                               .order_by(col(UnitApply.id))).all()
        assert session.exec(select(MergeRecord.state).where(
            MergeRecord.commit == commit)).one() == "applied"
    assert [r.unit for r in records] == UNITS
    summary = records[0].summary
    # this attempt planned nothing; the state says what the earlier attempt applied
    assert (summary["add"], summary["change"], summary["destroy"]) == (0, 0, 0)
    assert summary["earlier_attempt"]["added"] == summary["state"]["resources"]
    assert summary["earlier_attempt"]["serial_before"] == 0
    assert len(summary["state"]["resources"]) >= 3
    # units applied normally carry their plan and their state, no earlier attempt
    assert "earlier_attempt" not in records[1].summary
    assert records[1].summary["add"] > 0 and records[1].summary["state"]["serial"] > 0
