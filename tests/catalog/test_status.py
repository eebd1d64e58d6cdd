"""Status lifecycle and timeline as the scaffolder and the reconciler drive them."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from catalog import service
from catalog.models import Entity, TimelineEvent
from gitops.gitreader import GitReader
from portal.errors import ValidationFailed
from tests.catalog import gitops

SQLITE = pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
NEW = "namespace:payments/payments-new"


def _row(engine: Engine, key: str) -> Entity | None:
    with Session(engine) as s:
        return s.exec(select(Entity).where(Entity.key == key)).first()


@SQLITE
def test_requested_then_closed_drops_the_placeholder(engine: Engine,
                                                     indexed: gitops.Repo) -> None:
    with Session(engine) as s:
        service.set_status(s, entity=NEW, status="requested", commit=True)
    row = _row(engine, NEW)
    assert row is not None and (row.status, row.on_main, row.owner) == (
        "requested", False, "payments")
    with Session(engine) as s:
        service.set_status(s, entity=NEW, status="closed", commit=True)
    assert _row(engine, NEW) is None


@SQLITE
def test_closed_pr_on_an_existing_entity_restores_its_status(engine: Engine,
                                                              indexed: gitops.Repo) -> None:
    key = "namespace:payments/payments-api"
    with Session(engine) as s:
        service.set_status(s, entity=key, status="applied")
        service.set_status(s, entity=key, status="requested", commit=True)
    assert _row(engine, key).status == "requested"  # type: ignore[union-attr]
    with Session(engine) as s:
        service.set_status(s, entity=key, status="closed", commit=True)
    row = _row(engine, key)
    assert row is not None and (row.status, row.on_main) == ("applied", True)


@SQLITE
def test_requested_merged_indexed_applied(engine: Engine, indexed: gitops.Repo) -> None:
    with Session(engine) as s:
        service.set_status(s, entity=NEW, status="requested")
        service.record_timeline(s, entity=NEW, event="pr.opened", actor="dev",
                                detail={"number": 3}, commit=True)
    old = indexed.head
    new = indexed.commit(gitops.tenant("payments", "payments-new", {"dev": None}))
    with Session(engine) as s:
        service.set_status(s, entity=NEW, status="merged", commit=True)
        result = service.index_commit(s, forge=GitReader(indexed.git_dir), commit=new,
                                      changed=indexed.changed(old, new))
    assert result.added == [NEW]
    row = _row(engine, NEW)
    assert row is not None and (row.status, row.on_main) == ("merged", True)
    with Session(engine) as s:
        service.set_status(s, entity=NEW, status="applying")
        service.set_status(s, entity=NEW, status="applied")
        service.set_status(s, entity=NEW, status="out-of-sync")
        service.set_status(s, entity=NEW, status="degraded", commit=True)
    row = _row(engine, NEW)
    assert row is not None and (row.status, row.sync, row.health) == (
        "applied", "out-of-sync", "degraded")
    with Session(engine) as s:
        events = [e.event for e in s.exec(select(TimelineEvent).where(
            TimelineEvent.entity == NEW).order_by(TimelineEvent.id)).all()]
    assert events == ["pr.opened", "catalog.added"]


@SQLITE
def test_bad_input_is_refused_and_nothing_written(engine: Engine) -> None:
    with Session(engine) as s:
        for kwargs, field in (({"entity": "tenant:x", "status": "applied"}, "entity"),
                              ({"entity": "namespace:a", "status": "applied"}, "entity"),
                              ({"entity": NEW, "status": "exploded"}, "status")):
            with pytest.raises(ValidationFailed) as err:
                service.set_status(s, **kwargs)
            assert err.value.field == field
        with pytest.raises(ValidationFailed) as err:
            service.record_timeline(s, entity=NEW, event="", actor="x")
        assert err.value.field == "event"
        s.commit()
        assert s.exec(select(Entity)).all() == []
        assert s.exec(select(TimelineEvent)).all() == []


def test_entities_for_paths() -> None:
    assert service.entities_for_paths([
        "teams/payments/team.yaml", "tenants/payments/payments-api/envs/dev/quota.yaml",
        "tenants/payments/payments-api/base/namespace.yaml", "envs/prod/infra.yaml",
        "applications/search/indexer/application.yaml", "platform/argocd/values.yaml",
        "CODEOWNERS", "tenants/payments/README.md",
    ]) == {"team:payments", "namespace:payments/payments-api", "environment:prod",
           "application:search/indexer"}


@SQLITE
def test_team_activity_lists_only_what_my_teams_own_newest_first(
        engine: Engine, indexed: gitops.Repo) -> None:
    from catalog import query

    with Session(engine) as s:
        service.record_timeline(s, entity="namespace:payments/payments-api", event="merged",
                                actor="alice", commit=True)
        service.record_timeline(s, entity="team:payments", event="approved", actor="bob",
                                commit=True)
        service.record_timeline(s, entity="namespace:search/search-index", event="merged",
                                actor="eve", commit=True)
    with Session(engine) as s:
        events = query.team_activity(s, teams=["payments"])
        assert query.team_activity(s, teams=[]) == []
        statuses = query.entity_statuses(s, ["namespace:payments/payments-api", "nope:x"])
    assert [(e["entity"], e["event"]) for e in events][:2] == [
        ("team:payments", "approved"), ("namespace:payments/payments-api", "merged")]
    assert all("search" not in e["entity"] for e in events)
    assert set(statuses) == {"namespace:payments/payments-api"}
