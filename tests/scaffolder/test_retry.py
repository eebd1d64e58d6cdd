"""A task that failed after its PR was opened is retried without a second branch or PR."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from gitops import git
from gitops.forges.base import Check
from gitops.forges.local import LocalForge
from gitops.forges.models import LocalPullRequest
from portal.auth import service as auth_service
from portal.auth.models import Role
from portal.errors import Unavailable
from portal.settings import Settings
from scaffolder import service
from scaffolder.models import ScaffoldRequest
from scaffolder.registry import Registry
from tests.conftest import UserFactory


class FlakyForge(LocalForge):
    """The real local forge, whose commit-status call fails once (a forge outage)."""

    failures = 1

    def set_checks(self, number: int, checks: Sequence[Check]) -> None:
        if self.failures:
            self.failures -= 1
            raise Unavailable("forge unreachable")
        super().set_checks(number, checks)


@pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
def test_retry_reuses_the_opened_pull_request(settings: Settings, engine: Engine,
                                              gitops: Path, make_user: UserFactory) -> None:
    make_user("alice", teams={"payments": Role.developer})
    with Session(engine) as s:
        principal = auth_service.principal_for(
            s, auth_service.get_user(s, username="alice"), via="token")
    forge, registry = FlakyForge(settings, engine), Registry(settings)
    request = ScaffoldRequest(template="tenant", answers={
        "team": "payments", "name": "web", "cost_center": "cc", "environments": ["dev"]})
    with Session(engine, expire_on_commit=False) as s:
        failed = service.create_task(s, registry=registry, forge=forge, principal=principal,
                                     request=request)
    assert failed.status == "failed" and "forge unreachable" in failed.error
    assert failed.events[-1].step == "statuses" and failed.events[-1].status == "failed"
    with Session(engine, expire_on_commit=False) as s:
        retried = service.retry_task(s, registry=registry, forge=forge, principal=principal,
                                     task_id=failed.id)
        assert retried.status == "succeeded" and retried.attempts == 2
        assert retried.change_number == failed.change_number
        assert len(s.exec(select(LocalPullRequest)).all()) == 1
        with pytest.raises(Exception, match="only failed tasks"):
            service.retry_task(s, registry=registry, forge=forge, principal=principal,
                               task_id=failed.id)
    refs = git.out(gitops, "for-each-ref", "--format=%(refname)", "refs/heads/").split()
    assert sorted(refs) == ["refs/heads/caas/tenant-payments-web", "refs/heads/main"]
    assert [c.name for c in forge.get_change(retried.change_number or 0).checks]
