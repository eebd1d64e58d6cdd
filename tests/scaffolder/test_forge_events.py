"""Changes follow what their forge reports (GitHub webhooks, the poller)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from gitops.forges.base import MergeEvent
from gitops.forges.github_webhook import PullRequestEvent
from gitops.forges.local import LocalForge
from portal.auth.models import Role
from portal.auth.principal import Principal
from portal.settings import Settings
from scaffolder import review, service
from scaffolder.models import Change, ScaffoldRequest
from scaffolder.registry import Registry

ALICE = Principal(user_id=1, username="alice", team_roles={"payments": Role.developer})
REQUEST = ScaffoldRequest(template="tenant", answers={
    "team": "payments", "name": "web", "cost_center": "cc", "environments": ["dev"]})


@pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
def test_closed_then_merged_as_the_forge_reports(settings: Settings, engine: Engine,
                                                 gitops: Path) -> None:
    forge, registry = LocalForge(settings, engine), Registry(settings)
    with Session(engine, expire_on_commit=False) as s:
        first = service.create_task(s, registry=registry, forge=forge, principal=ALICE,
                                    request=REQUEST)
        number = first.change_number or 0
        moved = PullRequestEvent(action="synchronize", number=number, head_sha="a" * 40,
                                 head_branch="caas/tenant-payments-web", base_branch="main",
                                 sender="alice")
        assert review.record_pr_event(s, event=moved) == "head updated"
        closed = PullRequestEvent(action="closed", number=number, head_sha="a" * 40,
                                  head_branch="caas/tenant-payments-web", base_branch="main",
                                  sender="bob")
        assert review.record_pr_event(s, event=closed) == "pr.closed"
        change = s.get(Change, first.change_id)
        assert change is not None and change.status == "closed" and change.open_unit_key is None
        forge.close_change(number, by="bob")
        # The unit is free again: the same request opens a new change on the same branch.
        second = service.create_task(s, registry=registry, forge=forge, principal=ALICE,
                                     request=REQUEST)
        assert second.status == "succeeded" and second.change_number != number
        merged = MergeEvent(commit="b" * 40, before="c" * 40,
                            change_number=second.change_number, merged_by="bob",
                            source="webhook")
        assert review.record_pr_event(s, event=merged) == "pr.merged"
        assert review.record_pr_event(s, event=merged) == "not a scaffolder change"
        again = s.get(Change, second.change_id)
        assert again is not None and again.status == "merged" and again.merge_sha == "b" * 40
