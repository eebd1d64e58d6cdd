"""Plan previews on open PRs that touch envs/: a summary comment and a check, nothing applied,
no state left behind (nor locked)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session

from gitops.forges.base import ChangeSpec, CheckState, FileChange
from gitops.forges.local import LocalForge
from gitops.git import seed_repository
from portal import db
from reconciler import service
from reconciler.previews import latest_plan_preview
from reconciler.worker import Worker
from tests.conftest import REPO_ROOT, make_settings
from tests.harness.databases import SqliteFactory
from tests.reconciler.conftest import drain, jobs_of


@pytest.mark.terraform
@pytest.mark.slow
def test_plan_preview_comments_and_checks_without_applying(
        tmp_path: Path, sqlite_factory: SqliteFactory) -> None:
    settings = make_settings(tmp_path, sqlite_factory.new(tmp_path / "db"))
    engine = db.make_engine(settings)
    seed_repository(settings.resolved_gitops_repo, REPO_ROOT / "gitops-skeleton")
    forge = LocalForge(settings, engine)
    infra = (REPO_ROOT / "gitops-skeleton" / "envs" / "dev" / "infra.yaml").read_text()
    info = forge.open_change(ChangeSpec(
        branch="env-qa", title="qa", body="", author="dev", files=[
            FileChange("envs/qa/infra.yaml", infra.replace("name: dev", "name: qa").encode())]))
    docs = forge.open_change(ChangeSpec(
        branch="docs", title="docs", body="", author="dev",
        files=[FileChange("README.md", b"docs\n")]))
    with Session(engine) as session:
        service.request_plan_preview(session, change_number=info.number,
                                     head_sha=info.head_sha)
        service.request_plan_preview(session, change_number=info.number,
                                     head_sha=info.head_sha)  # idempotent
        service.request_plan_preview(session, change_number=docs.number,
                                     head_sha=docs.head_sha)
    drain(Worker(settings, engine, forge), rounds=100)

    job = jobs_of(engine, info.head_sha)[f"plan-preview#{info.number}"]
    assert job.state == "succeeded", job.message
    assert set(job.result["plans"]) == {"qa/backend", "qa/network", "qa/domain"}
    assert job.result["plans"]["qa/backend"]["add"] > 0
    # Every unit of the new environment, in order, each with what happens to it and why.
    assert [(u["unit"], u["status"], u.get("after")) for u in job.result["units"]] == [
        ("qa/backend", "planned", None), ("qa/network", "planned", None),
        ("qa/domain", "planned", None),
        ("qa/kubernetes", "waiting", ["backend", "network"]),
        ("qa/addons", "waiting", ["domain", "kubernetes"])]
    with Session(engine) as session:
        preview = latest_plan_preview(session, change_number=info.number)
    assert preview is not None
    assert [u.text for u in preview.units][3:] == [
        "planned after backend and network are applied (needs their outputs)",
        "planned after domain and kubernetes are applied (needs their outputs)"]
    comment = forge.comments(info.number)["plan"]
    assert "### qa (apply)" in comment and "| backend |" in comment
    assert ("| kubernetes | planned after backend and network are applied (needs their "
            "outputs) |") in comment
    [check] = [c for c in forge.get_change(info.number).checks if c.name == "terraform-plan"]
    assert check.state is CheckState.success
    # nothing applied, no state and no lock left behind
    qa = settings.data_dir / "terraform" / "qa"
    assert not list(qa.rglob("terraform.tfstate")) and not list(qa.rglob("*.lock.info"))
    assert not list((settings.data_dir / "terraform" / ".preview").iterdir())

    other = jobs_of(engine, docs.head_sha)[f"plan-preview#{docs.number}"]
    assert other.state == "succeeded" and "nothing to plan" in other.message
    assert "plan" not in forge.comments(docs.number)
    engine.dispose()
