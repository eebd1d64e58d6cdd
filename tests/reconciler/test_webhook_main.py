"""A webhook merge is checked against the forge at the API (both databases): a commit that is
not on main is refused, audited, and nothing is recorded or queued."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine
from sqlmodel import Session, select

from portal.app import create_app
from portal.auth.models import AuditEvent
from portal.settings import Settings
from scaffolder import gittree
from tests.reconciler.test_views import PUSH, SECRET, counts, deliver
from tests.scaffolder.conftest import seed


@pytest.fixture
def client(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    configured = settings.model_copy(update={"github_webhook_secret": SecretStr(SECRET)})
    with TestClient(create_app(configured, engine=engine)) as test_client:
        yield test_client


@pytest.fixture
def main_sha(settings: Settings, tmp_path: Path) -> str:
    sha = gittree.resolve(seed(settings, tmp_path), "main")
    assert sha is not None
    return sha


def test_merge_not_on_main_is_refused_at_the_api_audited_and_nothing_queued(
        client: TestClient, engine: Engine, settings: Settings, main_sha: str) -> None:
    """A correctly signed push (or merged PR) whose commit is not on main: 422 naming the
    field, an audit row, no merge record and no job. The commit exists, on another branch."""
    repo = settings.resolved_gitops_repo
    side = gittree.out(repo, "commit-tree", f"{main_sha}^{{tree}}", "-p", main_sha,
                       "-m", "not on main").strip()
    gittree.out(repo, "update-ref", "refs/heads/feature", side)
    merged = {"action": "closed", "pull_request": {
        "number": 9, "merged": True, "merge_commit_sha": side, "base": {"ref": "main"},
        "head": {"ref": "feature", "sha": side}}}
    for event, payload, field in (
            ("push", {**PUSH, "after": side}, "after"),
            ("push", {**PUSH, "after": "d" * 40}, "after"),  # unknown to the forge
            ("pull_request", merged, "pull_request.merge_commit_sha")):
        response = deliver(client, event, payload)
        assert response.status_code == 422, response.text  # type: ignore[attr-defined]
        error = response.json()["error"]  # type: ignore[attr-defined]
        assert (error["field"], error["rule"]) == (field, "reachable-from-main")
    assert counts(engine) == (0, 0)
    with Session(engine) as session:
        denied = session.exec(select(AuditEvent).where(AuditEvent.action == "reconciler.merge")
                              ).all()
    assert [(a.target, a.outcome) for a in denied] == [
        (side, "denied"), ("d" * 40, "denied"), (side, "denied")]
    assert gittree.resolve(repo, "main") == main_sha
