"""End to end on LocalForge with the real GitOps skeleton: a merged tenant PR runs its jobs and
the catalog shows it applied; a merged environment PR on the `local` provider really runs
`terraform apply` for its units in order with outputs passed on; changing one unit's inputs
plans only that unit and its dependants."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from catalog import service as catalog_service
from catalog.models import Entity, TimelineEvent
from gitops.forges.base import ChangeSpec, Check, CheckState, FileChange, MergeEvent
from gitops.forges.local import LocalForge
from gitops.git import seed_repository
from portal import db
from portal.auth.models import AuditEvent
from portal.settings import Settings
from reconciler import service
from reconciler.models import Job, MergeRecord, UnitApply
from reconciler.worker import Worker
from tests.conftest import REPO_ROOT, make_settings
from tests.harness.databases import SqliteFactory
from tests.reconciler.conftest import drain, jobs_of, tenant_files

SKELETON = REPO_ROOT / "gitops-skeleton"


def skeleton_forge(settings: Settings, engine: Engine) -> LocalForge:
    seed_repository(settings.resolved_gitops_repo, SKELETON, branch="main")
    forge = LocalForge(settings, engine)
    with Session(engine) as session:
        catalog_service.reindex(session, forge=forge)
    return forge


def merge_pr(forge: LocalForge, engine: Engine, files: Mapping[str, str | None],
             branch: str, *, record: bool = True) -> str:
    """Open a PR, make its checks green, approve it as someone else, merge, record the event
    (what the scaffolder's merge does; ``record=False``: a webhook that has not arrived yet)."""
    info = forge.open_change(ChangeSpec(
        branch=branch, title=branch, body="", author="dev",
        files=[FileChange(p, None if c is None else c.encode()) for p, c in files.items()]))
    forge.set_check(info.number, Check("checks", CheckState.success))
    forge.approve(info.number, by="reviewer")
    event = forge.merge(info.number, by="reviewer")
    if record:
        with Session(engine) as session:
            service.record_merge_event(session, event=event)
    return event.commit


def test_tenant_merge_without_a_cluster_is_committed_not_applied(
        settings: Settings, engine: Engine) -> None:
    forge = skeleton_forge(settings, engine)
    commit = merge_pr(forge, engine, tenant_files("platform", "web"), "tenant-web")
    drain(Worker(settings, engine, forge))
    jobs = jobs_of(engine, commit)
    assert {u: j.state for u, j in jobs.items()} == {
        "plan": "succeeded", "catalog": "succeeded", "argocd": "skipped"}
    assert jobs["argocd"].message.startswith("skipped: ArgoCD not connected")
    assert jobs["catalog"].result["added"] == ["namespace:platform/web"]
    with Session(engine) as session:
        assert session.exec(select(MergeRecord.state).where(
            MergeRecord.commit == commit)).one() == "committed"  # ArgoCD skipped
        entity = session.exec(select(Entity).where(Entity.key == "namespace:platform/web")).one()
        # ArgoCD was skipped (no cluster): in git, not deployed; never a green `applied`.
        assert entity.status == "committed"
        audited = session.exec(select(AuditEvent.action, AuditEvent.outcome).where(
            col(AuditEvent.action).startswith("reconciler.job."))).all()
        assert sorted(audited) == [("reconciler.job.skipped", "skipped"),
                                   ("reconciler.job.succeeded", "success"),
                                   ("reconciler.job.succeeded", "success")]
        events = session.exec(select(TimelineEvent.event).where(
            TimelineEvent.entity == "namespace:platform/web")
            .order_by(col(TimelineEvent.id))).all()
    assert [e for e in events if e.startswith("job.")] == [
        "job.started", "job.succeeded", "job.started", "job.skipped"]


def _infra(name: str, domain: str) -> str:
    text = (SKELETON / "envs" / "dev" / "infra.yaml").read_text()
    return text.replace("name: dev", f"name: {name}").replace("dev.caas.internal", domain)


@pytest.fixture
def sqlite_settings(tmp_path: Path, sqlite_factory: SqliteFactory) -> Settings:
    return make_settings(tmp_path, sqlite_factory.new(tmp_path / "db"))


@pytest.mark.terraform
@pytest.mark.slow
def test_environment_merge_applies_units_in_order_then_only_what_changed_then_destroys(
        sqlite_settings: Settings) -> None:
    settings = sqlite_settings
    engine = db.make_engine(settings)
    forge = skeleton_forge(settings, engine)
    worker = Worker(settings, engine, forge)
    first = merge_pr(forge, engine, {"envs/qa/infra.yaml": _infra("qa", "qa.caas.internal")},
                     "env-qa")
    drain(worker, rounds=400)
    order = ["backend", "network", "domain", "kubernetes", "addons"]
    jobs = jobs_of(engine, first)
    assert {u: j.state for u, j in jobs.items() if u.startswith("terraform:")} == {
        f"terraform:qa/{u}": "succeeded" for u in order}
    with Session(engine) as session:
        applied = session.exec(select(UnitApply).where(UnitApply.commit == first)
                               .order_by(col(UnitApply.id))).all()
        assert [a.unit for a in applied] == order  # in dependency order
        outputs = {a.unit: a.outputs for a in applied}
        assert session.exec(select(MergeRecord.state).where(
            MergeRecord.commit == first)).one() == "applied"
    # outputs passed on: the kubernetes unit got the network unit's VPC and subnets
    tfvars = json.loads((settings.data_dir / "terraform" / "qa" / "kubernetes" /
                         "caas.auto.tfvars.json").read_text())
    assert tfvars["vpc_id"] == outputs["network"]["vpc_id"]
    assert tfvars["private_subnet_ids"] == outputs["network"]["private_subnet_ids"]
    addons = json.loads((settings.data_dir / "terraform" / "qa" / "addons" /
                         "caas.auto.tfvars.json").read_text())
    assert addons["zone_name"] == outputs["domain"]["zone_name"] == "qa.caas.internal"

    second = merge_pr(forge, engine, {"envs/qa/infra.yaml": _infra("qa", "qa2.caas.internal")},
                      "env-qa-domain")
    drain(worker, rounds=400)
    jobs = jobs_of(engine, second)
    assert sorted(u for u in jobs if u.startswith("terraform:")) == [
        "terraform:qa/addons", "terraform:qa/domain"]
    assert jobs["terraform:qa/addons"].depends_on == "terraform:qa/domain"
    assert all(j.state in ("succeeded", "skipped") for j in jobs.values())
    with Session(engine) as session:
        status = service.environment_status(session, environment="qa")
    by_unit = {u.unit: u for u in status.units}
    assert by_unit["domain"].outputs["zone_name"] == "qa2.caas.internal"
    assert by_unit["domain"].last_apply is not None
    assert by_unit["domain"].last_apply["commit"] == second
    assert by_unit["network"].last_apply is not None
    assert by_unit["network"].last_apply["commit"] == first  # untouched by the second merge
    with Session(engine) as session:
        assert session.exec(select(Job).where(Job.kind == "terraform",
                                              Job.state != "succeeded")).first() is None

    # installed: false destroys every unit, in reverse order
    third = merge_pr(forge, engine, {"envs/qa/infra.yaml": _infra("qa", "qa2.caas.internal")
                                     .replace("installed: true", "installed: false")},
                     "env-qa-uninstall")
    drain(worker, rounds=400)
    with Session(engine) as session:
        destroyed = session.exec(select(UnitApply).where(UnitApply.commit == third)
                                 .order_by(col(UnitApply.id))).all()
        assert [(a.unit, a.action) for a in destroyed] == [
            (u, "destroy") for u in reversed(order)]
        assert session.exec(select(MergeRecord.state).where(
            MergeRecord.commit == third)).one() == "applied"
    for unit in order:
        state = json.loads((settings.data_dir / "terraform" / "qa" / unit /
                            "terraform.tfstate").read_text())
        assert state["resources"] == [], unit
    engine.dispose()


@pytest.mark.terraform
@pytest.mark.slow
def test_a_merge_learned_late_never_applies_an_older_manifest_over_a_newer_one(
        sqlite_settings: Settings) -> None:
    """A redelivered webhook for merge A arriving after the later merge B was recorded (by its
    own webhook or the poller): B's job applied B's manifest; A's job must not put A's back."""
    settings = sqlite_settings
    engine = db.make_engine(settings)
    forge = skeleton_forge(settings, engine)
    worker = Worker(settings, engine, forge)
    first = merge_pr(forge, engine, {"envs/qa/infra.yaml": _infra("qa", "qa.caas.internal")},
                     "env-qa")
    drain(worker, rounds=400)
    late = merge_pr(forge, engine, {"envs/qa/infra.yaml": _infra("qa", "qa2.caas.internal")},
                    "env-qa-2", record=False)
    newer = merge_pr(forge, engine, {"envs/qa/infra.yaml": _infra("qa", "qa3.caas.internal")},
                     "env-qa-3")
    drain(worker, rounds=400)
    with Session(engine) as session:
        service.record_merge_event(session, event=MergeEvent(commit=late, before=first))
    drain(worker, rounds=400)
    jobs = jobs_of(engine, late)
    domain = jobs["terraform:qa/domain"]
    assert domain.state == "succeeded", domain.message
    assert domain.result["superseded_by"] == newer
    with Session(engine) as session:
        status = service.environment_status(session, environment="qa")
        assert session.exec(select(UnitApply).where(UnitApply.commit == late)).first() is None
    by_unit = {u.unit: u for u in status.units}
    assert by_unit["domain"].outputs["zone_name"] == "qa3.caas.internal"
    engine.dispose()
